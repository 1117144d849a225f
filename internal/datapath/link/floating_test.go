package link_test

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"novanet/internal/datapath/link"
	"novanet/internal/nettest"
	"novanet/internal/plan"
)

func fip(dev, addr string) plan.FloatingAddr {
	return plan.FloatingAddr{InterfaceAddr: plan.InterfaceAddr{Interface: dev, Address: netip.PrefixFrom(netip.MustParseAddr(addr), 32)}}
}

// The applier adds tagged /32s, removes only its own (an operator's /32
// on the same interface stays, also across a restarted applier), and a
// full apply puts back one deleted by hand.
func TestFloatingAddressesOwnOnly(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.Netns(t, "nnfip")
	nettest.Run(t, ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer")
	nettest.Run(t, ns, "ip", "link", "set", "eth0", "up")
	nettest.Run(t, ns, "ip", "addr", "add", "203.0.113.1/24", "dev", "eth0")
	nettest.Run(t, ns, "ip", "addr", "add", "198.51.100.99/32", "dev", "eth0") // the operator's

	f, err := link.NewFloatingInNamespace(ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	want := []plan.FloatingAddr{fip("eth0", "198.51.100.3"), fip("eth0", "198.51.100.4")}
	if err := f.Apply(ctx, want, false); err != nil {
		t.Fatal(err)
	}
	out := nettest.Run(t, ns, "ip", "-4", "addr", "show", "dev", "eth0")
	for _, w := range []string{"198.51.100.3/32", "198.51.100.4/32", "198.51.100.99/32", "203.0.113.1/24"} {
		if !strings.Contains(out, w) {
			t.Errorf("eth0 lacks %s:\n%s", w, out)
		}
	}
	n := f.Changes()
	if err := f.Apply(ctx, want, false); err != nil || f.Changes() != n {
		t.Errorf("second apply: err %v, %d changes", err, f.Changes()-n)
	}

	// A restarted applier finds its addresses by their tag.
	f2, err := link.NewFloatingInNamespace(ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if err := f2.Apply(ctx, want[:1], false); err != nil {
		t.Fatal(err)
	}
	out = nettest.Run(t, ns, "ip", "-4", "addr", "show", "dev", "eth0")
	if strings.Contains(out, "198.51.100.4/32") || !strings.Contains(out, "198.51.100.3/32") || !strings.Contains(out, "198.51.100.99/32") {
		t.Errorf("after dropping .4 from the plan:\n%s", out)
	}
	if err := f2.Apply(ctx, nil, false); err != nil {
		t.Fatal(err)
	}
	out = nettest.Run(t, ns, "ip", "-4", "addr", "show", "dev", "eth0")
	if strings.Contains(out, "198.51.100.3/32") || !strings.Contains(out, "198.51.100.99/32") || !strings.Contains(out, "203.0.113.1/24") {
		t.Errorf("after an empty plan only the operator's addresses may stay:\n%s", out)
	}

	// Drift: deleted by hand, back on the next full apply.
	if err := f2.Apply(ctx, want[:1], false); err != nil {
		t.Fatal(err)
	}
	nettest.Run(t, ns, "ip", "addr", "del", "198.51.100.3/32", "dev", "eth0")
	if err := f2.Apply(ctx, want[:1], true); err != nil {
		t.Fatal(err)
	}
	if out := nettest.Run(t, ns, "ip", "-4", "addr", "show", "dev", "eth0"); !strings.Contains(out, "198.51.100.3/32") {
		t.Errorf("full apply did not repair:\n%s", out)
	}

	// A local instance's tap gets hairpin mode.
	nettest.Run(t, ns, "ip", "link", "add", "br100", "type", "bridge")
	nettest.Run(t, ns, "ip", "link", "add", "tapvm1", "type", "veth", "peer", "name", "tapvm1p")
	nettest.Run(t, ns, "ip", "link", "set", "tapvm1", "master", "br100")
	withPort := fip("eth0", "198.51.100.3")
	withPort.Fixed, withPort.Port = netip.MustParseAddr("10.0.0.2"), "tapvm1"
	if err := f2.Apply(ctx, []plan.FloatingAddr{withPort}, false); err != nil {
		t.Fatal(err)
	}
	if out := nettest.Run(t, ns, "bridge", "-d", "link", "show", "dev", "tapvm1"); !strings.Contains(out, "hairpin on") {
		t.Errorf("tapvm1 not in hairpin mode:\n%s", out)
	}

	// An address the operator holds is refused with what to do.
	err = f2.Apply(ctx, append(want[:1:1], fip("eth0", "198.51.100.99")), false)
	if err == nil || !strings.Contains(err.Error(), "not put there by novanet") {
		t.Errorf("claiming the operator's address: %v", err)
	}
	err = f2.Apply(ctx, []plan.FloatingAddr{fip("nosuch0", "198.51.100.7")}, false)
	if err == nil || !strings.Contains(err.Error(), "does not exist on this host") {
		t.Errorf("missing interface: %v", err)
	}
}

// Gratuitous ARP moves a neighbour's entry for the address to this
// interface's MAC, as when a floating address moves between computes.
func TestFloatingGratuitousARP(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.Netns(t, "nngarp")
	peer := nettest.Netns(t, "nngarpp")
	nettest.Run(t, ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", peer)
	nettest.Run(t, ns, "ip", "link", "set", "eth0", "up")
	nettest.Run(t, peer, "ip", "link", "set", "eth0", "up")
	nettest.Run(t, ns, "ip", "addr", "add", "203.0.113.1/24", "dev", "eth0")
	nettest.Run(t, peer, "ip", "addr", "add", "203.0.113.254/24", "dev", "eth0")
	// The peer believes the address lives elsewhere.
	nettest.Run(t, peer, "ip", "neigh", "replace", "203.0.113.7", "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "stale")

	f, err := link.NewFloatingInNamespace(ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.ARPCount, f.ARPInterval = 3, 50*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := f.Apply(ctx, []plan.FloatingAddr{fip("eth0", "203.0.113.7")}, false); err != nil {
		t.Fatal(err)
	}
	mac := strings.Fields(nettest.Run(t, ns, "cat", "/sys/class/net/eth0/address"))[0]
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := exec.Command("ip", "netns", "exec", peer, "ip", "neigh", "show", "203.0.113.7", "dev", "eth0").CombinedOutput()
		if strings.Contains(string(out), mac) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer's entry not moved to %s: %s", mac, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	deadline = time.Now().Add(5 * time.Second)
	for f.Announcements() < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := f.Announcements(); n != 3 {
		t.Errorf("announced %d times, want send_arp_for_ha_count 3", n)
	}
}
