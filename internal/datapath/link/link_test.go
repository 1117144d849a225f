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
	n := l.Changes
	if err := l.ApplyBridges(ctx, []plan.Bridge{br}, false); err != nil {
		t.Fatal(err)
	}
	if l.Changes != n {
		t.Errorf("second apply made %d changes", l.Changes-n)
	}

	// The hypervisor plugs the tap: the watcher reports it, the next
	// apply attaches it.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := make(chan string, 8)
	go func() { _ = l.WatchPorts(wctx, func(d string) { seen <- d }) }()
	time.Sleep(100 * time.Millisecond)
	nettest.Run(t, ns, "ip", "link", "add", "tapvm1", "type", "veth", "peer", "name", "vm1eth0")
	select {
	case d := <-seen:
		if d != "tapvm1" {
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
	n := l.Changes
	if err := l.ApplySysctls(ctx, want); err != nil {
		t.Fatal(err)
	}
	if l.Changes != n {
		t.Error("unchanged sysctl rewritten")
	}
	if err := l.ApplySysctls(ctx, []plan.Sysctl{{Key: "net.ipv4.no_such_key", Value: "1"}}); err == nil {
		t.Error("unknown sysctl accepted")
	}
}
