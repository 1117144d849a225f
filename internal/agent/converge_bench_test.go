package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"

	"novanet/internal/datapath/dnsmasq"
	"novanet/internal/datapath/iptables"
	"novanet/internal/datapath/link"
	"novanet/internal/model"
	"novanet/internal/nettest"
	"novanet/internal/plan"
)

// hostState is a multi-host compute serving n local instances in a /16:
// gateway, dnsmasq and NAT on this host, as nova's network host would be.
func hostState(n int) model.HostState {
	net := model.Network{ID: 1, Label: "private", Kind: model.KindFlatDHCP, CIDR: netip.MustParsePrefix("10.0.0.0/16"),
		Gateway: netip.MustParseAddr("10.0.0.1"), DHCPStart: netip.MustParseAddr("10.0.0.2"), Bridge: "br100", MultiHost: true}
	hn := model.HostNetwork{Network: net, BridgeAddress: netip.MustParseAddr("10.0.0.1"), ServesDHCP: true, NAT: true,
		DHCPServer: netip.MustParseAddr("10.0.0.1")}
	for i := range n {
		hn.Instances = append(hn.Instances, instance(i))
		in := hn.Instances[i]
		hn.DHCPHosts = append(hn.DHCPHosts, model.DHCPHost{MAC: in.MAC, Hostname: in.Hostname, Address: in.Address})
	}
	return model.HostState{Host: "compute-1", Revision: int64(n), Networks: []model.HostNetwork{hn},
		Options: model.ClusterOptions{DHCPDomain: "novalocal", DHCPLeaseTime: 120, FixedRanges: []netip.Prefix{net.CIDR}}}
}

func instance(i int) model.HostInstance {
	a := netip.AddrFrom4([4]byte{10, 0, byte(1 + i/250), byte(2 + i%250)})
	return model.HostInstance{UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Hostname: fmt.Sprintf("vm-%d", i),
		Address: a, MAC: randomMAC(i), Device: fmt.Sprintf("tap%011d", i)}
}

// enter switches the calling goroutine's thread into ns until leave.
func enter(b *testing.B, ns string) (leave func()) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		b.Fatal(err)
	}
	target, err := netns.GetFromName(ns)
	if err != nil {
		b.Fatal(err)
	}
	if err := netns.Set(target); err != nil {
		b.Fatal(err)
	}
	return func() {
		target.Close()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
	}
}

// addInstance returns st with one more served instance.
func addInstance(st model.HostState, i int) model.HostState {
	hn := st.Networks[0]
	in := instance(i)
	hn.Instances = append(hn.Instances[:len(hn.Instances):len(hn.Instances)], in)
	hn.DHCPHosts = append(hn.DHCPHosts[:len(hn.DHCPHosts):len(hn.DHCPHosts)], model.DHCPHost{MAC: in.MAC, Hostname: in.Hostname, Address: in.Address})
	st.Networks = []model.HostNetwork{hn}
	st.Revision++
	return st
}

// BenchmarkConvergeOneMoreInstance: the agent's light sync after one
// instance is added on a host that already serves n, against the real
// kernel and a real dnsmasq in a namespace, two ways in one run:
//
//   - path=incremental: what the agent does with a host state delta:
//     decode the delta's JSON, HostState.Apply, plan.Update, and the
//     appliers' incremental paths (the new tap attached, the new DHCP
//     host entry written);
//   - path=whole: today's full-fetch path once the state is decoded:
//     plan.Build of the whole state and the appliers comparing all of it
//     (iptables: nothing differs, no exec).
func BenchmarkConvergeOneMoreInstance(b *testing.B) {
	nettest.RequireRoot(b, "dnsmasq", "iptables-restore", "iptables-save")
	for _, path := range []string{"incremental", "whole"} {
		for _, n := range []int{100, 1000, 5000} {
			b.Run(fmt.Sprintf("path=%s/instances=%d", path, n), func(b *testing.B) {
				convergeOneMore(b, n, path == "incremental")
			})
		}
	}
}

