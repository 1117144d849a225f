package plan

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"testing"

	"novanet/internal/model"
)

// updateHost is a compute host that serves DHCP on some of its networks
// (multi-host) and protects its instances with groups whose rules name
// each other as sources: every part Update re-plans.
func updateHost(r *rand.Rand) model.HostState {
	st := model.HostState{Host: "compute-1", Revision: 1, Networks: []model.HostNetwork{}, FloatingIPs: []model.HostFloatingIP{}, SecurityGroups: []model.HostSecurityGroup{},
		Options: model.ClusterOptions{DHCPDomain: "novalocal", DHCPLeaseTime: 120, AllowSameNetTraffic: r.IntN(2) == 0}}
	for id := int64(1); id <= 3; id++ {
		cidr := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(id), 0, 0}), 16)
		st.Options.FixedRanges = append(st.Options.FixedRanges, cidr)
		n := model.Network{ID: id, Label: fmt.Sprintf("net%d", id), Kind: model.KindFlatDHCP, CIDR: cidr,
			Gateway: netip.AddrFrom4([4]byte{10, byte(id), 0, 1}), Bridge: fmt.Sprintf("br%d", 100+id%2), MultiHost: true}
		hn := model.HostNetwork{Network: n, Instances: []model.HostInstance{}, DHCPHosts: []model.DHCPHost{}, Releases: []model.DHCPRelease{}}
		if id != 2 {
			hn.BridgeAddress, hn.ServesDHCP, hn.NAT, hn.DHCPServer = n.Gateway, true, true, n.Gateway
		}
		st.Networks = append(st.Networks, hn)
	}
	for g := int64(1); g <= 3; g++ {
		sg := model.HostSecurityGroup{SecurityGroup: model.SecurityGroup{ID: g, Name: fmt.Sprintf("g%d", g), Rules: []model.SecurityGroupRule{
			{ID: g * 10, GroupID: g, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("198.51.100.0/24")},
			{ID: g*10 + 1, GroupID: g, Protocol: "icmp", FromPort: -1, ToPort: -1, SourceGroupID: 1 + g%3},
		}}, Members: []netip.Addr{}}
		for i := range 4 {
			// Members on other hosts.
			if r.IntN(2) == 0 {
				sg.Members = append(sg.Members, netip.AddrFrom4([4]byte{10, 9, 0, byte(i)}))
			}
		}
		st.SecurityGroups = append(st.SecurityGroups, sg)
	}
	for range 3 + r.IntN(30) {
		addInstance(r, &st)
	}
	if r.IntN(5) == 0 {
		// An older server: no interface ids, a warning per instance.
		for i := range st.Networks {
			for j := range st.Networks[i].Instances {
				st.Networks[i].Instances[j].VIFID = 0
			}
		}
	}
	return st
}

var nextVIF int64 = 1

// addInstance adds one instance with its DHCP entry and memberships to a
// random network, keeping the state's orders.
func addInstance(r *rand.Rand, st *model.HostState) {
	hn := &st.Networks[r.IntN(len(st.Networks))]
	var addr netip.Addr
	for {
		addr = netip.AddrFrom4([4]byte{10, byte(hn.Network.ID), byte(r.IntN(3)), byte(2 + r.IntN(250))})
		if !slices.ContainsFunc(hn.Instances, func(in model.HostInstance) bool { return in.Address == addr }) {
			break
		}
	}
	nextVIF++
	groups := []int64{}
	for g := int64(1); g <= 3; g++ {
		if r.IntN(2) == 0 {
			groups = append(groups, g)
		}
	}
	in := model.HostInstance{UUID: fmt.Sprintf("uuid-%d", nextVIF), VIFID: nextVIF, Hostname: fmt.Sprintf("vm-%d", nextVIF), ProjectID: "p",
		Address: addr, MAC: fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", nextVIF>>16&0xff, nextVIF>>8&0xff, nextVIF&0xff),
		Device: fmt.Sprintf("tap%08d", r.IntN(100000000)), SecurityGroups: groups}
	if slices.ContainsFunc(st.Networks, func(n model.HostNetwork) bool {
		return slices.ContainsFunc(n.Instances, func(in model.HostInstance) bool { return in.VIFID == 0 })
	}) {
		in.VIFID = 0
	}
	hn.Instances = sortedInsert(hn.Instances, in, func(a, b model.HostInstance) bool { return a.Address.Less(b.Address) })
	if hn.ServesDHCP {
		hn.DHCPHosts = sortedInsert(hn.DHCPHosts, model.DHCPHost{MAC: in.MAC, Hostname: in.Hostname, Address: addr},
			func(a, b model.DHCPHost) bool { return a.Address.Less(b.Address) })
	}
	for _, g := range groups {
		sg := &st.SecurityGroups[g-1]
		sg.Members = sortedInsert(sg.Members, addr, netip.Addr.Less)
	}
}

