package agent

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"novanet/internal/agent/agenttest"
	"novanet/internal/datapath/conntrack"
	"novanet/internal/model"
	"novanet/internal/plan"
)

// stateAPI serves one host state, as the API would after each change,
// and the delta to it from any state it served before (the whole state
// from one it never did).
type stateAPI struct {
	mu      sync.Mutex // protects the following
	state   model.HostState
	served  map[int64]model.HostState // by revision
	applied int64
}

func (s *stateAPI) set(st model.HostState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.served == nil {
		s.served = map[int64]model.HostState{}
	}
	s.state = st
	s.served[st.Revision] = st
}

func (s *stateAPI) HostState(context.Context, string) (model.HostState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, nil
}

func (s *stateAPI) WatchHost(_ context.Context, host string, after int64, _ time.Duration) (model.HostStateDelta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if after == s.state.Revision {
		return model.HostStateDelta{Host: host, From: after, To: after}, nil
	}
	if old, ok := s.served[after]; ok {
		return model.Diff(old, s.state), nil
	}
	st := s.state
	return model.HostStateDelta{Host: host, From: after, To: st.Revision, Full: &st}, nil
}

func (s *stateAPI) ReportApplied(_ context.Context, _ string, r model.AppliedReport) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = r.Revision
	return nil
}

func (s *stateAPI) RecordLease(context.Context, model.LeaseEvent) error { return nil }

func (s *stateAPI) Leases(context.Context, string, string) ([]model.Lease, error) { return nil, nil }

// IP plan: host node-1 (management 192.0.2.11) is the network host of
// the single-host network "private" (10.0.0.0/24 on br100, uplink eth2)
// and a compute host of the multi-host network "shared" (10.1.0.0/24 on
// br101); node-2 is another compute host. Floating addresses come from
// 203.0.113.0/24 on eth0.
const stateHost = "node-1"

var (
	statePrivate = model.Network{ID: 1, Label: "private", Kind: model.KindFlatDHCP, CIDR: netip.MustParsePrefix("10.0.0.0/24"),
		Gateway: netip.MustParseAddr("10.0.0.1"), Broadcast: netip.MustParseAddr("10.0.0.255"), DHCPStart: netip.MustParseAddr("10.0.0.2"),
		Bridge: "br100", BridgeInterface: "eth2", Host: stateHost}
	stateShared = model.Network{ID: 2, Label: "shared", Kind: model.KindFlatDHCP, CIDR: netip.MustParsePrefix("10.1.0.0/24"),
		Gateway: netip.MustParseAddr("10.1.0.1"), Broadcast: netip.MustParseAddr("10.1.0.255"), DHCPStart: netip.MustParseAddr("10.1.0.2"),
		Bridge: "br101", BridgeInterface: "eth3", MultiHost: true, MTU: 1400}
	sharedOwnAddr = netip.MustParseAddr("10.1.0.3")
)

func stateVM(n int, network model.Network, groups ...int64) model.HostInstance {
	base := network.CIDR.Addr().As4()
	base[3] = byte(10 + n)
	return model.HostInstance{
		UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), VIFID: int64(n), Hostname: fmt.Sprintf("vm%d", n),
		ProjectID: "demo", Address: netip.AddrFrom4(base), MAC: fmt.Sprintf("fa:16:3e:00:00:%02x", n),
		Device: fmt.Sprintf("tap%08d-00", n), SecurityGroups: groups,
	}
}

func dhcpHostOf(in model.HostInstance) model.DHCPHost {
	return model.DHCPHost{MAC: in.MAC, Hostname: in.Hostname, Address: in.Address}
}

// private is the single-host network as node-1 serves it: local are the
// instances on node-1, remote those on node-2 (node-1's dnsmasq serves
// them too).
func private(local, remote []model.HostInstance, releases ...model.DHCPRelease) model.HostNetwork {
	hn := model.HostNetwork{Network: statePrivate, BridgeAddress: statePrivate.Gateway, ServesDHCP: true, NAT: true,
		DHCPServer: statePrivate.Gateway, Instances: local, Releases: releases}
	for _, in := range append(append([]model.HostInstance{}, local...), remote...) {
		hn.DHCPHosts = append(hn.DHCPHosts, dhcpHostOf(in))
	}
	return hn
}

