package model

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
)

// Apply returns the state d describes when applied to s: s at d.From
// becomes the state at d.To. A full delta replaces s whatever its
// revision. The result keeps the state's sort orders (networks by ID,
// instances, DHCP hosts, floating IPs and metadata by address, releases by
// address then MAC, groups by ID, members sorted) so that it is
// JSON-equal to what the server would have sent whole.
//
// Neither s nor d is modified: the agent keeps s until the result is
// applied. The result shares every list that did not change with s and
// the entries of d's lists, so all three must be treated as read-only.
// s must be in the state's sort orders (as the server sends it): the
// changed entries are merged into the unchanged ones in one pass.
func (s HostState) Apply(d HostStateDelta) (HostState, error) {
	if d.Full != nil {
		return *d.Full, nil
	}
	if d.Host != s.Host {
		return HostState{}, fmt.Errorf("host state delta is for host %q, the state is %q's: fetch this host's whole state", d.Host, s.Host)
	}
	if d.From != s.Revision {
		return HostState{}, fmt.Errorf("host state delta starts at revision %d, the state is at %d: fetch the whole state", d.From, s.Revision)
	}
	if d.To < d.From {
		return HostState{}, fmt.Errorf("host state delta goes back from revision %d to %d: fetch the whole state", d.From, d.To)
	}
	out := s
	out.Revision = d.To
	if d.Options != nil {
		out.Options = *d.Options
	}
	out.Networks = applyNetworks(s.Networks, d.Networks, d.RemovedNetworks)
	out.FloatingIPs = applyList(s.FloatingIPs, d.RemovedFloatingIPs, d.FloatingIPs,
		func(f *HostFloatingIP) netip.Addr { return f.Address },
		func(a, b *HostFloatingIP) bool { return a.Address.Less(b.Address) })
	out.SecurityGroups = applyGroups(s.SecurityGroups, d.SecurityGroups, d.RemovedSecurityGroups)
	out.Metadata = applyList(s.Metadata, d.RemovedMetadata, d.Metadata,
		func(m *InstanceMetadata) string { return m.MAC },
		func(a, b *InstanceMetadata) bool { return lessAddrMAC(a.Address, a.MAC, b.Address, b.MAC) })
	if len(out.Metadata) == 0 {
		out.Metadata = nil // omitted on the wire either way
	}
	return out, nil
}

func lessAddrMAC(a netip.Addr, amac string, b netip.Addr, bmac string) bool {
	if c := a.Compare(b); c != 0 {
		return c < 0
	}
	return amac < bmac
}

// applyList drops the entries of old whose key is removed or upserted and
// merges the upserts in, keeping old's order (less). It returns old
// itself when nothing changes, and never writes to old or upserts.
func applyList[T any, K comparable](old []T, removed []K, upserts []T, key func(*T) K, less func(a, b *T) bool) []T {
	if len(removed) == 0 && len(upserts) == 0 {
		return old
	}
	drop := make(map[K]bool, len(removed)+len(upserts))
	for _, k := range removed {
		drop[k] = true
	}
	add := make([]T, 0, len(upserts))
	for i := range upserts {
		k := key(&upserts[i])
		if drop[k] {
			// A key upserted twice: the last one wins, as it would
			// replacing entries one by one.
			add = slices.DeleteFunc(add, func(t T) bool { return key(&t) == k })
		}
		drop[k] = true
		add = append(add, upserts[i])
	}
	slices.SortStableFunc(add, func(a, b T) int {
		switch {
		case less(&a, &b):
			return -1
		case less(&b, &a):
			return 1
		}
		return 0
	})
	out := make([]T, 0, len(old)+len(add))
	j := 0
	for i := range old {
		if drop[key(&old[i])] {
			continue
		}
		for j < len(add) && less(&add[j], &old[i]) {
			out = append(out, add[j])
			j++
		}
		out = append(out, old[i])
	}
	return append(out, add[j:]...)
}

func applyNetworks(old []HostNetwork, changed []HostNetworkDelta, removed []int64) []HostNetwork {
	if len(changed) == 0 && len(removed) == 0 {
		return old
	}
	byID := make(map[int64]int, len(old))
	for i := range old {
		byID[old[i].Network.ID] = i
	}
	upserts := make([]HostNetwork, 0, len(changed))
	for i := range changed {
		nd := &changed[i]
		prev := HostNetwork{Instances: []HostInstance{}, DHCPHosts: []DHCPHost{}, Releases: []DHCPRelease{}}
		if at, ok := byID[nd.Network.ID]; ok {
			prev = old[at]
		}
		upserts = append(upserts, nd.applyTo(prev))
	}
	out := applyList(old, removed, upserts,
		func(n *HostNetwork) int64 { return n.Network.ID },
		func(a, b *HostNetwork) bool { return a.Network.ID < b.Network.ID })
	if out == nil {
		out = []HostNetwork{}
	}
	return out
}