func sortedInsert[T any](list []T, v T, less func(a, b T) bool) []T {
	out := slices.Clone(list)
	i := sort.Search(len(out), func(i int) bool { return !less(out[i], v) })
	return slices.Insert(out, i, v)
}

// mutate returns a copy of st changed the way a host's state moves: most
// often one instance more or less, sometimes a renamed one, a membership
// elsewhere in the cluster, a release, and now and then a change Update
// leaves to Build (options, a network header, group rules).
func mutate(r *rand.Rand, st model.HostState) model.HostState {
	var b []byte
	b, _ = json.Marshal(st)
	var out model.HostState
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	out.Revision++
	for range 1 + r.IntN(3) {
		hn := &out.Networks[r.IntN(len(out.Networks))]
		switch k := r.IntN(20); {
		case k < 7:
			addInstance(r, &out)
		case k < 12 && len(hn.Instances) > 1:
			i := r.IntN(len(hn.Instances))
			gone := hn.Instances[i]
			hn.Instances = slices.Delete(hn.Instances, i, i+1)
			hn.DHCPHosts = slices.DeleteFunc(hn.DHCPHosts, func(h model.DHCPHost) bool { return h.MAC == gone.MAC })
			for g := range out.SecurityGroups {
				sg := &out.SecurityGroups[g]
				sg.Members = slices.DeleteFunc(sg.Members, func(a netip.Addr) bool { return a == gone.Address })
			}
			if hn.ServesDHCP && r.IntN(2) == 0 {
				hn.Releases = append(hn.Releases, model.DHCPRelease{MAC: gone.MAC, Address: gone.Address})
			}
		case k < 14 && len(hn.Instances) > 0:
			i := r.IntN(len(hn.Instances))
			hn.Instances[i].Hostname += "x"
			if j := slices.IndexFunc(hn.DHCPHosts, func(h model.DHCPHost) bool { return h.MAC == hn.Instances[i].MAC }); j >= 0 {
				hn.DHCPHosts[j].Hostname += "x"
			}
			if r.IntN(2) == 0 {
				hn.Instances[i].SecurityGroups = []int64{1 + r.Int64N(3)}
			}
		case k < 16:
			// A member on another host joins or leaves.
			sg := &out.SecurityGroups[r.IntN(len(out.SecurityGroups))]
			a := netip.AddrFrom4([4]byte{10, 9, 0, byte(r.IntN(4))})
			if i, ok := slices.BinarySearchFunc(sg.Members, a, netip.Addr.Compare); ok {
				sg.Members = slices.Delete(sg.Members, i, i+1)
			} else {
				sg.Members = slices.Insert(sg.Members, i, a)
			}
		case k == 16:
			out.Options.AllowSameNetTraffic = !out.Options.AllowSameNetTraffic
		case k == 17:
			hn.Network.MTU = 1400 + r.IntN(100)
		case k == 18:
			sg := &out.SecurityGroups[r.IntN(len(out.SecurityGroups))]
			sg.Rules = append(slices.Clone(sg.Rules), model.SecurityGroupRule{ID: 99, GroupID: sg.ID, Protocol: "udp", FromPort: 53, ToPort: 53})
		default:
			if len(hn.Releases) > 0 {
				hn.Releases = hn.Releases[1:]
			}
		}
	}
	return out
}

