package l2guard_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"novanet/internal/datapath/l2guard"
	"novanet/internal/nettest"
	"novanet/internal/plan"
)

func port(dev string, mac [6]byte, ip string) plan.GuardPort {
	return plan.GuardPort{Device: dev, MAC: mac, IPv4: netip.MustParseAddr(ip)}
}

func newGuard(t *testing.T, ns string) *l2guard.Guard {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	g := l2guard.New()
	g.NetNS = int(h)
	return g
}

func TestGuardIsProgrammedAndResyncsByName(t *testing.T) {
	nettest.RequireRoot(t, "nft")
	ns := nettest.Netns(t, "l2g")
	g := newGuard(t, ns)
	p1 := port("tapaaa", [6]byte{0xfa, 0x16, 0x3e, 0, 0, 1}, "10.0.0.2")
	p2 := port("tapbbb", [6]byte{0xfa, 0x16, 0x3e, 0, 0, 2}, "10.0.0.3")
	want := plan.L2Guard{Ports: []plan.GuardPort{p1, p2}}
	if err := g.Apply(want, true); err != nil {
		t.Fatal(err)
	}
	out := nettest.Run(t, ns, "nft", "list", "table", "bridge", plan.GuardTable)
	t.Logf("nft list table bridge %s:\n%s", plan.GuardTable, out)
	for _, s := range []string{
		"type filter hook prerouting priority dstnat; policy accept;",
		`"tapaaa" . fa:16:3e:00:00:01`,
		`"tapbbb" . 10.0.0.3`,
		`iifname @guarded_ports iifname . ether saddr != @port_macs drop`,
		`iifname @guarded_ports iifname . arp saddr ether != @port_macs drop`,
	} {
		if !strings.Contains(out, s) {
			t.Errorf("listing lacks %q", s)
		}
	}
	// The kernel holds one rule per line of the plan's rendering.
	if got, want := strings.Count(out, " drop\n"), len(plan.GuardRules()); got != want {
		t.Errorf("the base chain has %d drops, the plan renders %d", got, want)
	}

	// Nothing changed: no transaction, from this applier or a fresh one.
	n := g.Transactions()
	if err := g.Apply(want, true); err != nil {
		t.Fatal(err)
	}
	fresh := newGuard(t, ns)
	if err := fresh.Apply(want, true); err != nil {
		t.Fatal(err)
	}
	if g.Transactions() != n || fresh.Transactions() != 0 {
		t.Errorf("a resync with nothing changed sent %d+%d transactions", g.Transactions()-n, fresh.Transactions())
	}

	// p1 gets a new address, p2 goes, p3 comes: one transaction.
	p1b := port("tapaaa", p1.MAC, "10.0.0.9")
	p3 := port("tapccc", [6]byte{0xfa, 0x16, 0x3e, 0, 0, 3}, "10.0.0.4")
	want = plan.L2Guard{Ports: []plan.GuardPort{p1b, p3}}
	n = g.Transactions()
	if err := g.Apply(want, false); err != nil {
		t.Fatal(err)
	}
	if g.Transactions() != n+1 {
		t.Errorf("a change sent %d transactions, want 1", g.Transactions()-n)
	}
	out = nettest.Run(t, ns, "nft", "list", "table", "bridge", plan.GuardTable)
	if strings.Contains(out, "tapbbb") || strings.Contains(out, "10.0.0.2") || !strings.Contains(out, `"tapaaa" . 10.0.0.9`) || !strings.Contains(out, `"tapccc" . fa:16:3e:00:00:03`) {
		t.Errorf("after the change:\n%s", out)
	}
	devs, err := fresh.Devices()
	if err != nil || !slices.Equal(devs, []string{"tapaaa", "tapccc"}) {
		t.Errorf("devices %v %v", devs, err)
	}

	// No port left: the table goes.
	if err := g.Apply(plan.L2Guard{}, false); err != nil {
		t.Fatal(err)
	}
	if out := nettest.Run(t, ns, "nft", "list", "tables"); strings.Contains(out, plan.GuardTable) {
		t.Errorf("table left with no port to guard: %s", out)
	}
}

// A first sync of many ports goes in chunks (one batch would exceed the
// netlink message limits) and every port ends up guarded.
func TestGuardManyPorts(t *testing.T) {
	nettest.RequireRoot(t, "nft")
	ns := nettest.Netns(t, "l2g")
	g := newGuard(t, ns)
	var want plan.L2Guard
	for i := range 1000 {
		want.Ports = append(want.Ports, port("tap"+strings.Repeat("0", 5-len(itoa(i)))+itoa(i), [6]byte{0xfa, 0x16, 0x3e, 0, byte(i >> 8), byte(i)}, "10.1."+itoa(i/250)+"."+itoa(i%250+1)))
	}
	if err := g.Apply(want, true); err != nil {
		t.Fatal(err)
	}
	devs, err := g.Devices()
	if err != nil || len(devs) != 1000 {
		t.Fatalf("%d devices guarded, want 1000 (%v)", len(devs), err)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}