func shared(local ...model.HostInstance) model.HostNetwork {
	hn := model.HostNetwork{Network: stateShared, BridgeAddress: sharedOwnAddr, ServesDHCP: true, NAT: true,
		DHCPServer: sharedOwnAddr, Instances: local}
	for _, in := range local {
		hn.DHCPHosts = append(hn.DHCPHosts, dhcpHostOf(in))
	}
	return hn
}

var (
	sshGroup = model.HostSecurityGroup{SecurityGroup: model.SecurityGroup{ID: 7, ProjectID: "demo", Name: "ssh",
		Rules: []model.SecurityGroupRule{{ID: 1, GroupID: 7, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("198.51.100.0/24")}}}}
	webGroup = model.HostSecurityGroup{SecurityGroup: model.SecurityGroup{ID: 8, ProjectID: "demo", Name: "web",
		Rules: []model.SecurityGroupRule{
			{ID: 2, GroupID: 8, Protocol: "tcp", FromPort: 80, ToPort: 80, SourceGroupID: 7},
			{ID: 3, GroupID: 8, Protocol: "icmp", FromPort: -1, ToPort: -1},
		}}}
)

func withMembers(g model.HostSecurityGroup, members ...model.HostInstance) model.HostSecurityGroup {
	for _, m := range members {
		g.Members = append(g.Members, m.Address)
	}
	return g
}

func floating(addr string, in model.HostInstance) model.HostFloatingIP {
	return model.HostFloatingIP{Address: netip.MustParseAddr(addr), FixedAddress: in.Address, Interface: "eth0", InstanceUUID: in.UUID}
}

// hostStates is the table of named desired states for node-1.
func hostStates() []struct {
	name string
	st   model.HostState
} {
	vm1, vm2, vm3 := stateVM(1, statePrivate), stateVM(2, statePrivate), stateVM(3, statePrivate)
	vm4 := stateVM(4, stateShared)
	vm1g, vm2g := stateVM(1, statePrivate, 7), stateVM(2, statePrivate, 7, 8)
	vm4g := stateVM(4, stateShared, 8)
	opts := func(nets ...model.HostNetwork) model.ClusterOptions {
		o := model.ClusterOptions{DHCPDomain: "novalocal", DHCPLeaseTime: 120, ForceDHCPRelease: true, AllowSameNetTraffic: true}
		for _, n := range nets {
			o.FixedRanges = append(o.FixedRanges, n.Network.CIDR)
		}
		return o
	}
	state := func(nets ...model.HostNetwork) model.HostState {
		return model.HostState{Host: stateHost, Options: opts(nets...), Networks: nets}
	}
	withGroups := func(st model.HostState, gs ...model.HostSecurityGroup) model.HostState {
		st.SecurityGroups = gs
		return st
	}
	withFloating := func(st model.HostState, fs ...model.HostFloatingIP) model.HostState {
		st.FloatingIPs = fs
		return st
	}
	release := func(in model.HostInstance) model.DHCPRelease {
		return model.DHCPRelease{MAC: in.MAC, Address: in.Address}
	}
	return []struct {
		name string
		st   model.HostState
	}{
		{"nothing", model.HostState{Host: stateHost, Options: opts()}},
		{"single-host network, no instances", state(private(nil, nil))},
		{"single-host, two local and one remote", state(private([]model.HostInstance{vm1, vm2}, []model.HostInstance{vm3}))},
		{"single-host, vm2 deleted and released", state(private([]model.HostInstance{vm1}, []model.HostInstance{vm3}, release(vm2)))},
		{"single and multi-host", state(private([]model.HostInstance{vm1}, nil), shared(vm4))},
		{"multi-host only", state(shared(vm4))},
		{"groups with a source group", withGroups(state(private([]model.HostInstance{vm1g, vm2g}, nil), shared(vm4g)),
			withMembers(sshGroup, vm1g, vm2g), withMembers(webGroup, vm2g, vm4g))},
		{"groups, ssh member left", withGroups(state(private([]model.HostInstance{vm2g}, nil), shared(vm4g)),
			withMembers(sshGroup, vm2g), withMembers(webGroup, vm2g, vm4g))},
		{"floating ip", withFloating(state(private([]model.HostInstance{vm1, vm2}, nil)), floating("203.0.113.10", vm1))},
		{"floating ip moved, another added", withFloating(state(private([]model.HostInstance{vm1, vm2}, nil), shared(vm4)),
			floating("203.0.113.10", vm2), floating("203.0.113.11", vm4))},
		{"remote instance released", state(private([]model.HostInstance{vm1}, nil, release(vm3)))},
	}
}

