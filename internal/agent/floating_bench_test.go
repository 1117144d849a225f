package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"novanet/internal/datapath/dnsmasq"
	"novanet/internal/datapath/iptables"
	"novanet/internal/datapath/link"
	"novanet/internal/model"
	"novanet/internal/nettest"
	"novanet/internal/plan"
)

// floatingHost is a network host NATing a /20 with n floating addresses
// associated, dense as a pool hands them out. The addresses come from
// 198.18.0.0/15 (RFC 2544's benchmarking range); no packet leaves the
// benchmark's namespace.
func floatingHost(n int) model.HostState {
	net := model.Network{ID: 1, Label: "private", Kind: model.KindFlatDHCP, CIDR: netip.MustParsePrefix("10.0.0.0/20"),
		Gateway: netip.MustParseAddr("10.0.0.1"), Bridge: "br100", BridgeInterface: "eth2"}
	hn := model.HostNetwork{Network: net, BridgeAddress: net.Gateway, NAT: true}
	st := model.HostState{Host: "net1", Networks: []model.HostNetwork{hn},
		Options: model.ClusterOptions{FixedRanges: []netip.Prefix{net.CIDR}}}
	for i := range n {
		st.FloatingIPs = append(st.FloatingIPs, floatingAt(i))
	}
	return st
}

func floatingAt(i int) model.HostFloatingIP {
	return model.HostFloatingIP{
		Address:      netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(1 + i%250)}),
		FixedAddress: netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(2 + i%250)}),
		Interface:    "eth0", InstanceUUID: fmt.Sprint(i),
	}
}

// nsWorker runs functions on one thread inside a namespace, so several
// hosts can be driven from one benchmark loop.
type nsWorker struct{ run chan func() }

func newWorker(b *testing.B, ns string) *nsWorker {
	w := &nsWorker{run: make(chan func())}
	ready := make(chan error)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ready <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err == nil {
			err = netns.Set(target)
			target.Close()
		}
		ready <- err
		for f := range w.run {
			f()
		}
		// Back home before the namespace's cleanup kills what is inside
		// it: this thread may be the process's main thread.
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	if err := <-ready; err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { close(w.run); <-exited })
	return w
}

func (w *nsWorker) do(f func()) {
	done := make(chan struct{})
	w.run <- func() { f(); close(done) }
	<-done
}

// floatingBenchHost is one network host in its namespace with the
// production appliers, holding n floating IPs.
type floatingBenchHost struct {
	w          *nsWorker
	a          *Agent
	fw         *iptables.Firewall
	floating   *link.Floating
	opts       plan.Options
	base, more model.HostState
}