// benchHostNamespace makes a host namespace with an uplink eth2 and a directory
// for dnsmasq (under NOVANET_BENCH_DIR), enters it on this thread, as
// the agent runs in its host's (no `ip netns exec` per command), and
// returns the production link applier and dnsmasq supervisor there.
func benchHostNamespace(b *testing.B, prefix string) (dir string, links *link.Links, dhcp *dnsmasq.Supervisor, leave func()) {
	ns := nettest.Netns(b, prefix)
	nettest.Run(b, ns, "ip", "link", "add", "eth2", "type", "veth", "peer", "name", "eth2p")
	dir, err := os.MkdirTemp(os.Getenv("NOVANET_BENCH_DIR"), prefix+"-")
	if err != nil {
		b.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	b.Cleanup(func() { os.RemoveAll(dir) })
	leave = enter(b, ns)
	quiet := slog.New(slog.DiscardHandler)
	links, err = link.New(quiet)
	if err != nil {
		leave()
		b.Fatal(err)
	}
	return dir, links, dnsmasq.New(quiet, dir), leave
}

func convergeOneMore(b *testing.B, n int, incremental bool) {
	dir, links, dhcp, leave := benchHostNamespace(b, "nnconv")
	defer leave()
	quiet := slog.New(slog.DiscardHandler)
	fw := iptables.New()
	defer func() { _ = dhcp.Apply(context.Background(), nil) }()
	opts := plan.Options{Host: "compute-1", FlatInterface: "eth2", PublicInterface: "eth2",
		RoutingSourceIP: netip.MustParseAddr("192.0.2.10"), NetworksPath: dir, DHCPBridge: "/bin/true"}
	a := New(Config{Host: "compute-1", Plan: opts, Logger: quiet}, nil, links, fw, dhcp)
	ctx := context.Background()
	st := hostState(n)
	p, err := plan.Build(st, opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := a.apply(ctx, p, true); err != nil {
		b.Fatal(err)
	}
	restores := fw.Restores()
	// The server's part: the deltas as they come off the wire.
	var bodies [][]byte
	for i := 0; incremental && i < b.N; i++ {
		d := oneMoreDelta(st, n+i)
		d.From, d.To = st.Revision+int64(i), st.Revision+int64(i)+1
		body, err := json.Marshal(d)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, body)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !incremental {
			st = addInstance(st, n+i)
			if p, err = plan.Build(st, opts); err != nil {
				b.Fatal(err)
			}
			if err := a.apply(ctx, p, false); err != nil {
				b.Fatal(err)
			}
			continue
		}
		var d model.HostStateDelta
		if err := json.Unmarshal(bodies[i], &d); err != nil {
			b.Fatal(err)
		}
		next, err := st.Apply(d)
		if err != nil {
			b.Fatal(err)
		}
		np, ch, err := plan.Update(p, st, next, d, opts)
		if err != nil || ch.Full {
			b.Fatal("not incremental: ", err)
		}
		if err := a.applyChange(ctx, np, ch); err != nil {
			b.Fatal(err)
		}
		st, p = next, np
	}
	b.StopTimer()
	if fw.Restores() != restores {
		b.Errorf("adding instances ran iptables-restore %d times", fw.Restores()-restores)
	}
	// The entries written are the plan's: one file per served instance.
	ents, err := os.ReadDir(p.Dnsmasq[0].HostsDir)
	if err != nil {
		b.Fatal(err)
	}
	if len(ents) != len(p.Dnsmasq[0].Hosts) || len(ents) != n+b.N {
		b.Errorf("%d host entries in the directory, %d planned, %d instances", len(ents), len(p.Dnsmasq[0].Hosts), n+b.N)
	}
}

// oneMoreDelta is the delta the server sends when instance i is added to
// st's network.
func oneMoreDelta(st model.HostState, i int) model.HostStateDelta {
	hn := st.Networks[0]
	in := instance(i)
	return model.HostStateDelta{Host: st.Host, From: st.Revision, To: st.Revision + 1,
		Networks: []model.HostNetworkDelta{{Network: hn.Network, BridgeAddress: hn.BridgeAddress, ServesDHCP: hn.ServesDHCP, NAT: hn.NAT,
			DHCPServer: hn.DHCPServer, Instances: []model.HostInstance{in},
			DHCPHosts: []model.DHCPHost{{MAC: in.MAC, Hostname: in.Hostname, Address: in.Address}}}}}
}

// BenchmarkHostStateDecode is the part of a sync the converge benchmark
// leaves out: decoding the whole host state the API sends on every
// revision (the agent fetches it whole).
func BenchmarkHostStateDecode(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		body, err := json.Marshal(hostState(n))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var st model.HostState
				if err := json.Unmarshal(body, &st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// randomMAC is instance i's MAC, scattered as real random MACs are (so
// MAC order and address order differ) but unique: odd multipliers are
// bijective modulo 2^24.
func randomMAC(i int) string {
	h := uint32(i) * 2654435761 & 0xffffff
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", h>>16&0xff, h>>8&0xff, h&0xff)
}
