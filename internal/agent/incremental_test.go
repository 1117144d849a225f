package agent

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netns"

	"novanet/internal/datapath/conntrack"
	"novanet/internal/datapath/ipset"
	"novanet/internal/datapath/iptables"
	"novanet/internal/datapath/l2guard"
	"novanet/internal/datapath/nftables"
	"novanet/internal/datapath/runner"
	"novanet/internal/model"
	"novanet/internal/nettest"
	"novanet/internal/plan"
)

// removeProtected returns st without its i-th instance (and its DHCP
// entry and membership).
func removeProtected(st model.HostState, i int) model.HostState {
	hn := st.Networks[0]
	gone := hn.Instances[i]
	hn.Instances = slices.Delete(slices.Clone(hn.Instances), i, i+1)
	hn.DHCPHosts = slices.DeleteFunc(slices.Clone(hn.DHCPHosts), func(h model.DHCPHost) bool { return h.MAC == gone.MAC })
	st.Networks = []model.HostNetwork{hn}
	g := st.SecurityGroups[0]
	g.Members = slices.DeleteFunc(slices.Clone(g.Members), func(a netip.Addr) bool { return a == gone.Address })
	st.SecurityGroups = []model.HostSecurityGroup{g}
	st.Revision++
	return st
}

// toggleMember adds a member on another host to the group, or removes it.
func toggleMember(st model.HostState, a netip.Addr) model.HostState {
	g := st.SecurityGroups[0]
	if i, ok := slices.BinarySearchFunc(g.Members, a, netip.Addr.Compare); ok {
		g.Members = slices.Delete(slices.Clone(g.Members), i, i+1)
	} else {
		g.Members = slices.Insert(slices.Clone(g.Members), i, a)
	}
	st.SecurityGroups = []model.HostSecurityGroup{g}
	st.Revision++
	return st
}

// ipsetRestores runs ipset in a namespace and counts its restores.
type ipsetRestores struct {
	runner.Exec
	n int
}

func (c *ipsetRestores) Run(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	if len(args) > 0 && args[0] == "restore" {
		c.n++
	}
	return c.Exec.Run(ctx, stdin, name, args...)
}

// TestIncrementalFirewallMatchesWholeApply: on both drivers, a series of
// incremental changes (instances added and removed, members joining and
// leaving) leaves the kernel exactly as a whole apply of the same plan
// would: fresh appliers that read the kernel and compare it with the
// whole plan find nothing to do. The revocations are those of the two
// whole plans.
func TestIncrementalFirewallMatchesWholeApply(t *testing.T) {
	nettest.RequireRoot(t, "iptables-restore", "iptables-save", "ipset", "nft")
	for _, driver := range []string{"iptables", "nftables"} {
		t.Run(driver, func(t *testing.T) {
			ns := nettest.Netns(t, "nniinc")
			h, err := netns.GetFromName(ns)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			var firstSetRestores *ipsetRestores
			appliers := func() (*InstanceFirewall, func() int64) {
				guard := l2guard.New()
				guard.NetNS = int(h)
				var f *InstanceFirewall
				var count func() int64
				if driver == "iptables" {
					rules, sets := iptables.New(), ipset.New()
					rules.Netns, sets.Netns = ns, ns
					setRestores := &ipsetRestores{Exec: runner.Exec{Netns: ns}}
					sets.Runner = setRestores
					if firstSetRestores == nil {
						firstSetRestores = setRestores
					}
					f = NewInstanceFirewall(rules, sets, guard, nil)
					count = func() int64 { return rules.Restores() + int64(setRestores.n) + guard.Transactions() }
				} else {
					rules := nftables.New()
					rules.NetNS = int(h)
					f = NewInstanceFirewall(rules, nil, guard, nil)
					count = func() int64 { return rules.Transactions() + guard.Transactions() }
				}
				return f, count
			}
			f, _ := appliers()
			sets := firstSetRestores
			var revoked []conntrack.Filter
			f.revoke = func(_ context.Context, fs []conntrack.Filter) (int, error) {
				revoked = append(revoked, fs...)
				return len(fs), nil
			}
			opts := plan.Options{Host: "compute-1", FlatInterface: "eth2", PublicInterface: "eth0", RoutingSourceIP: netip.MustParseAddr("192.0.2.10")}
			ctx := context.Background()
			st := protectedState(20)
			p, err := plan.Build(st, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Apply(ctx, p.Firewall, true); err != nil {
				t.Fatal(err)
			}
			other := netip.MustParseAddr("10.0.200.9")
			steps := []func(model.HostState) model.HostState{
				func(s model.HostState) model.HostState { return addProtected(s, 100) },
				func(s model.HostState) model.HostState { return removeProtected(s, 7) },
				func(s model.HostState) model.HostState { return toggleMember(s, other) },
				func(s model.HostState) model.HostState { return addProtected(removeProtected(s, 3), 101) },
				func(s model.HostState) model.HostState { return toggleMember(s, other) },
				func(s model.HostState) model.HostState { return removeProtected(s, 0) },
			}
			for i, step := range steps {
				next := step(st)
				d := model.Diff(st, next)
				nst, err := st.Apply(d)
				if err != nil {
					t.Fatal(err)
				}
				np, ch, err := plan.Update(p, st, nst, d, opts)
				if err != nil {
					t.Fatal(err)
				}
				if ch.Full {
					t.Fatalf("step %d: the change was not incremental", i)
				}
				revoked = nil
				// Without its nat table: a fall back to the whole apply would
				// remove the nat chains, which the fresh appliers would see.
				partial := np.Firewall
				partial.Tables = []plan.Table{*np.Firewall.Table("filter")}
				setRestores := 0
				if sets != nil {
					setRestores = sets.n
				}
				if err := f.ApplyChange(ctx, partial, ch); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if sets != nil && sets.n != setRestores {
					t.Errorf("step %d: members were changed by ipset restore, not netlink", i)
				}
				var want []conntrack.Filter
				for _, r := range plan.Revocations(p.Firewall, np.Firewall) {
					want = append(want, conntrack.Filter{Proto: r.Proto, OrigSrc: r.Src, OrigDst: r.Dst, DstPort: r.DstPort})
				}
				if fmt.Sprint(revoked) != fmt.Sprint(want) {
					t.Errorf("step %d: revoked %v, want %v", i, revoked, want)
				}
				fresh, count := appliers()
				fresh.revoke = func(context.Context, []conntrack.Filter) (int, error) { return 0, nil }
				if err := fresh.Apply(ctx, np.Firewall, true); err != nil {
					t.Fatal(err)
				}
				if n := count(); n != 0 {
					t.Fatalf("step %d: a whole apply after the incremental one still changed the kernel (%d restores or transactions)", i, n)
				}
				st, p = nst, np
			}
		})
	}
}
