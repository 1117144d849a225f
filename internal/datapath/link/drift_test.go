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

// TestDriftIsWatchedAndRepaired: each fault another program can make to
// a bridge is reported by the watch and repaired by one light apply; the
// bridge's MAC stays pinned to its uplink's when a tap with a lower MAC
// joins.
func TestDriftIsWatchedAndRepaired(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.Netns(t, "nndrift")
	nettest.Run(t, ns, "ip", "link", "add", "eth2", "address", "02:00:00:00:00:99", "type", "veth", "peer", "name", "eth2peer")
	nettest.Run(t, ns, "ip", "link", "set", "eth2", "up")
	nettest.Run(t, ns, "ip", "link", "add", "tapvm1", "address", "02:00:00:00:00:01", "type", "veth", "peer", "name", "vm1eth0")
	l, err := link.NewInNamespace(ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	br := plan.Bridge{Name: "br100", Interface: "eth2",
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")},
		Ports:     []plan.Port{{Device: "tapvm1", MAC: "02:00:00:00:00:01"}}}
	if err := l.ApplyBridges(ctx, []plan.Bridge{br}, false); err != nil {
		t.Fatal(err)
	}
	if out := nettest.Run(t, ns, "ip", "link", "show", "br100"); !strings.Contains(out, "02:00:00:00:00:99") {
		t.Fatalf("bridge MAC not pinned to eth2's although tapvm1's is lower:\n%s", out)
	}
	if got := l.TakeChanges(); len(got) == 0 {
		t.Error("no change descriptions after the first apply")
	}
	n := l.Changes()
	if err := l.ApplyBridges(ctx, []plan.Bridge{br}, true); err != nil {
		t.Fatal(err)
	}
	if l.Changes() != n {
		t.Fatalf("a second full apply made %d changes: %v", l.Changes()-n, l.TakeChanges())
	}
	// A second applier (a restarted agent) adopts the pinned bridge.
	l2, err := link.NewInNamespace(ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.ApplyBridges(ctx, []plan.Bridge{br}, true); err != nil || l2.Changes() != 0 {
		t.Fatalf("restarted applier: %d changes %v, err %v", l2.Changes(), l2.TakeChanges(), err)
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := make(chan string, 64)
	go func() { _ = l.Watch(wctx, func(d string) { seen <- d }) }()
	time.Sleep(100 * time.Millisecond)
	for _, f := range []struct {
		name, want string
		inject     []string
		check      func(string) bool
		show       []string
	}{
		{"promisc off", "not promiscuous", []string{"ip", "link", "set", "eth2", "promisc", "off"},
			func(s string) bool { return strings.Contains(s, "PROMISC") }, []string{"ip", "link", "show", "eth2"}},
		{"uplink unbridged", "eth2", []string{"ip", "link", "set", "eth2", "nomaster"},
			func(s string) bool { return strings.Contains(s, "master br100") }, []string{"ip", "link", "show", "eth2"}},
		{"bridge address removed", "10.0.0.1/24", []string{"ip", "addr", "del", "10.0.0.1/24", "dev", "br100"},
			func(s string) bool { return strings.Contains(s, "10.0.0.1/24") }, []string{"ip", "-4", "addr", "show", "br100"}},
		{"tap unbridged", "tapvm1", []string{"ip", "link", "set", "tapvm1", "nomaster"},
			func(s string) bool { return strings.Contains(s, "master br100") }, []string{"ip", "link", "show", "tapvm1"}},
		{"bridge MAC set elsewhere", "MAC", []string{"ip", "link", "set", "br100", "address", "02:00:00:00:00:02"},
			func(s string) bool { return strings.Contains(s, "02:00:00:00:00:99") }, []string{"ip", "link", "show", "br100"}},
	} {
		for len(seen) > 0 {
			<-seen
		}
		nettest.Run(t, ns, f.inject...)
		var why string
		deadline := time.After(3 * time.Second)
	wait:
		for {
			select {
			case why = <-seen:
				if strings.Contains(why, f.want) {
					break wait
				}
			case <-deadline:
				t.Fatalf("%s: the watch reported nothing matching %q (last %q)", f.name, f.want, why)
			}
		}
		if err := l.ApplyBridges(ctx, []plan.Bridge{br}, false); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if out := nettest.Run(t, ns, f.show...); !f.check(out) {
			t.Errorf("%s (%s): not repaired by a light apply:\n%s", f.name, why, out)
		}
		if ch := l.TakeChanges(); len(ch) == 0 {
			t.Errorf("%s: repaired without a change description", f.name)
		} else {
			t.Logf("%s: seen %q, done %q", f.name, why, ch)
		}
	}
}
