package iptables_test

import (
	"context"
	"net/netip"
	"os/exec"
	"testing"

	"novanet/internal/datapath/iptables"
	"novanet/internal/nettest"
	"novanet/internal/plan"
)

// everyRuleKind holds one rule per kind of match and target the model
// has, so the kernel's read-back of each is compared with its Spec.
func everyRuleKind(withSet bool) plan.Firewall {
	p := netip.MustParsePrefix
	icmp, code, any := 8, 0, -1
	rules := []plan.Rule{
		{Source: p("10.0.0.0/24"), Destination: p("169.254.169.254/32"), Protocol: "tcp",
			DstPorts: plan.PortRange{From: 80}, Target: plan.Target{Verdict: plan.Accept}},
		{InInterface: "br100", OutInterface: "eth0", Target: plan.Target{Verdict: plan.Accept}},
		{Protocol: "udp", SrcPorts: plan.PortRange{From: 67, To: 68}, DstPorts: plan.PortRange{From: 1000, To: 2000}, Target: plan.Target{Verdict: plan.Drop}},
		{Protocol: "tcp", Target: plan.Target{Verdict: plan.Return}},
		{Protocol: "icmp", ICMPType: &icmp, Target: plan.Target{Verdict: plan.Accept}},
		{Protocol: "icmp", ICMPType: &icmp, ICMPCode: &code, Target: plan.Target{Verdict: plan.Accept}},
		{Protocol: "icmp", ICMPType: &any, Target: plan.Target{Verdict: plan.Accept}},
		{State: []string{"RELATED", "ESTABLISHED"}, Target: plan.Target{Verdict: plan.Accept}},
		{CTState: []string{"DNAT"}, CTStateNegate: true, Source: p("10.0.0.0/24"), Destination: p("10.0.0.0/24"), Target: plan.Target{Verdict: plan.Accept}},
		{CTState: []string{"INVALID"}, Target: plan.Target{Verdict: plan.Drop}},
		{PhysdevIn: "tapvm1", Target: plan.Target{Verdict: plan.Goto, Chain: "nova-rt-b"}},
		{PhysdevOut: "tapvm1", PhysdevIn: "eth2", Target: plan.Target{Verdict: plan.Drop}},
		{Comment: "plain-comment", Target: plan.Target{Verdict: plan.Accept}},
		{Comment: "a comment with spaces", Target: plan.Target{Verdict: plan.Accept}},
	}
	if withSet {
		rules = append(rules, plan.Rule{SourceSet: "nova-rt-set", Protocol: "tcp", DstPorts: plan.PortRange{From: 22}, Target: plan.Target{Verdict: plan.Accept}})
	}
	return plan.Firewall{Tables: []plan.Table{
		{Name: "filter",
			Chains: []plan.Chain{{Name: "nova-rt-a", Rules: rules}, {Name: "nova-rt-b"}},
			Jumps:  []plan.Jump{{From: "FORWARD", To: "nova-rt-a"}}},
		{Name: "nat",
			Chains: []plan.Chain{{Name: "nova-rt-dnat", Rules: []plan.Rule{
				{Source: p("10.0.0.0/24"), Destination: p("169.254.169.254/32"), Protocol: "tcp", DstPorts: plan.PortRange{From: 80},
					Target: plan.Target{Verdict: plan.DNAT, ToAddr: netip.MustParseAddr("192.0.2.10"), ToPort: 8775}},
				{Destination: p("203.0.113.5/32"), Target: plan.Target{Verdict: plan.DNAT, ToAddr: netip.MustParseAddr("10.0.0.3")}},
			}}, {Name: "nova-rt-snat", Rules: []plan.Rule{
				{Source: p("10.0.0.0/24"), Target: plan.Target{Verdict: plan.SNAT, ToAddr: netip.MustParseAddr("192.0.2.10")}},
				{Source: p("10.0.0.3/32"), OutInterface: "eth0", Protocol: "tcp", Target: plan.Target{Verdict: plan.SNAT, ToAddr: netip.MustParseAddr("203.0.113.5"), ToPort: 1024}},
			}}},
			Jumps: []plan.Jump{{From: "PREROUTING", To: "nova-rt-dnat"}, {From: "POSTROUTING", To: "nova-rt-snat"}}},
	}}
}

// TestEveryRuleKindReadsBackEqual: what the kernel lists for each kind of
// rule is exactly its Spec, so a restarted applier and a full resync find
// nothing to change.
func TestEveryRuleKindReadsBackEqual(t *testing.T) {
	nettest.RequireRoot(t, "iptables", "iptables-restore", "iptables-save")
	ns := nettest.Netns(t, "nnipt")
	ctx := context.Background()
	withSet := false
	if _, err := exec.LookPath("ipset"); err == nil {
		if err := nettest.Cmd(ns, "ipset", "create", "nova-rt-set", "hash:net").Run(); err == nil {
			withSet = true
		}
	}
	if !withSet {
		t.Log("no ipset in this kernel or on PATH: the -m set rule is left out")
	}
	want := everyRuleKind(withSet)
	fw := iptables.New()
	fw.Netns = ns
	if err := fw.Apply(ctx, want, false); err != nil {
		t.Fatal(err)
	}
	before := save(t, ns)
	n := fw.Restores()
	if err := fw.Apply(ctx, want, true); err != nil {
		t.Fatal(err)
	}
	fresh := iptables.New()
	fresh.Netns = ns
	if err := fresh.Apply(ctx, want, false); err != nil {
		t.Fatal(err)
	}
	if fw.Restores() != n || fresh.Restores() != 0 {
		t.Errorf("full resync ran iptables-restore %d times, a fresh applier %d: some rule reads back differently from its Spec",
			fw.Restores()-n, fresh.Restores())
		for _, table := range []string{"filter", "nat"} {
			t.Logf("%s kernel:\n%v\nplanned:\n%v", table, listing(t, ns, table), want.Table(table).Listing())
		}
	}
	if after := save(t, ns); after != before {
		t.Errorf("iptables-save changed:\n%s\n---\n%s", before, after)
	}
}