// applyTo returns prev changed by nd: the header replaced, the lists
// merged.
func (nd *HostNetworkDelta) applyTo(prev HostNetwork) HostNetwork {
	n := prev
	n.Network, n.BridgeAddress, n.ServesDHCP, n.NAT, n.DHCPServer = nd.Network, nd.BridgeAddress, nd.ServesDHCP, nd.NAT, nd.DHCPServer
	n.Instances = nonNil(applyList(prev.Instances, nd.RemovedInstances, nd.Instances,
		func(i *HostInstance) string { return i.MAC },
		func(a, b *HostInstance) bool { return lessAddrMAC(a.Address, a.MAC, b.Address, b.MAC) }))
	n.DHCPHosts = nonNil(applyList(prev.DHCPHosts, nd.RemovedDHCPHosts, nd.DHCPHosts,
		func(h *DHCPHost) string { return h.MAC },
		func(a, b *DHCPHost) bool { return lessAddrMAC(a.Address, a.MAC, b.Address, b.MAC) }))
	if nd.ReleasesChanged {
		n.Releases = slices.Clone(nd.Releases)
		slices.SortStableFunc(n.Releases, func(a, b DHCPRelease) int {
			if lessAddrMAC(a.Address, a.MAC, b.Address, b.MAC) {
				return -1
			}
			if lessAddrMAC(b.Address, b.MAC, a.Address, a.MAC) {
				return 1
			}
			return 0
		})
	}
	n.Releases = nonNil(n.Releases)
	return n
}

func applyGroups(old []HostSecurityGroup, changed []HostSecurityGroupDelta, removed []int64) []HostSecurityGroup {
	if len(changed) == 0 && len(removed) == 0 {
		return old
	}
	byID := make(map[int64]int, len(old))
	for i := range old {
		byID[old[i].ID] = i
	}
	upserts := make([]HostSecurityGroup, 0, len(changed))
	for i := range changed {
		gd := &changed[i]
		var members []netip.Addr
		if at, ok := byID[gd.ID]; ok && !gd.MembersReplaced {
			members = old[at].Members
		}
		upserts = append(upserts, HostSecurityGroup{SecurityGroup: gd.SecurityGroup,
			Members: nonNil(applyList(members, gd.RemovedMembers, gd.AddedMembers,
				func(a *netip.Addr) netip.Addr { return *a },
				func(a, b *netip.Addr) bool { return a.Less(*b) }))})
	}
	out := applyList(old, removed, upserts,
		func(g *HostSecurityGroup) int64 { return g.ID },
		func(a, b *HostSecurityGroup) bool { return a.ID < b.ID })
	if out == nil {
		out = []HostSecurityGroup{}
	}
	return out
}

// nonNil keeps an empty list `[]` on the wire, as the server sends it.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Diff returns the delta that takes old to new (old.Apply(Diff(old, new))
// is new): only the entries whose key is new, gone or different travel.
// The inputs are not modified; the delta shares entries with new.
func Diff(old, new HostState) HostStateDelta {
	d := HostStateDelta{Host: new.Host, From: old.Revision, To: new.Revision}
	if !reflect.DeepEqual(old.Options, new.Options) {
		o := new.Options
		d.Options = &o
	}
	d.Networks, d.RemovedNetworks = diffNetworks(old.Networks, new.Networks)
	d.FloatingIPs, d.RemovedFloatingIPs = diffList(old.FloatingIPs, new.FloatingIPs,
		func(f *HostFloatingIP) netip.Addr { return f.Address },
		func(a, b *HostFloatingIP) bool { return *a == *b })
	d.SecurityGroups, d.RemovedSecurityGroups = diffGroups(old.SecurityGroups, new.SecurityGroups)
	d.Metadata, d.RemovedMetadata = diffList(old.Metadata, new.Metadata,
		func(m *InstanceMetadata) string { return m.MAC },
		func(a, b *InstanceMetadata) bool { return reflect.DeepEqual(*a, *b) })
	return d
}

