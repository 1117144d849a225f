package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/vishvananda/netns"

	"novanet/internal/datapath/conntrack"
	"novanet/internal/datapath/ipset"
	"novanet/internal/datapath/iptables"
	"novanet/internal/datapath/l2guard"
	"novanet/internal/datapath/nftables"
	"novanet/internal/model"
	"novanet/internal/nettest"
	"novanet/internal/plan"
)

// protectedState is a compute host with n instances, all in group web
// with three rules (tcp 22 from a CIDR, tcp 80 and icmp from web itself:
// one source group of n members).
func protectedState(n int) model.HostState {
	st := hostState(n)
	web := model.SecurityGroup{ID: 7, ProjectID: "demo", Name: "web", Rules: []model.SecurityGroupRule{
		{ID: 1, GroupID: 7, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("203.0.113.0/24")},
		{ID: 2, GroupID: 7, Protocol: "tcp", FromPort: 80, ToPort: 80, SourceGroupID: 7},
		{ID: 3, GroupID: 7, Protocol: "icmp", FromPort: -1, ToPort: -1, SourceGroupID: 7},
	}}
	hg := model.HostSecurityGroup{SecurityGroup: web}
	for i := range st.Networks[0].Instances {
		in := &st.Networks[0].Instances[i]
		in.VIFID, in.SecurityGroups = int64(i+1), []int64{7}
		hg.Members = append(hg.Members, in.Address)
	}
	st.SecurityGroups = []model.HostSecurityGroup{hg}
	return st
}

func addProtected(st model.HostState, i int) model.HostState {
	st = addInstance(st, i)
	in := &st.Networks[0].Instances[len(st.Networks[0].Instances)-1]
	in.VIFID, in.SecurityGroups = int64(i+1), []int64{7}
	g := st.SecurityGroups[0]
	g.Members = append(g.Members[:len(g.Members):len(g.Members)], in.Address)
	st.SecurityGroups = []model.HostSecurityGroup{g}
	return st
}

// oneMoreProtected plans base (n protected instances) and base with one
// more, and the incremental changes between them both ways: the delta
// the server sends, through plan.Update.
func oneMoreProtected(b *testing.B, n int) (prev, next plan.Plan, add, remove plan.Change) {
	opts := plan.Options{Host: "compute-1", FlatInterface: "eth2", PublicInterface: "eth0", RoutingSourceIP: netip.MustParseAddr("192.0.2.10")}
	base := protectedState(n)
	more := addProtected(base, n)
	more.Revision = base.Revision + 1
	var err error
	if prev, err = plan.Build(base, opts); err != nil {
		b.Fatal(err)
	}
	d := model.Diff(base, more)
	nst, err := base.Apply(d)
	if err != nil {
		b.Fatal(err)
	}
	if next, add, err = plan.Update(prev, base, nst, d, opts); err != nil || add.Full {
		b.Fatal("adding is not incremental: ", err)
	}
	again := base
	again.Revision = nst.Revision + 1
	back := model.Diff(nst, again)
	bst, err := nst.Apply(back)
	if err != nil {
		b.Fatal(err)
	}
	if _, remove, err = plan.Update(next, nst, bst, back, opts); err != nil || remove.Full {
		b.Fatal("removing is not incremental: ", err)
	}
	return prev, next, add, remove
}

// paths are the two ways a light sync applies one more instance: the
// appliers given the change (incremental), or the whole plan to compare.
var paths = []string{"incremental", "whole"}

// applyOne applies next after prev (from the change when incremental).
func applyOne(ctx context.Context, f *InstanceFirewall, fw plan.Firewall, ch plan.Change, incremental bool) error {
	if incremental {
		return f.ApplyChange(ctx, fw, ch)
	}
	return f.Apply(ctx, fw, false)
}

func firewallOf(b *testing.B, st model.HostState) plan.Firewall {
	p, err := plan.Build(st, plan.Options{Host: st.Host, FlatInterface: "eth2", PublicInterface: "eth0", RoutingSourceIP: netip.MustParseAddr("192.0.2.10")})
	if err != nil {
		b.Fatal(err)
	}
	return p.Firewall
}