func newFloatingBenchHost(b *testing.B, n int) *floatingBenchHost {
	ns := nettest.Netns(b, "nnfbench")
	nettest.Run(b, ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
	nettest.Run(b, ns, "ip", "link", "add", "eth2", "type", "veth", "peer", "name", "eth2p")
	nettest.Run(b, ns, "ip", "link", "set", "eth0", "up")
	h := &floatingBenchHost{w: newWorker(b, ns)}
	dir := b.TempDir()
	h.w.do(func() {
		quiet := slog.New(slog.DiscardHandler)
		links, err := link.New(quiet)
		if err != nil {
			b.Fatal(err)
		}
		if h.floating, err = link.NewFloating(quiet); err != nil {
			b.Fatal(err)
		}
		h.floating.ARPCount = 1
		h.fw = iptables.New()
		h.opts = plan.Options{Host: "net1", FlatInterface: "eth2", PublicInterface: "eth0",
			RoutingSourceIP: netip.MustParseAddr("192.0.2.10"), DHCPBridge: "/bin/true"}
		// No dnsmasq is planned (the host NATs, serves no DHCP).
		h.a = New(Config{Host: "net1", Plan: h.opts, Logger: quiet}, nil, links, h.fw, dnsmasq.New(quiet, dir))
		h.a.SetFloating(h.floating)
	})
	b.Cleanup(func() { h.floating.Close() })
	h.base = floatingHost(n)
	h.more = h.base
	h.more.FloatingIPs = append(h.base.FloatingIPs[:n:n], floatingAt(n))
	h.apply(b, h.base, true)
	return h
}

// apply plans st and applies it on the host's thread; it returns the
// wall time of the two together.
func (h *floatingBenchHost) apply(b *testing.B, st model.HostState, full bool) time.Duration {
	var took time.Duration
	h.w.do(func() {
		start := time.Now()
		p, err := plan.Build(st, h.opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := h.a.apply(context.Background(), p, full); err != nil {
			b.Fatal(err)
		}
		took = time.Since(start)
	})
	return took
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkAssociateFloatingIP: the agent's sync after one floating IP is
// associated on a host that already holds 1, 100 or 1,000: plan, the nat
// chains that changed (one iptables-restore), the /32 on eth0 and one
// gratuitous ARP, against the kernel in a namespace per host. The hosts
// take turns within each iteration, beside a bare iptables-restore exec
// (the baseline), so load from other processes hits all alike; medians
// are reported. The disassociation that restores n between iterations
// (rules, address, conntrack -D) is not timed.
func BenchmarkAssociateFloatingIP(b *testing.B) {
	nettest.RequireRoot(b, "iptables-restore", "iptables-save", "conntrack")
	sizes := []int{1, 100, 1000}
	hosts := make([]*floatingBenchHost, len(sizes))
	for i, n := range sizes {
		hosts[i] = newFloatingBenchHost(b, n)
	}
	exec := newWorker(b, nettest.Netns(b, "nnfexec"))
	text := [2]string{
		"*nat\n:nova-bench - [0:0]\n-A nova-bench -d 198.18.0.1/32 -j DNAT --to-destination 10.0.0.2\nCOMMIT\n",
		"*nat\n:nova-bench - [0:0]\n-A nova-bench -d 198.18.0.1/32 -j DNAT --to-destination 10.0.0.3\nCOMMIT\n",
	}
	took := make([][]time.Duration, len(sizes))
	var bare []time.Duration
	restores := make([]int64, len(hosts))
	for i, h := range hosts {
		restores[i] = h.fw.Restores()
	}
	b.ResetTimer()
	for i := range b.N {
		for j := range hosts {
			k := (i + j) % len(hosts) // rotate who goes first
			took[k] = append(took[k], hosts[k].apply(b, hosts[k].more, false))
			hosts[k].apply(b, hosts[k].base, false)
		}
		exec.do(func() {
			start := time.Now()
			restoreHere(b, text[i%2], "--noflush")
			bare = append(bare, time.Since(start))
		})
	}
	b.StopTimer()
	for k, n := range sizes {
		b.ReportMetric(float64(median(took[k]).Microseconds())/1000, fmt.Sprintf("ms/assoc@%d", n))
		if got := (hosts[k].fw.Restores() - restores[k]) / int64(b.N); got != 2 {
			b.Errorf("at %d: %d iptables-restores per associate+disassociate, want 2 (one each)", n, got)
		}
	}
	b.ReportMetric(float64(median(bare).Microseconds())/1000, "ms/bare-restore")
	b.ReportMetric(float64(median(took[2]))/float64(median(took[0])), "ratio@1000/1")
}

// novaFloatingTable is the nat table nova's IptablesManager kept on a
// network host with n floating IPs: floating_forward_rules for each, in
// flat chains.
func novaFloatingTable(n int) string {
	var b strings.Builder
	b.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	for _, c := range []string{"nova-network-OUTPUT", "nova-network-POSTROUTING", "nova-network-PREROUTING", "nova-network-float-snat", "nova-network-snat", "nova-postrouting-bottom"} {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	b.WriteString("-A PREROUTING -j nova-network-PREROUTING\n-A OUTPUT -j nova-network-OUTPUT\n-A POSTROUTING -j nova-network-POSTROUTING\n-A POSTROUTING -j nova-postrouting-bottom\n")
	b.WriteString("-A nova-network-snat -j nova-network-float-snat\n-A nova-network-snat -s 10.0.0.0/20 -o eth0 -j SNAT --to-source 192.0.2.10\n-A nova-postrouting-bottom -j nova-network-snat\n")
	for i := range n {
		f := floatingAt(i)
		fl, fx := f.Address, f.FixedAddress
		fmt.Fprintf(&b, "-A nova-network-PREROUTING -d %s/32 -j DNAT --to-destination %s\n", fl, fx)
		fmt.Fprintf(&b, "-A nova-network-OUTPUT -d %s/32 -j DNAT --to-destination %s\n", fl, fx)
		fmt.Fprintf(&b, "-A nova-network-POSTROUTING -s %s/32 -m conntrack --ctstate DNAT -j SNAT --to-source %s\n", fx, fl)
		fmt.Fprintf(&b, "-A nova-network-float-snat -s %s/32 -d %s/32 -j SNAT --to-source %s\n", fx, fx, fl)
		fmt.Fprintf(&b, "-A nova-network-float-snat -s %s/32 -o eth0 -j SNAT --to-source %s\n", fx, fl)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// BenchmarkBaselineNovaAssociateFloatingIP is nova's way of associating
// one more floating IP on a host that holds n: iptables-save, regenerate
// the nat table, restore all of it (the address itself is one netlink
// call in both, left out here).
func BenchmarkBaselineNovaAssociateFloatingIP(b *testing.B) {
	nettest.RequireRoot(b, "iptables-restore", "iptables-save")
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("floating=%d", n), func(b *testing.B) {
			ns := nettest.Netns(b, "nnfnova")
			leave := enter(b, ns)
			defer leave()
			restoreHere(b, novaFloatingTable(n))
			tables := [2]string{novaFloatingTable(n + 1), novaFloatingTable(n)}
			b.ResetTimer()
			for i := range b.N {
				if out, err := exec.Command("iptables-save", "-t", "nat").Output(); err != nil || !strings.Contains(string(out), "nova-network-snat") {
					b.Fatalf("iptables-save: %v", err)
				}
				restoreHere(b, tables[i%2])
			}
		})
	}
}

// restoreHere runs iptables-restore in the calling thread's namespace
// (enter), as the agent does inside its host.
func restoreHere(b *testing.B, text string, args ...string) {
	b.Helper()
	cmd := exec.Command("iptables-restore", append([]string{"-w"}, args...)...)
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("iptables-restore: %v: %s", err, out)
	}
}
