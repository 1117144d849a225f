package iptables_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"novanet/internal/datapath/iptables"
	"novanet/internal/model"
	"novanet/internal/nettest"
	"novanet/internal/plan"
)

var a = netip.MustParseAddr

// controllerPlan is seed 003's network host plan.
func controllerPlan(t *testing.T, dmz ...netip.Prefix) plan.Plan {
	t.Helper()
	n := model.Network{ID: 1, Label: "private", Kind: model.KindFlatDHCP, CIDR: netip.MustParsePrefix("10.0.0.0/24"),
		Gateway: a("10.0.0.1"), DHCPStart: a("10.0.0.2"), Bridge: "br100", BridgeInterface: "eth2", Host: "controller"}
	st := model.HostState{Host: "controller", Revision: 1, Options: model.ClusterOptions{FixedRanges: []netip.Prefix{n.CIDR}},
		Networks: []model.HostNetwork{{Network: n, BridgeAddress: a("10.0.0.1"), ServesDHCP: true, NAT: true}}}
	p, err := plan.Build(st, plan.Options{Host: "controller", FlatInterface: "eth2", PublicInterface: "eth0",
		RoutingSourceIP: a("192.0.2.10"), MetadataHost: a("192.0.2.10"), MetadataAPI: true, DMZCIDRs: dmz})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// listing is `iptables -t table -S` in ns, without policy lines.
func listing(t *testing.T, ns, table string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(nettest.Run(t, ns, "iptables", "-t", table, "-S")), "\n") {
		if !strings.HasPrefix(l, "-P ") {
			out = append(out, l)
		}
	}
	return out
}

