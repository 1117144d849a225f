package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

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

// BenchmarkAssociateFloatingIP: the agent's sync after one floating IP is
// associated on a host that already holds n: plan, the nat chains that
// changed (one iptables-restore), the /32 on eth0 and one gratuitous ARP,
// against the kernel in a namespace. The disassociation that restores n
// between iterations (rules, address, conntrack -D) is not timed.
func BenchmarkAssociateFloatingIP(b *testing.B) {
	nettest.RequireRoot(b, "iptables-restore", "iptables-save", "conntrack")
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("floating=%d", n), func(b *testing.B) {
			ns := nettest.Netns(b, "nnfbench")
			nettest.Run(b, ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
			nettest.Run(b, ns, "ip", "link", "add", "eth2", "type", "veth", "peer", "name", "eth2p")
			nettest.Run(b, ns, "ip", "link", "set", "eth0", "up")
			leave := enter(b, ns)
			defer leave()
			quiet := slog.New(slog.DiscardHandler)
			links, err := link.New(quiet)
			if err != nil {
				b.Fatal(err)
			}
			floating, err := link.NewFloating(quiet)
			if err != nil {
				b.Fatal(err)
			}
			defer floating.Close()
			floating.ARPCount = 1
			fw := iptables.New()
			opts := plan.Options{Host: "net1", FlatInterface: "eth2", PublicInterface: "eth0",
				RoutingSourceIP: netip.MustParseAddr("192.0.2.10"), DHCPBridge: "/bin/true"}
			// No dnsmasq is planned (the host NATs, serves no DHCP).
			a := New(Config{Host: "net1", Plan: opts, Logger: quiet}, nil, links, fw, dnsmasq.New(quiet, b.TempDir()))
			a.SetFloating(floating)
			ctx := context.Background()
			apply := func(st model.HostState, full bool) {
				p, err := plan.Build(st, opts)
				if err != nil {
					b.Fatal(err)
				}
				if err := a.apply(ctx, p, full); err != nil {
					b.Fatal(err)
				}
			}
			base := floatingHost(n)
			apply(base, true)
			more := base
			more.FloatingIPs = append(base.FloatingIPs[:n:n], floatingAt(n))
			restores, changes := fw.Restores, floating.Changes
			b.ResetTimer()
			for range b.N {
				apply(more, false)
				b.StopTimer()
				apply(base, false)
				b.StartTimer()
			}
			b.StopTimer()
			if got := (fw.Restores - restores) / b.N; got != 2 {
				b.Errorf("%d iptables-restores per associate+disassociate, want 2 (one each)", got)
			}
			if got := (floating.Changes - changes) / b.N; got != 2 {
				b.Errorf("%d address changes per associate+disassociate, want 2", got)
			}
		})
	}
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

// BenchmarkBaselineIptablesRestoreExec is the floor under any iptables
// change: one iptables-restore --noflush of one one-rule chain.
func BenchmarkBaselineIptablesRestoreExec(b *testing.B) {
	nettest.RequireRoot(b, "iptables-restore")
	ns := nettest.Netns(b, "nnfexec")
	leave := enter(b, ns)
	defer leave()
	text := [2]string{
		"*nat\n:nova-bench - [0:0]\n-A nova-bench -d 198.18.0.1/32 -j DNAT --to-destination 10.0.0.2\nCOMMIT\n",
		"*nat\n:nova-bench - [0:0]\n-A nova-bench -d 198.18.0.1/32 -j DNAT --to-destination 10.0.0.3\nCOMMIT\n",
	}
	b.ResetTimer()
	for i := range b.N {
		restoreHere(b, text[i%2], "--noflush")
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
