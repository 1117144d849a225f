package ipset_test

import (
	"context"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"novanet/internal/datapath/ipset"
	"novanet/internal/datapath/iptables"
	"novanet/internal/datapath/runner"
	"novanet/internal/model"
	"novanet/internal/nettest"
	"novanet/internal/plan"
)

var (
	a = netip.MustParseAddr
	p = netip.MustParsePrefix
)

// computeState: two instances on a compute host in group web, whose rules
// cover every kind the planner renders (ports, ranges, icmp type/code,
// any protocol, a CIDR, a source group).
func computeState(webMembers ...netip.Addr) model.HostState {
	n := model.Network{ID: 1, Label: "private", Kind: model.KindFlatDHCP, CIDR: p("10.0.0.0/24"),
		Gateway: a("10.0.0.1"), Bridge: "br100", BridgeInterface: "eth2", Host: "controller"}
	web := model.SecurityGroup{ID: 2, ProjectID: "demo", Name: "web", Rules: []model.SecurityGroupRule{
		{ID: 1, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: p("203.0.113.0/24")},
		{ID: 2, Protocol: "tcp", FromPort: 1, ToPort: 65535, CIDR: p("0.0.0.0/0")},
		{ID: 3, Protocol: "icmp", FromPort: 8, ToPort: -1, SourceGroupID: 2},
		{ID: 4, Protocol: "icmp", FromPort: 3, ToPort: 4, CIDR: p("198.51.100.0/24")},
		{ID: 5, Protocol: "udp", FromPort: 5000, ToPort: 5010, SourceGroupID: 2},
		{ID: 6, Protocol: "", FromPort: -1, ToPort: -1, CIDR: p("192.0.2.0/24")},
	}}
	ins := []model.HostInstance{
		{UUID: "u1", VIFID: 9, Address: a("10.0.0.2"), MAC: "fa:16:3e:00:00:01", Device: "tapu1", SecurityGroups: []int64{2}},
		{UUID: "u2", VIFID: 10, Address: a("10.0.0.3"), MAC: "fa:16:3e:00:00:02", Device: "tapu2", SecurityGroups: []int64{2}},
	}
	return model.HostState{Host: "compute-1", Options: model.ClusterOptions{AllowSameNetTraffic: true},
		Networks:       []model.HostNetwork{{Network: n, DHCPServer: a("10.0.0.1"), Instances: ins}},
		SecurityGroups: []model.HostSecurityGroup{{SecurityGroup: web, Members: webMembers}}}
}

func build(t *testing.T, st model.HostState) plan.Firewall {
	t.Helper()
	pl, err := plan.Build(st, plan.Options{Host: "compute-1", FlatInterface: "eth2", RoutingSourceIP: a("192.0.2.10")})
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Warnings) > 0 {
		t.Fatalf("warnings: %v", pl.Warnings)
	}
	return pl.Firewall
}

type appliers struct {
	sets  *ipset.Sets
	rules *iptables.Firewall
	// setRestores counts the sets' ipset restore runs.
	setRestores *restoreCounter
}

// restoreCounter runs commands in a namespace and counts restores.
type restoreCounter struct {
	runner.Exec
	n int
}

func (c *restoreCounter) Run(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	if len(args) > 0 && args[0] == "restore" {
		c.n++
	}
	return c.Exec.Run(ctx, stdin, name, args...)
}

func newAppliers(ns string) appliers {
	ap := appliers{sets: ipset.New(), rules: iptables.New(), setRestores: &restoreCounter{Exec: runner.Exec{Netns: ns}}}
	ap.sets.Netns, ap.rules.Netns = ns, ns
	ap.sets.Runner = ap.setRestores
	return ap
}

func (ap appliers) apply(t *testing.T, fw plan.Firewall, full bool) {
	t.Helper()
	ctx := context.Background()
	if err := ap.sets.Ensure(ctx, fw.Sets, full); err != nil {
		t.Fatal(err)
	}
	if err := ap.rules.Apply(ctx, fw, full); err != nil {
		t.Fatal(err)
	}
	if err := ap.sets.Prune(ctx, fw.Sets); err != nil {
		t.Fatal(err)
	}
}