// BenchmarkFirewallAddProtectedInstance: the iptables driver's cost of
// one more protected instance (its chain, its jump, a set element, its
// guard chain and map element) on a host that protects n: InstanceFirewall.Apply
// with the real appliers in a namespace. The instance is removed again
// outside the timer, so every iteration is the same change.
func BenchmarkFirewallAddProtectedInstance(b *testing.B) {
	nettest.RequireRoot(b, "iptables-restore", "ipset")
	for _, path := range paths {
		for _, n := range []int{100, 1000, 5000} {
			b.Run(fmt.Sprintf("path=%s/instances=%d", path, n), func(b *testing.B) {
				ns := nettest.Netns(b, "nnfw")
				h, err := netns.GetFromName(ns)
				if err != nil {
					b.Fatal(err)
				}
				defer h.Close()
				rules, sets, guard := iptables.New(), ipset.New(), l2guard.New()
				rules.Netns, sets.Netns, guard.NetNS = ns, ns, int(h)
				f := NewInstanceFirewall(rules, sets, guard, quietLog)
				// Revocations on removal would run conntrack here, outside
				// the namespace: count them instead.
				f.revoke = func(_ context.Context, fs []conntrack.Filter) (int, error) { return len(fs), nil }
				ctx := context.Background()
				prevPlan, nextPlan, add, remove := oneMoreProtected(b, n)
				prev, next := prevPlan.Firewall, nextPlan.Firewall
				inc := path == "incremental"
				if err := f.Apply(ctx, prev, true); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					if err := applyOne(ctx, f, next, add, inc); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if err := applyOne(ctx, f, prev, remove, inc); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
		}
	}
}

// BenchmarkGuardAddPort: the L2 guard's part alone (one netlink
// transaction: a chain of 15 rules and a verdict-map element).
func BenchmarkGuardAddPort(b *testing.B) {
	nettest.RequireRoot(b, "nft")
	for _, path := range paths {
		for _, n := range []int{100, 1000, 5000} {
			b.Run(fmt.Sprintf("path=%s/ports=%d", path, n), func(b *testing.B) {
				ns := nettest.Netns(b, "nnl2")
				h, err := netns.GetFromName(ns)
				if err != nil {
					b.Fatal(err)
				}
				defer h.Close()
				g := l2guard.New()
				g.NetNS = int(h)
				prevPlan, nextPlan, add, remove := oneMoreProtected(b, n)
				prev, next := prevPlan.Firewall.Guard, nextPlan.Firewall.Guard
				apply := func(want plan.L2Guard, ch plan.Change) error {
					if path == "incremental" {
						return g.ApplyChange(want, ch.Guard)
					}
					return g.Apply(want, false)
				}
				if err := g.Apply(prev, true); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					if err := apply(next, add); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if err := apply(prev, remove); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
		}
	}
}

// BenchmarkBaselineBareRestore: one iptables-restore --noflush exec that
// changes nothing, the floor any iptables driver pays per change.
func BenchmarkBaselineBareRestore(b *testing.B) {
	nettest.RequireRoot(b, "iptables-restore")
	for _, n := range []int{100, 5000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			ns := nettest.Netns(b, "nnbare")
			restore(b, ns, novaTable(n))
			for b.Loop() {
				restore(b, ns, "*filter\nCOMMIT\n", "-w", "--noflush")
			}
		})
	}
}

// BenchmarkBaselineMinimalRestore: the least an iptables-restore driver
// can send for one new instance on a host holding nova's table for n:
// one --noflush restore declaring a chain with one rule and appending its
// jump (removed again outside the timer).
func BenchmarkBaselineMinimalRestore(b *testing.B) {
	nettest.RequireRoot(b, "iptables-restore")
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			ns := nettest.Netns(b, "nnmin")
			restore(b, ns, novaTable(n))
			add := "*filter\n:nova-compute-inst-x - [0:0]\n-A nova-compute-inst-x -j ACCEPT\n-A nova-compute-local -d 10.255.0.1/32 -j nova-compute-inst-x\nCOMMIT\n"
			del := "*filter\n-D nova-compute-local -d 10.255.0.1/32 -j nova-compute-inst-x\n-F nova-compute-inst-x\n-X nova-compute-inst-x\nCOMMIT\n"
			b.ResetTimer()
			for range b.N {
				restore(b, ns, add, "-w", "--noflush")
				b.StopTimer()
				restore(b, ns, del, "-w", "--noflush")
				b.StartTimer()
			}
		})
	}
}