// diffList returns the entries of new that old lacks or holds otherwise,
// and the keys of old that new lacks.
func diffList[T any, K comparable](old, new []T, key func(*T) K, equal func(a, b *T) bool) (upserts []T, removed []K) {
	prev := make(map[K]*T, len(old))
	for i := range old {
		prev[key(&old[i])] = &old[i]
	}
	seen := make(map[K]bool, len(new))
	for i := range new {
		k := key(&new[i])
		seen[k] = true
		if p, ok := prev[k]; !ok || !equal(p, &new[i]) {
			upserts = append(upserts, new[i])
		}
	}
	for i := range old {
		if k := key(&old[i]); !seen[k] {
			removed = append(removed, k)
		}
	}
	return upserts, removed
}

func instanceEqual(a, b *HostInstance) bool {
	return a.UUID == b.UUID && a.VIFID == b.VIFID && a.Hostname == b.Hostname && a.ProjectID == b.ProjectID &&
		a.Address == b.Address && a.MAC == b.MAC && a.Device == b.Device &&
		slices.Equal(a.SecurityGroups, b.SecurityGroups) && (a.SecurityGroups == nil) == (b.SecurityGroups == nil)
}

func diffNetworks(old, new []HostNetwork) ([]HostNetworkDelta, []int64) {
	prev := make(map[int64]*HostNetwork, len(old))
	for i := range old {
		prev[old[i].Network.ID] = &old[i]
	}
	var changed []HostNetworkDelta
	seen := make(map[int64]bool, len(new))
	for i := range new {
		n := &new[i]
		seen[n.Network.ID] = true
		p, ok := prev[n.Network.ID]
		if !ok {
			p = &HostNetwork{}
		}
		nd := HostNetworkDelta{Network: n.Network, BridgeAddress: n.BridgeAddress, ServesDHCP: n.ServesDHCP, NAT: n.NAT, DHCPServer: n.DHCPServer}
		nd.Instances, nd.RemovedInstances = diffList(p.Instances, n.Instances,
			func(i *HostInstance) string { return i.MAC }, instanceEqual)
		nd.DHCPHosts, nd.RemovedDHCPHosts = diffList(p.DHCPHosts, n.DHCPHosts,
			func(h *DHCPHost) string { return h.MAC },
			func(a, b *DHCPHost) bool { return *a == *b })
		if !slices.Equal(p.Releases, n.Releases) || !ok {
			nd.ReleasesChanged, nd.Releases = true, n.Releases
		}
		header := ok && reflect.DeepEqual(p.Network, n.Network) && p.BridgeAddress == n.BridgeAddress &&
			p.ServesDHCP == n.ServesDHCP && p.NAT == n.NAT && p.DHCPServer == n.DHCPServer
		if !header || len(nd.Instances) > 0 || len(nd.RemovedInstances) > 0 || len(nd.DHCPHosts) > 0 ||
			len(nd.RemovedDHCPHosts) > 0 || nd.ReleasesChanged {
			changed = append(changed, nd)
		}
	}
	var removed []int64
	for i := range old {
		if !seen[old[i].Network.ID] {
			removed = append(removed, old[i].Network.ID)
		}
	}
	return changed, removed
}

func diffGroups(old, new []HostSecurityGroup) ([]HostSecurityGroupDelta, []int64) {
	prev := make(map[int64]*HostSecurityGroup, len(old))
	for i := range old {
		prev[old[i].ID] = &old[i]
	}
	var changed []HostSecurityGroupDelta
	seen := make(map[int64]bool, len(new))
	for i := range new {
		g := &new[i]
		seen[g.ID] = true
		p, ok := prev[g.ID]
		if !ok {
			changed = append(changed, HostSecurityGroupDelta{SecurityGroup: g.SecurityGroup, MembersReplaced: true, AddedMembers: g.Members})
			continue
		}
		gd := HostSecurityGroupDelta{SecurityGroup: g.SecurityGroup}
		gd.AddedMembers, gd.RemovedMembers = diffList(p.Members, g.Members,
			func(a *netip.Addr) netip.Addr { return *a },
			func(a, b *netip.Addr) bool { return true })
		if !reflect.DeepEqual(p.SecurityGroup, g.SecurityGroup) || len(gd.AddedMembers) > 0 || len(gd.RemovedMembers) > 0 {
			changed = append(changed, gd)
		}
	}
	var removed []int64
	for i := range old {
		if !seen[old[i].ID] {
			removed = append(removed, old[i].ID)
		}
	}
	return changed, removed
}