// statePlanOptions are node-1's agent options. The fakes write no files,
// so the paths are only names in dnsmasq's argv, the same for every agent.
func statePlanOptions() plan.Options {
	return plan.Options{
		Host: stateHost, FlatInterface: "eth2", PublicInterface: "eth0",
		RoutingSourceIP: netip.MustParseAddr("192.0.2.11"), MetadataHost: netip.MustParseAddr("192.0.2.11"), MetadataPort: 8775,
		NetworksPath: "/var/lib/novanet/networks", DHCPBridge: "/usr/bin/novanet-dhcpbridge", MetadataAPI: true,
	}
}

// newStateAgent is an agent over host's fakes whose conntrack deletions
// are appended to flows (the floating addresses whose flows went).
func newStateAgent(t *testing.T, api API, host *agenttest.Host, dir string, flows *[]netip.Addr) *Agent {
	t.Helper()
	cfg := Config{Host: stateHost, Plan: statePlanOptions(), StateFile: filepath.Join(dir, "state.json"),
		Logger: slog.New(slog.DiscardHandler)}
	a := New(cfg, api, host.Links, host.Firewall, host.DHCP)
	a.SetFloating(host.Floating)
	a.floating.deleteFlows = func(_ context.Context, f conntrack.Filter) (int, error) {
		*flows = append(*flows, f.OrigDst, f.ReplyDst)
		return 0, nil
	}
	return a
}

// converge makes the agent fetch and apply st.
func converge(t *testing.T, api *stateAPI, a *Agent, st model.HostState, full bool) {
	t.Helper()
	api.set(st)
	if err := a.Sync(context.Background(), full); err != nil {
		t.Fatalf("sync: %v", err)
	}
	a.mu.Lock()
	applied := a.applied
	a.mu.Unlock()
	if applied != st.Revision {
		t.Fatalf("applied revision %d, want %d", applied, st.Revision)
	}
}

// TestAgentStates replays the table of host states in order and then in
// random orders, with local repairs and agent restarts in between. After
// each step the fakes must hold exactly what that state's plan asks for,
// and the same as a fresh agent converging that state from nothing:
// level-triggered means the path taken does not matter. It catches what
// one state leaves behind for the next (stale host entries, chains,
// addresses, dnsmasq instances) and releases the agent forgets to send.
func TestAgentStates(t *testing.T) {
	states := hostStates()
	// Each state must look different to the fakes, or the replay could
	// not tell one from another.
	seen := map[string]string{}
	for _, s := range states {
		p, err := plan.Build(s.st, statePlanOptions())
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if other, dup := seen[agenttest.Render(p)]; dup {
			t.Fatalf("states %q and %q render the same", other, s.name)
		}
		seen[agenttest.Render(p)] = s.name
	}
	orders := [][]int{}
	inOrder := make([]int, len(states))
	for i := range inOrder {
		inOrder[i] = i
	}
	orders = append(orders, inOrder)
	for seed := uint64(1); seed <= 5; seed++ {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		order := make([]int, 0, 3*len(states))
		for range 3 {
			order = append(order, r.Perm(len(states))...)
		}
		orders = append(orders, order)
	}
	for n, order := range orders {
		t.Run(fmt.Sprintf("order%d", n), func(t *testing.T) {
			replay(t, states, order, rand.New(rand.NewPCG(uint64(n), 0x5eed)))
		})
	}
}