func planJSON(t *testing.T, p Plan) string {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUpdateMatchesBuild(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	o := computeOptions("compute-1", "192.0.2.11")
	incremental := 0
	const draws = 1500
	for i := range draws {
		old := updateHost(r)
		for range 1 + r.IntN(4) {
			next := mutate(r, old)
			d := model.Diff(old, next)
			new, err := old.Apply(d)
			if err != nil {
				t.Fatal(err)
			}
			prev, err := Build(old, o)
			if err != nil {
				t.Fatal(err)
			}
			prevJSON := planJSON(t, prev)
			want, err := Build(new, o)
			if err != nil {
				t.Fatal(err)
			}
			got, ch, err := Update(prev, old, new, d, o)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := planJSON(t, got), planJSON(t, want); g != w {
				t.Fatalf("draw %d: Update differs from Build (change %+v)\n got %s\nwant %s", i, ch, g, w)
			}
			if planJSON(t, prev) != prevJSON {
				t.Fatalf("draw %d: Update modified the previous plan", i)
			}
			if !ch.Full {
				incremental++
				checkChange(t, prev, want, ch)
				if g, w := ChangeRevocations(got.Firewall, ch), Revocations(prev.Firewall, want.Firewall); !slices.Equal(g, w) {
					t.Fatalf("draw %d: revocations of the change %v, want %v", i, g, w)
				}
			}
			old = new
		}
	}
	t.Logf("%d incremental updates", incremental)
	if incremental < draws {
		t.Errorf("only %d updates of about %d were incremental: the test does not exercise Update", incremental, 2*draws)
	}
}

// checkChange checks that ch names exactly what differs between prev
// and next in the parts appliers take from it.
func checkChange(t *testing.T, prev, next Plan, ch Change) {
	t.Helper()
	ports := func(p Plan) map[string]Port {
		m := map[string]Port{}
		for _, b := range p.Bridges {
			for _, pt := range b.Ports {
				m[b.Name+"/"+pt.Device] = pt
			}
		}
		return m
	}
	got := ports(prev)
	for _, pc := range ch.Ports {
		for _, pt := range pc.Removed {
			if got[pc.Bridge+"/"+pt.Device] != pt {
				t.Fatalf("change removes port %+v, which the previous plan lacks", pt)
			}
			delete(got, pc.Bridge+"/"+pt.Device)
		}
		for _, pt := range pc.Added {
			got[pc.Bridge+"/"+pt.Device] = pt
		}
	}
	if want := ports(next); !mapsEqual(got, want) {
		t.Fatalf("ports after the change %v, want %v", got, want)
	}
	hosts := func(p Plan) map[string]string {
		m := map[string]string{}
		for _, d := range p.Dnsmasq {
			for _, h := range d.Hosts {
				m[d.Name+"/"+h.FileName] = h.Line
			}
		}
		return m
	}
	gotHosts := hosts(prev)
	for _, hc := range ch.Hosts {
		for _, f := range hc.Removed {
			delete(gotHosts, hc.Dnsmasq+"/"+f)
		}
		for _, h := range hc.Written {
			gotHosts[hc.Dnsmasq+"/"+h.FileName] = h.Line
		}
	}
	if want := hosts(next); !mapsEqual(gotHosts, want) {
		t.Fatalf("host entries after the change %v, want %v", gotHosts, want)
	}
	chains := func(p Plan) map[string]string {
		m := map[string]string{}
		if f := p.Firewall.Table("filter"); f != nil {
			for _, c := range f.Chains {
				b, _ := json.Marshal(c.Rules)
				m[c.Name] = string(b)
			}
		}
		return m
	}
	gotChains := chains(prev)
	for _, c := range ch.Chains.Removed {
		delete(gotChains, c.Name)
	}
	for _, c := range ch.Chains.Added {
		b, _ := json.Marshal(c.Rules)
		gotChains[c.Name] = string(b)
	}
	for _, c := range ch.Chains.Added {
		if l := next.Firewall.Table("filter").Chain(roleCompute + "-local"); l.Rules[c.Position].Target.Chain != c.Name {
			t.Fatalf("added chain %s is not at position %d", c.Name, c.Position)
		}
	}
	wantChains := chains(next)
	delete(gotChains, roleCompute+"-local")
	delete(wantChains, roleCompute+"-local")
	if !mapsEqual(gotChains, wantChains) {
		t.Fatalf("chains after the change differ")
	}
	members := func(p Plan) map[string]bool {
		m := map[string]bool{}
		for _, s := range p.Firewall.Sets {
			for _, a := range s.Members {
				m[s.Name+"/"+a.String()] = true
			}
		}
		return m
	}
	gotMembers := members(prev)
	for _, sc := range ch.Sets {
		for _, a := range sc.Removed {
			delete(gotMembers, sc.Name+"/"+a.String())
		}
		for _, a := range sc.Added {
			gotMembers[sc.Name+"/"+a.String()] = true
		}
	}
	if want := members(next); !mapsEqual(gotMembers, want) {
		t.Fatalf("set members after the change %v, want %v", gotMembers, want)
	}
	guard := map[string]GuardPort{}
	for _, g := range prev.Firewall.Guard.Ports {
		guard[g.Device] = g
	}
	for _, g := range ch.Guard.Removed {
		delete(guard, g.Device)
	}
	for _, g := range ch.Guard.Added {
		guard[g.Device] = g
	}
	wantGuard := map[string]GuardPort{}
	for _, g := range next.Firewall.Guard.Ports {
		wantGuard[g.Device] = g
	}
	if !mapsEqual(guard, wantGuard) {
		t.Fatalf("guard after the change %v, want %v", guard, wantGuard)
	}
}

func mapsEqual[K, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