// BenchmarkFirewallAddProtectedInstanceNFTables: the same change on the
// nftables driver (its address in the shared chain's set and in the
// group's set, one transaction; the guard's elements in another).
func BenchmarkFirewallAddProtectedInstanceNFTables(b *testing.B) {
	nettest.RequireRoot(b, "nft")
	for _, path := range paths {
		for _, n := range []int{100, 1000, 5000} {
			b.Run(fmt.Sprintf("path=%s/instances=%d", path, n), func(b *testing.B) {
				ns := nettest.Netns(b, "nnnft")
				h, err := netns.GetFromName(ns)
				if err != nil {
					b.Fatal(err)
				}
				defer h.Close()
				rules, guard := nftables.New(), l2guard.New()
				rules.NetNS, guard.NetNS = int(h), int(h)
				f := NewInstanceFirewall(rules, nil, guard, quietLog)
				f.revoke = func(_ context.Context, fs []conntrack.Filter) (int, error) { return len(fs), nil }
				ctx := context.Background()
				prevPlan, nextPlan, add, remove := oneMoreProtected(b, n)
				prev, next := prevPlan.Firewall, nextPlan.Firewall
				inc := path == "incremental"
				if err := f.Apply(ctx, prev, true); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					if err := applyOne(ctx, f, next, add, inc); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if err := applyOne(ctx, f, prev, remove, inc); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
		}
	}
}

// BenchmarkRulesAddProtectedInstance: the rule driver's part alone of
// one more protected instance (no guard, no revocation): iptables with
// its ipset, or nftables, from the plan to the kernel.
func BenchmarkRulesAddProtectedInstance(b *testing.B) {
	nettest.RequireRoot(b, "iptables-restore", "ipset", "nft")
	for _, path := range paths {
		for _, driver := range []string{"iptables", "nftables"} {
			for _, n := range []int{100, 1000, 5000} {
				b.Run(fmt.Sprintf("path=%s/driver=%s/instances=%d", path, driver, n), func(b *testing.B) {
					ns := nettest.Netns(b, "nnrules")
					h, err := netns.GetFromName(ns)
					if err != nil {
						b.Fatal(err)
					}
					defer h.Close()
					var f *InstanceFirewall
					if driver == "iptables" {
						rules, sets := iptables.New(), ipset.New()
						rules.Netns, sets.Netns = ns, ns
						f = NewInstanceFirewall(rules, sets, noGuard{}, quietLog)
					} else {
						rules := nftables.New()
						rules.NetNS = int(h)
						f = NewInstanceFirewall(rules, nil, noGuard{}, quietLog)
					}
					f.revoke = func(_ context.Context, fs []conntrack.Filter) (int, error) { return len(fs), nil }
					ctx := context.Background()
					prevPlan, nextPlan, add, remove := oneMoreProtected(b, n)
					prev, next := prevPlan.Firewall, nextPlan.Firewall
					if err := f.Apply(ctx, prev, true); err != nil {
						b.Fatal(err)
					}
					// The rule applier (with ipset) alone: no guard, no
					// revocation diff.
					apply := func(fw plan.Firewall, ch plan.Change) error {
						if path == "incremental" {
							if f.sets != nil {
								if err := f.sets.(changeSetApplier).ApplyChange(ctx, fw.Sets, ch.Sets); err != nil {
									return err
								}
							}
							return f.rules.(changeRuleApplier).ApplyChange(ctx, fw, ch)
						}
						f.last = nil // the revocations are measured with the whole firewall
						return f.Apply(ctx, fw, false)
					}
					b.ResetTimer()
					for range b.N {
						if err := apply(next, add); err != nil {
							b.Fatal(err)
						}
						b.StopTimer()
						if err := apply(prev, remove); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
				})
			}
		}
	}
}

// noGuard leaves the L2 guard out of a rules-only measurement.
type noGuard struct{}

func (noGuard) Apply(plan.L2Guard, bool) error { return nil }

// quietLog keeps the firewall's revocation lines out of benchmark output.
var quietLog = slog.New(slog.DiscardHandler)