func replay(t *testing.T, states []struct {
	name string
	st   model.HostState
}, order []int, r *rand.Rand) {
	dir := t.TempDir()
	api := &stateAPI{}
	host := agenttest.NewHost()
	var flows []netip.Addr
	a := newStateAgent(t, api, host, dir, &flows)
	var rev int64
	var path []string
	var before plan.Plan
	for _, i := range order {
		rev++
		st := states[i].st
		st.Revision = rev
		path = append(path, states[i].name)
		switch r.IntN(4) {
		case 0:
			// The agent restarts: it first re-applies its cached state,
			// then fetches the new one.
			a = newStateAgent(t, api, host, dir, &flows)
			a.Repair(PartAll, "agent restarted")
			if err := a.applyPending(context.Background()); err != nil {
				t.Fatalf("after %s: re-applying the cached state: %v", strings.Join(path, " -> "), err)
			}
		case 1:
			// A local event between revisions re-applies one part.
			a.Repair([]Part{PartLinks, PartFirewall, PartDHCP, PartSysctls}[r.IntN(4)], "local event")
			if err := a.applyPending(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		flows = flows[:0]
		converge(t, api, a, st, r.IntN(2) == 0)
		want, err := plan.Build(st, a.cfg.Plan)
		if err != nil {
			t.Fatalf("%s: plan: %v", states[i].name, err)
		}
		if got, exp := host.String(), agenttest.Render(want); got != exp {
			t.Fatalf("after %s: the fakes hold\n%s\nbut the plan of %q asks for\n%s\ndiff:\n%s",
				strings.Join(path, " -> "), got, states[i].name, exp, lineDiff(exp, got))
		}
		fresh := freshConverge(t, st)
		if got := host.String(); got != fresh.String() {
			t.Fatalf("after %s: differs from a fresh agent converging %q:\n%s",
				strings.Join(path, " -> "), states[i].name, lineDiff(fresh.String(), got))
		}
		for k, v := range fresh.Links.Sysctls() {
			if got := host.Links.Sysctls()[k]; got != v {
				t.Fatalf("after %s: sysctl %s = %q, a fresh agent sets %q", strings.Join(path, " -> "), k, got, v)
			}
		}
		sent := host.DHCP.Released()
		for _, rel := range want.Releases {
			if !containsRelease(sent, rel) {
				t.Fatalf("after %s: release %s %s on %s was never sent (sent: %v)",
					strings.Join(path, " -> "), rel.MAC, rel.Address, rel.Bridge, sent)
			}
		}
		for _, old := range changedMappings(before, want) {
			if !slices.Contains(flows, old) {
				t.Fatalf("after %s: the mapping of floating ip %s changed but its flows were not deleted (deleted: %v)",
					strings.Join(path, " -> "), old, flows)
			}
		}
		before = want
	}
}

// changedMappings are the floating addresses of before that are gone or
// NAT to another fixed address in after.
func changedMappings(before, after plan.Plan) []netip.Addr {
	next := map[netip.Addr]netip.Addr{}
	for _, f := range after.FloatingAddrs {
		next[f.Address.Addr()] = f.Fixed
	}
	var out []netip.Addr
	for _, f := range before.FloatingAddrs {
		if next[f.Address.Addr()] != f.Fixed {
			out = append(out, f.Address.Addr())
		}
	}
	return out
}

// freshConverge is a new agent on a new host converging st from nothing.
func freshConverge(t *testing.T, st model.HostState) *agenttest.Host {
	t.Helper()
	api := &stateAPI{}
	host := agenttest.NewHost()
	var flows []netip.Addr
	converge(t, api, newStateAgent(t, api, host, t.TempDir(), &flows), st, false)
	return host
}

func containsRelease(sent []agenttest.Release, rel plan.Release) bool {
	for _, s := range sent {
		if s.Bridge == rel.Bridge && s.Server == rel.Server && s.MAC == rel.MAC && s.Address == rel.Address {
			return true
		}
	}
	return false
}

// lineDiff lists the lines only in want ("-") and only in got ("+").
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if count[l] > 0 {
			b.WriteString("- " + l + "\n")
			count[l]--
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if count[l] < 0 {
			b.WriteString("+ " + l + "\n")
			count[l]++
		}
	}
	return b.String()
}
