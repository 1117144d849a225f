package plan

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// Folding keeps iptables' first-match order: like chains share one chain
// and set whatever order their addresses come in, a repeated address
// starts a new run (its first rule must win), and a chain something else
// also jumps to keeps its own name.
func TestFoldKeepsFirstMatchOrder(t *testing.T) {
	accept := []Rule{{Target: Target{Verdict: Accept}}}
	drop := []Rule{{Target: Target{Verdict: Drop}}}
	jump := func(addr, chain string) Rule {
		return Rule{Destination: netip.PrefixFrom(netip.MustParseAddr(addr), 32), Target: jumpTo(chain)}
	}
	tb := Table{Name: "filter", Jumps: []Jump{{From: "FORWARD", To: "x"}, {From: "INPUT", To: "c4"}}, Chains: []Chain{
		{Name: "x", Rules: []Rule{
			jump("10.0.0.9", "c1"), jump("10.0.0.2", "c2"), jump("10.0.0.5", "c3"),
			jump("10.0.0.9", "c3"), // repeated: a second run
			jump("10.0.0.7", "c4"), // c4 is jumped to from INPUT too
			{Protocol: "udp", Target: Target{Verdict: Drop}},
		}},
		{Name: "c1", Rules: accept}, {Name: "c2", Rules: accept}, {Name: "c3", Rules: drop}, {Name: "c4", Rules: accept},
	}}
	nt := nftTable(tb, nil)
	var x NFTChain
	var names []string
	for _, c := range nt.Chains {
		names = append(names, c.Name)
		if c.Name == "x" {
			x = c
		}
	}
	acc, dr := foldedName("x", accept), foldedName("x", drop)
	var got []string
	for _, r := range x.Rules {
		got = append(got, r.Text())
	}
	want := []string{
		"ip daddr @" + acc + " jump " + acc, "ip daddr @" + dr + " jump " + dr,
		"ip daddr @" + dr + "-1 jump " + dr, // the second run, its own set
		"ip daddr 10.0.0.7 jump c4",
		"meta l4proto udp drop",
	}
	if !slices.Equal(got, want) {
		t.Errorf("chain x:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, gone := range []string{"c1", "c2", "c3"} {
		if slices.Contains(names, gone) {
			t.Errorf("folded chain %s is still listed: %v", gone, names)
		}
	}
	if !slices.Contains(names, "c4") {
		t.Errorf("c4 (also jumped to from INPUT) was folded: %v", names)
	}
	sets := map[string][]string{}
	for _, s := range nt.Sets {
		for _, a := range s.Elements {
			sets[s.Name] = append(sets[s.Name], a.String())
		}
	}
	if !slices.Equal(sets[acc], []string{"10.0.0.2", "10.0.0.9"}) || !slices.Equal(sets[dr], []string{"10.0.0.5"}) || !slices.Equal(sets[dr+"-1"], []string{"10.0.0.9"}) {
		t.Errorf("sets: %v", sets)
	}
}
