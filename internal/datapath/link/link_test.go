package link_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"novanet/internal/datapath/link"
	"novanet/internal/nettest"
	"novanet/internal/plan"
)

func TestBridgeUplinkAddressesAndPorts(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.Netns(t, "nnlink")
	// The VM network's interface, with an address and a route the host
	// must keep once it is bridged.
	nettest.Run(t, ns, "ip", "link", "add", "eth2", "type", "veth", "peer", "name", "eth2peer")
	nettest.Run(t, ns, "ip", "addr", "add", "10.0.0.5/24", "dev", "eth2")
	nettest.Run(t, ns, "ip", "link", "set", "eth2", "up")
	nettest.Run(t, ns, "ip", "route", "add", "198.51.100.0/24", "via", "10.0.0.254")

	l, err := link.NewInNamespace(ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	br := plan.Bridge{Name: "br100", Interface: "eth2",
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")},
		Ports:     []plan.Port{{Device: "tapvm1", MAC: "fa:16:3e:00:00:01"}}}
	if err := l.ApplyBridges(ctx, []plan.Bridge{br}, false); err != nil {
		t.Fatal(err)
	}
	eth2 := nettest.Run(t, ns, "ip", "-d", "link", "show", "eth2")
	if !strings.Contains(eth2, "master br100") || !strings.Contains(eth2, "PROMISC") {
		t.Errorf("eth2 not enslaved or not promiscuous:\n%s", eth2)
	}
	if out := nettest.Run(t, ns, "ip", "-4", "addr", "show", "eth2"); strings.Contains(out, "inet ") {
		t.Errorf("eth2 kept its address:\n%s", out)
	}
	addrs := nettest.Run(t, ns, "ip", "-4", "addr", "show", "br100")
	for _, want := range []string{"10.0.0.5/24", "10.0.0.1/24", "UP"} {
		if !strings.Contains(addrs, want) {
			t.Errorf("br100 lacks %s:\n%s", want, addrs)
		}
	}
	if r := nettest.Run(t, ns, "ip", "route", "show", "198.51.100.0/24"); !strings.Contains(r, "dev br100") {
		t.Errorf("route not moved to the bridge: %q", r)
	}

	// Nothing to do the second time.
	n := l.Changes()
	if err := l.ApplyBridges(ctx, []plan.Bridge{br}, false); err != nil {
		t.Fatal(err)
	}
	if l.Changes() != n {
		t.Errorf("second apply made %d changes", l.Changes()-n)
	}

	// The hypervisor plugs the tap: the watcher reports it, the next
	// apply attaches it.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := make(chan string, 8)
	go func() { _ = l.Watch(wctx, func(d string) { seen <- d }) }()
	time.Sleep(100 * time.Millisecond)
	nettest.Run(t, ns, "ip", "link", "add", "tapvm1", "type", "veth", "peer", "name", "vm1eth0")
	select {
	case d := <-seen:
		if !strings.Contains(d, "tapvm1") {
			t.Errorf("watcher reported %q", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("watcher did not report the new tap")
	}
	if err := l.ApplyBridges(ctx, []plan.Bridge{br}, false); err != nil {
		t.Fatal(err)
	}
	if out := nettest.Run(t, ns, "ip", "link", "show", "tapvm1"); !strings.Contains(out, "master br100") || !strings.Contains(out, ",UP") {
		t.Errorf("tap not attached and up:\n%s", out)
	}

	// The gateway address leaves the plan: it goes, the moved host
	// address stays.
	br.Addresses = nil
	if err := l.ApplyBridges(ctx, []plan.Bridge{br}, false); err != nil {
		t.Fatal(err)
	}
	addrs = nettest.Run(t, ns, "ip", "-4", "addr", "show", "br100")
	if strings.Contains(addrs, "10.0.0.1/24") || !strings.Contains(addrs, "10.0.0.5/24") {
		t.Errorf("after removing the gateway address:\n%s", addrs)
	}
}

func TestMissingUplinkIsAClearError(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.Netns(t, "nnlink")
	l, err := link.NewInNamespace(ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = l.ApplyBridges(context.Background(), []plan.Bridge{{Name: "br100", Interface: "eth9"}}, false)
	if err == nil || !strings.Contains(err.Error(), "flat_interface") {
		t.Fatalf("err = %v, want one that names flat_interface", err)
	}
	// The bridge itself is still made, so local taps work.
	if out := nettest.Run(t, ns, "ip", "link", "show", "br100"); !strings.Contains(out, "br100") {
		t.Error("bridge not created")
	}
}

func TestSysctlsWrittenOnlyWhenDifferent(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.Netns(t, "nnlink")
	l, err := link.NewInNamespace(ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := []plan.Sysctl{{Key: "net.ipv4.ip_forward", Value: "1"}}
	if err := l.ApplySysctls(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(nettest.Run(t, ns, "cat", "/proc/sys/net/ipv4/ip_forward")); got != "1" {
		t.Errorf("ip_forward = %s in the namespace", got)
	}
	n := l.Changes()
	if err := l.ApplySysctls(ctx, want); err != nil {
		t.Fatal(err)
	}
	if l.Changes() != n {
		t.Error("unchanged sysctl rewritten")
	}
	// A multi-value key reads back tab-separated: still equal.
	ports := []plan.Sysctl{{Key: "net.ipv4.ip_local_port_range", Value: "40000 50000"}}
	if err := l.ApplySysctls(ctx, ports); err != nil {
		t.Fatal(err)
	}
	n = l.Changes()
	if err := l.ApplySysctls(ctx, ports); err != nil {
		t.Fatal(err)
	}
	if l.Changes() != n {
		t.Error("unchanged multi-value sysctl rewritten")
	}
	if err := l.ApplySysctls(ctx, []plan.Sysctl{{Key: "net.ipv4.no_such_key", Value: "1"}}); err == nil {
		t.Error("unknown sysctl accepted")
	}
}

// addrs lists the IPv4 prefixes on dev in ns, in the kernel's order.
func addrs(t *testing.T, ns, dev string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(nettest.Run(t, ns, "ip", "-4", "-o", "addr", "show", "dev", dev), "\n") {
		f := strings.Fields(l)
		for i := range f {
			if f[i] == "inet" && i+1 < len(f) {
				out = append(out, f[i+1])
			}
		}
	}
	return out
}

func TestRestartedApplierChangesNothingAndRemovesOnlyItsOwnAddresses(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.Netns(t, "nnlink")
	nettest.Run(t, ns, "ip", "link", "add", "eth2", "type", "veth", "peer", "name", "eth2peer")
	nettest.Run(t, ns, "ip", "addr", "add", "10.0.0.5/24", "dev", "eth2")
	nettest.Run(t, ns, "ip", "link", "set", "eth2", "up")
	nettest.Run(t, ns, "ip", "link", "add", "tapvm1", "type", "veth", "peer", "name", "vm1eth0")
	ctx := context.Background()
	br := plan.Bridge{Name: "br100", Interface: "eth2",
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")},
		Ports:     []plan.Port{{Device: "tapvm1"}}}
	first, err := link.NewInNamespace(ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.ApplyBridges(ctx, []plan.Bridge{br}, false); err != nil {
		t.Fatal(err)
	}
	// The operator's own address on the bridge.
	nettest.Run(t, ns, "ip", "addr", "add", "10.0.0.9/24", "dev", "br100")
	// Links, IPv4 addresses and routes; not `ip -d` (its bridge timers
	// and IPv6 DAD state move on their own).
	state := func() string {
		return nettest.Run(t, ns, "ip", "-o", "link", "show") + nettest.Run(t, ns, "ip", "-4", "-o", "addr", "show") +
			nettest.Run(t, ns, "ip", "-4", "route", "show", "table", "all")
	}
	before := state()

	// An agent restarted with the same plan changes nothing, even on a
	// full apply.
	second, err := link.NewInNamespace(ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.ApplyBridges(ctx, []plan.Bridge{br}, true); err != nil {
		t.Fatal(err)
	}
	if second.Changes() != 0 {
		t.Errorf("a restarted applier made %d changes", second.Changes())
	}
	if after := state(); after != before {
		t.Errorf("links changed:\n%s\n---\n%s", before, after)
	}

	// The gateway moves while no agent runs: the next one removes the
	// address a previous one added, and keeps the moved host address
	// and the operator's.
	third, err := link.NewInNamespace(ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	br.Addresses = []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}
	if err := third.ApplyBridges(ctx, []plan.Bridge{br}, false); err != nil {
		t.Fatal(err)
	}
	got := addrs(t, ns, "br100")
	want := []string{"10.0.0.5/24", "10.0.0.9/24", "10.0.0.2/24"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("br100 addresses %v, want %v", got, want)
	}
	if out := nettest.Run(t, ns, "ip", "-d", "link", "show", "br100"); !strings.Contains(out, "alias novanet-addrs:10.0.0.2/24") {
		t.Errorf("bridge alias does not record the added address:\n%s", out)
	}
}

func TestRemovingAPrimaryGatewayKeepsTheSubnetsOtherAddresses(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.Netns(t, "nnlink")
	ctx := context.Background()
	l, err := link.NewInNamespace(ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	br := plan.Bridge{Name: "br100", Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}
	if err := l.ApplyBridges(ctx, []plan.Bridge{br}, false); err != nil {
		t.Fatal(err)
	}
	// Added after the gateway, so secondary: the kernel would delete it
	// with the primary unless promote_secondaries is on.
	nettest.Run(t, ns, "ip", "addr", "add", "10.0.0.9/24", "dev", "br100")
	br.Addresses = nil
	if err := l.ApplyBridges(ctx, []plan.Bridge{br}, false); err != nil {
		t.Fatal(err)
	}
	if got := addrs(t, ns, "br100"); strings.Join(got, " ") != "10.0.0.9/24" {
		t.Errorf("br100 addresses %v, want [10.0.0.9/24]", got)
	}
	if out := nettest.Run(t, ns, "ip", "-d", "link", "show", "br100"); strings.Contains(out, "alias") {
		t.Errorf("alias left after the last added address went:\n%s", out)
	}
}

func TestBridgeNetfilterSysctlInNamespace(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.Netns(t, "nnlink")
	l, err := link.NewInNamespace(ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := "/proc/sys/net/bridge/bridge-nf-call-iptables"
	nettest.Run(t, ns, "sh", "-c", "echo 0 > "+key)
	if err := l.ApplySysctls(ctx, []plan.Sysctl{{Key: "net.bridge.bridge-nf-call-iptables", Value: "1"}}); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(nettest.Run(t, ns, "cat", key)); got != "1" {
		t.Errorf("bridge-nf-call-iptables = %s in the namespace", got)
	}
	err = l.ApplySysctls(ctx, []plan.Sysctl{{Key: "net.bridge.no-such-key", Value: "1"}})
	if err == nil || !strings.Contains(err.Error(), "net.bridge.no-such-key") || !strings.Contains(err.Error(), "br_netfilter") {
		t.Errorf("err = %v, want one naming the key and br_netfilter", err)
	}
}

func TestVLANFieldsDoNotBreakABridge(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.Netns(t, "nnlink")
	l, err := link.NewInNamespace(ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The VLAN interface made by hand (a veth stands in: this kernel may
	// lack 802.1Q) is bridged like any uplink.
	nettest.Run(t, ns, "ip", "link", "add", "vlan100", "type", "veth", "peer", "name", "vlan100peer")
	br := plan.Bridge{Name: "br100", Interface: "vlan100", VLAN: 100, VLANParent: "eth1",
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}
	if err := l.ApplyBridges(ctx, []plan.Bridge{br}, false); err != nil {
		t.Fatal(err)
	}
	if out := nettest.Run(t, ns, "ip", "link", "show", "vlan100"); !strings.Contains(out, "master br100") {
		t.Errorf("vlan100 not bridged:\n%s", out)
	}
	// A missing one is a clear error that says how to make it; the
	// bridge and its address are still there.
	missing := plan.Bridge{Name: "br200", Interface: "vlan200", VLAN: 200, VLANParent: "eth1",
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.1.1/24")}}
	err = l.ApplyBridges(ctx, []plan.Bridge{br, missing}, false)
	if err == nil || !strings.Contains(err.Error(), "type vlan id 200") {
		t.Errorf("err = %v, want one saying how to create VLAN 200", err)
	}
	if got := addrs(t, ns, "br200"); strings.Join(got, " ") != "10.0.1.1/24" {
		t.Errorf("br200 addresses %v", got)
	}
}