func save(t *testing.T, ns string) string {
	t.Helper()
	var keep []string
	for _, l := range strings.Split(nettest.Run(t, ns, "iptables-save"), "\n") {
		if !strings.HasPrefix(l, "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func TestApplyMatchesPlanAndIsIdempotent(t *testing.T) {
	nettest.RequireRoot(t, "iptables", "iptables-restore", "iptables-save")
	ns := nettest.Netns(t, "nnipt")
	ctx := context.Background()
	p := controllerPlan(t)

	fw := iptables.New()
	fw.Netns = ns
	if err := fw.Apply(ctx, p.Firewall, false); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"filter", "nat"} {
		got := listing(t, ns, table)
		want := p.Firewall.Table(table).Listing()
		// iptables -S lists user chains in its own order; compare as sets
		// of -N lines and exact order of -A lines per chain.
		if !sameRules(got, want) {
			t.Errorf("%s table:\n got %q\nwant %q", table, got, want)
		}
	}
	before := save(t, ns)
	n := fw.Restores()
	if err := fw.Apply(ctx, p.Firewall, false); err != nil {
		t.Fatal(err)
	}
	if err := fw.Apply(ctx, p.Firewall, true); err != nil {
		t.Fatal(err)
	}
	if fw.Restores() != n {
		t.Errorf("re-applying the same plan ran iptables-restore %d more times", fw.Restores()-n)
	}
	// A restarted agent reads the kernel and changes nothing.
	fresh := iptables.New()
	fresh.Netns = ns
	if err := fresh.Apply(ctx, p.Firewall, false); err != nil {
		t.Fatal(err)
	}
	if fresh.Restores() != 0 {
		t.Errorf("a new applier over an applied kernel ran iptables-restore %d times", fresh.Restores())
	}
	if after := save(t, ns); after != before {
		t.Errorf("iptables-save changed:\n%s\n---\n%s", before, after)
	}
}

// sameRules compares two -S listings: same -N set, and the same -A lines
// in the same order within each chain.
func sameRules(got, want []string) bool {
	split := func(ls []string) (map[string]bool, map[string][]string) {
		ns, as := map[string]bool{}, map[string][]string{}
		for _, l := range ls {
			if c, ok := strings.CutPrefix(l, "-N "); ok {
				ns[c] = true
			} else if rest, ok := strings.CutPrefix(l, "-A "); ok {
				c, _, _ := strings.Cut(rest, " ")
				as[c] = append(as[c], l)
			}
		}
		return ns, as
	}
	gn, ga := split(got)
	wn, wa := split(want)
	if len(gn) != len(wn) || len(ga) != len(wa) {
		return false
	}
	for c := range wn {
		if !gn[c] {
			return false
		}
	}
	for c, l := range wa {
		if !slices.Equal(ga[c], l) {
			return false
		}
	}
	return true
}

func TestForeignRulesSurviveAndJumpsStayFirst(t *testing.T) {
	nettest.RequireRoot(t, "iptables", "iptables-restore", "iptables-save")
	ns := nettest.Netns(t, "nnipt")
	ctx := context.Background()
	// Someone else's chain and rules, as Docker or an operator would have.
	nettest.Run(t, ns, "iptables", "-N", "OPERATOR")
	nettest.Run(t, ns, "iptables", "-A", "OPERATOR", "-s", "198.51.100.0/24", "-j", "DROP")
	nettest.Run(t, ns, "iptables", "-A", "FORWARD", "-j", "OPERATOR")
	nettest.Run(t, ns, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "192.0.2.0/24", "-j", "MASQUERADE")

	fw := iptables.New()
	fw.Netns = ns
	if err := fw.Apply(ctx, controllerPlan(t).Firewall, false); err != nil {
		t.Fatal(err)
	}
	filter := strings.Join(listing(t, ns, "filter"), "\n")
	for _, want := range []string{
		"-A FORWARD -j nova-filter-top\n-A FORWARD -j nova-network-FORWARD\n-A FORWARD -j nova-api-FORWARD\n-A FORWARD -j OPERATOR",
		"-A OPERATOR -s 198.51.100.0/24 -j DROP",
	} {
		if !strings.Contains(filter, want) {
			t.Errorf("filter lacks %q:\n%s", want, filter)
		}
	}
	nat := strings.Join(listing(t, ns, "nat"), "\n")
	if !strings.Contains(nat, "-A POSTROUTING -s 192.0.2.0/24 -j MASQUERADE") {
		t.Errorf("foreign nat rule lost:\n%s", nat)
	}

	// Someone inserts a rule above ours: a full resync puts ours first
	// again and keeps theirs.
	nettest.Run(t, ns, "iptables", "-I", "FORWARD", "1", "-s", "203.0.113.0/24", "-j", "DROP")
	if err := fw.Apply(ctx, controllerPlan(t).Firewall, true); err != nil {
		t.Fatal(err)
	}
	filter = strings.Join(listing(t, ns, "filter"), "\n")
	if !strings.Contains(filter, "-A FORWARD -j nova-filter-top\n-A FORWARD -j nova-network-FORWARD\n-A FORWARD -j nova-api-FORWARD\n-A FORWARD -s 203.0.113.0/24 -j DROP\n-A FORWARD -j OPERATOR") {
		t.Errorf("jumps not restored to the top:\n%s", filter)
	}
}

func TestDriftIsRepairedOnFullResync(t *testing.T) {
	nettest.RequireRoot(t, "iptables", "iptables-restore", "iptables-save")
	ns := nettest.Netns(t, "nnipt")
	ctx := context.Background()
	p := controllerPlan(t)
	fw := iptables.New()
	fw.Netns = ns
	if err := fw.Apply(ctx, p.Firewall, false); err != nil {
		t.Fatal(err)
	}
	want := save(t, ns)
	nettest.Run(t, ns, "iptables", "-t", "nat", "-F", "nova-network-snat")
	nettest.Run(t, ns, "iptables", "-D", "INPUT", "-j", "nova-network-INPUT")
	// A light sync trusts its cache...
	if err := fw.Apply(ctx, p.Firewall, false); err != nil {
		t.Fatal(err)
	}
	// ...a full one re-reads the kernel and repairs.
	if err := fw.Apply(ctx, p.Firewall, true); err != nil {
		t.Fatal(err)
	}
	if got := save(t, ns); got != want {
		t.Errorf("not repaired:\n%s\n--- want\n%s", got, want)
	}
}

func TestChainsLeftOutOfThePlanAreRemoved(t *testing.T) {
	nettest.RequireRoot(t, "iptables", "iptables-restore", "iptables-save")
	ns := nettest.Netns(t, "nnipt")
	ctx := context.Background()
	fw := iptables.New()
	fw.Netns = ns
	if err := fw.Apply(ctx, controllerPlan(t).Firewall, false); err != nil {
		t.Fatal(err)
	}
	// The host loses every role: an empty plan removes all nova- chains
	// and jumps, and nothing else.
	nettest.Run(t, ns, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
	if err := fw.Apply(ctx, plan.Firewall{}, false); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"filter", "nat"} {
		for _, l := range listing(t, ns, table) {
			if strings.Contains(l, "nova-") {
				t.Errorf("%s still has %q", table, l)
			}
		}
	}
	if !slices.Contains(listing(t, ns, "filter"), "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT") {
		t.Error("foreign INPUT rule removed")
	}
}

func TestRestoreErrorNamesTheLine(t *testing.T) {
	nettest.RequireRoot(t, "iptables", "iptables-restore", "iptables-save")
	ns := nettest.Netns(t, "nnipt")
	fw := iptables.New()
	fw.Netns = ns
	bad := plan.Firewall{Tables: []plan.Table{{Name: "filter", Chains: []plan.Chain{{Name: "nova-x", Rules: []plan.Rule{
		{Target: plan.Target{Verdict: plan.Goto, Chain: "nova-does-not-exist"}},
	}}}}}}
	err := fw.Apply(context.Background(), bad, false)
	if err == nil || !strings.Contains(err.Error(), `"-A nova-x -j nova-does-not-exist"`) {
		t.Fatalf("err = %v, want one quoting the bad rule", err)
	}
	// A rule iptables cannot parse: the error quotes it too.
	p := netip.MustParsePrefix
	bad = plan.Firewall{Tables: []plan.Table{{Name: "nat", Chains: []plan.Chain{{Name: "nova-y", Rules: []plan.Rule{
		{Source: p("10.0.0.0/24"), Target: plan.Target{Verdict: plan.SNAT, ToAddr: a("192.0.2.10")}},
		{Source: p("10.0.0.3/32"), Target: plan.Target{Verdict: plan.SNAT, ToAddr: a("192.0.2.10"), ToPort: 1024}},
	}}}}}}
	err = fw.Apply(context.Background(), bad, false)
	if err == nil || !strings.Contains(err.Error(), `"-A nova-y -s 10.0.0.3/32 -j SNAT --to-source 192.0.2.10:1024"`) {
		t.Fatalf("err = %v, want one quoting the rule without a protocol", err)
	}
	t.Log(err)
	// Nothing was half-applied.
	for _, l := range listing(t, ns, "filter") {
		if strings.Contains(l, "nova-") {
			t.Errorf("left behind: %q", l)
		}
	}
}
