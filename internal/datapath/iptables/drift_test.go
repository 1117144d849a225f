package iptables_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"novanet/internal/datapath/iptables"
	"novanet/internal/nettest"
)

// TestForeignChangesAreSeenAndRepaired: every change another program
// makes to the filter or nat table (Docker's FORWARD policy and chain in
// front, a flushed or deleted chain, a whole-ruleset flush) is announced
// by the watch, and one full apply puts the nova-* chains and their jumps
// back first; the applier's own restore is announced too, and the apply
// that follows changes nothing.
func TestForeignChangesAreSeenAndRepaired(t *testing.T) {
	nettest.RequireRoot(t, "iptables", "iptables-restore", "iptables-save", "nft")
	ns := nettest.Netns(t, "nnfwdrift")
	ctx := context.Background()
	p := controllerPlan(t)
	fw := iptables.New()
	fw.Netns = ns
	if err := fw.Apply(ctx, p.Firewall, false); err != nil {
		t.Fatal(err)
	}
	fw.TakeChanges()
	want := save(t, ns)

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := make(chan string, 1024)
	go func() {
		if err := fw.Watch(wctx, func(r string) { seen <- r }); err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	drain := func() {
		for {
			select {
			case <-seen:
			case <-time.After(150 * time.Millisecond):
				return
			}
		}
	}
	for _, f := range []struct {
		name   string
		inject [][]string
	}{
		{"flushed nova chain", [][]string{{"iptables", "-t", "nat", "-F", "nova-network-snat"}}},
		{"deleted jump", [][]string{{"iptables", "-D", "FORWARD", "-j", "nova-filter-top"}}},
		{"docker in front", [][]string{{"iptables", "-N", "DOCKER-USER"}, {"iptables", "-A", "DOCKER-USER", "-j", "DROP"},
			{"iptables", "-I", "FORWARD", "1", "-j", "DOCKER-USER"}, {"iptables", "-P", "FORWARD", "DROP"}}},
		{"table flush", [][]string{{"iptables", "-t", "nat", "-F"}, {"iptables", "-t", "nat", "-X"}}},
		{"ruleset flush", [][]string{{"nft", "flush", "ruleset"}}},
	} {
		drain()
		for _, c := range f.inject {
			nettest.Run(t, ns, c...)
		}
		select {
		case r := <-seen:
			t.Logf("%s: seen %q", f.name, r)
		case <-time.After(3 * time.Second):
			t.Fatalf("%s: no notification", f.name)
		}
		if err := fw.Apply(ctx, p.Firewall, true); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		got := save(t, ns)
		for _, line := range strings.Split(want, "\n") {
			if strings.HasPrefix(line, "-A nova-") && !strings.Contains(got, line) {
				t.Errorf("%s: %q not restored", f.name, line)
			}
		}
		for _, l := range listing(t, ns, "filter") {
			if strings.HasPrefix(l, "-A FORWARD") {
				if !strings.Contains(l, "-j nova-") {
					t.Errorf("%s: FORWARD's first rule is %q, not a nova jump", f.name, l)
				}
				break
			}
		}
		if ch := fw.TakeChanges(); len(ch) == 0 {
			t.Errorf("%s: repaired without a description", f.name)
		} else {
			t.Logf("%s: %q", f.name, ch)
		}
		// The restore's own notifications: the full apply they cause
		// runs no restore.
		drain()
		n := fw.Restores()
		if err := fw.Apply(ctx, p.Firewall, true); err != nil || fw.Restores() != n {
			t.Errorf("%s: the apply after the repair ran %d restores (err %v)", f.name, fw.Restores()-n, err)
		}
	}
}