// kernelSets is `ipset save` of the owned sets, members sorted.
func kernelSets(t *testing.T, ns string) []string {
	var out []string
	for _, l := range strings.Split(nettest.Run(t, ns, "ipset", "save"), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && strings.HasPrefix(f[1], plan.SetPrefix) {
			if f[0] == "create" {
				l = strings.Join(f[:5], " ") // drop hashsize/maxelem/bucketsize
			}
			out = append(out, l)
		}
	}
	slices.Sort(out) // "add" before "create": order is not what is compared
	return out
}

func plannedSets(fw plan.Firewall) []string {
	var out []string
	for _, s := range fw.Sets {
		out = append(out, s.IpsetLines()...)
	}
	slices.Sort(out)
	return out
}

func filterListing(t *testing.T, ns string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(nettest.Run(t, ns, "iptables", "-S")), "\n") {
		if !strings.HasPrefix(l, "-P ") {
			out = append(out, l)
		}
	}
	return out
}

func TestSetsAndInstanceChainsReadBackAsPlanned(t *testing.T) {
	nettest.RequireRoot(t, "ipset", "iptables-restore")
	ns := nettest.Netns(t, "ipset")
	ap := newAppliers(ns)
	t.Cleanup(func() {
		// the namespace's iptables go with it; sets are per namespace too
		_ = ap.rules.Apply(context.Background(), plan.Firewall{}, true)
		_ = ap.sets.Prune(context.Background(), nil)
	})
	nettest.Run(t, ns, "ipset", "create", "other", "hash:ip")

	fw := build(t, computeState(a("10.0.0.2"), a("10.0.0.3")))
	ap.apply(t, fw, true)
	if got, want := kernelSets(t, ns), plannedSets(fw); !slices.Equal(got, want) {
		t.Errorf("ipset save:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := filterListing(t, ns), fw.Table("filter").Listing(); !slices.Equal(got, want) {
		t.Errorf("iptables -S:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// What the kernel prints back equals the plan: a full resync and a
	// fresh applier change nothing.
	setRuns, ruleRuns := ap.setRestores.n, ap.rules.Restores()
	ap.apply(t, fw, true)
	fresh := newAppliers(ns)
	fresh.apply(t, fw, true)
	if ap.setRestores.n != setRuns || ap.rules.Restores() != ruleRuns || fresh.setRestores.n != 0 || fresh.rules.Restores() != 0 {
		t.Errorf("a resync with nothing changed ran ipset %d+%d, iptables %d+%d restores; want none",
			ap.setRestores.n-setRuns, fresh.setRestores.n, ap.rules.Restores()-ruleRuns, fresh.rules.Restores())
	}

	// A member joins and one leaves: one ipset restore, no iptables run.
	fw2 := build(t, computeState(a("10.0.0.3"), a("10.0.0.9")))
	ap.apply(t, fw2, false)
	if got, want := kernelSets(t, ns), plannedSets(fw2); !slices.Equal(got, want) {
		t.Errorf("after a membership change, ipset save:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ap.setRestores.n != setRuns+1 || ap.rules.Restores() != ruleRuns {
		t.Errorf("a membership change ran %d ipset and %d iptables restores; want 1 and 0", ap.setRestores.n-setRuns, ap.rules.Restores()-ruleRuns)
	}

	// No rule names the group any more: its set goes, after the rules.
	st := computeState()
	st.SecurityGroups[0].Rules = st.SecurityGroups[0].Rules[:2]
	fw3 := build(t, st)
	ap.apply(t, fw3, false)
	if got := kernelSets(t, ns); len(got) != 0 {
		t.Errorf("sets left after their last rule went: %q", got)
	}
	if !strings.Contains(nettest.Run(t, ns, "ipset", "list", "-n"), "other") {
		t.Errorf("another program's set was removed")
	}
	if got, want := filterListing(t, ns), fw3.Table("filter").Listing(); !slices.Equal(got, want) {
		t.Errorf("iptables -S:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
