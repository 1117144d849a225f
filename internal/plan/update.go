package plan

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"novanet/internal/model"
)

// Change says what differs between a plan and the plan before it, for
// appliers that trust what they applied last: they touch only the entries
// named here. When Full is set anything may differ and every applier
// compares the whole plan (with the kernel, when asked to).
type Change struct {
	Full   bool          `json:"full,omitempty"`
	Ports  []PortChange  `json:"ports,omitempty"`
	Hosts  []HostsChange `json:"hosts,omitempty"`
	Chains ChainChange   `json:"chains,omitzero"`
	Sets   []SetChange   `json:"sets,omitempty"`
	Guard  GuardChange   `json:"guard,omitzero"`
}

// FullChange is the change of a whole re-plan.
var FullChange = Change{Full: true}

// PortChange is what changed on one bridge's ports.
type PortChange struct {
	Bridge  string `json:"bridge"`
	Added   []Port `json:"added,omitempty"`
	Removed []Port `json:"removed,omitempty"`
}

// HostsChange is one dnsmasq's host entries written or removed.
type HostsChange struct {
	Dnsmasq string      `json:"dnsmasq"`
	Written []HostEntry `json:"written,omitempty"`
	Removed []string    `json:"removed,omitempty"` // file names
}

// ChainChange is the instance chains added and removed (a changed chain
// is removed, then added), each with its jump from nova-compute-local.
type ChainChange struct {
	Added   []InstanceChain `json:"added,omitempty"`
	Removed []InstanceChain `json:"removed,omitempty"`
}

// IsZero reports whether no chain changed.
func (c ChainChange) IsZero() bool { return len(c.Added) == 0 && len(c.Removed) == 0 }

// InstanceChain is one instance's chain, the address its jump matches
// and the jump's index in nova-compute-local: in the plan before for a
// removed chain, in the new plan for an added one (added chains are
// listed by ascending index, so inserting them in order puts each at its
// place).
type InstanceChain struct {
	Chain
	Address  netip.Addr `json:"address"`
	Position int        `json:"position"`
}

// SetChange is the members added to and removed from one address set.
type SetChange struct {
	Name    string       `json:"name"`
	Added   []netip.Addr `json:"added,omitempty"`
	Removed []netip.Addr `json:"removed,omitempty"`
}

// GuardChange is the guarded ports added and removed.
type GuardChange struct {
	Added   []GuardPort `json:"added,omitempty"`
	Removed []GuardPort `json:"removed,omitempty"`
}

// IsZero reports whether no guarded port changed.
func (g GuardChange) IsZero() bool { return len(g.Added) == 0 && len(g.Removed) == 0 }

// Empty reports whether nothing changed.
func (c Change) Empty() bool {
	return !c.Full && len(c.Ports) == 0 && len(c.Hosts) == 0 && c.Chains.IsZero() && len(c.Sets) == 0 && c.Guard.IsZero()
}

// maxIncremental bounds the entries one incremental update re-plans:
// beyond it finding each changed entry costs more than a whole Build.
const maxIncremental = 64

// Update returns the plan of new, byte for byte what Build(new, o) returns,
// and what changed since prev. prev must be the plan of old with the same
// options, and new must be old.Apply(d). Only the entries d names are
// re-planned (instances, their ports, chains and guard entries, DHCP host
// entries, group members), so one more instance costs the same at 5,000
// as at 100; any change this cannot describe entry by entry (options, a
// network added, removed or changed as a whole, group rules, floating IPs,
// a plan with warnings) falls back to Build and a full Change. Neither
// prev nor the states are modified: the result shares what did not change
// with prev.
func Update(prev Plan, old, new model.HostState, d model.HostStateDelta, o Options) (Plan, Change, error) {
	if p, ch, ok := incremental(prev, old, new, d); ok {
		return p, ch, nil
	}
	p, err := Build(new, o)
	return p, FullChange, err
}

// netChange is one changed network's entries, old and new.
type netChange struct {
	oldNet, newNet  *model.HostNetwork
	oldAt, newAt    int // the network's first instance in the old / new plan's instance order
	removedInst     []int
	addedInst       []int
	removedHosts    []int
	addedHosts      []int
	releasesChanged bool
}

func incremental(prev Plan, old, new model.HostState, d model.HostStateDelta) (Plan, Change, bool) {
	if d.Full != nil || d.Options != nil || len(d.RemovedNetworks) > 0 || len(d.FloatingIPs) > 0 || len(d.RemovedFloatingIPs) > 0 ||
		len(d.RemovedSecurityGroups) > 0 || len(old.FloatingIPs) > 0 || len(new.FloatingIPs) > 0 ||
		prev.Host != old.Host || prev.Revision != old.Revision || len(old.Networks) != len(new.Networks) {
		return Plan{}, Change{}, false
	}
	// The only warnings re-planned are those of a server that sends no
	// interface ids at all (one per instance, in instance order);
	// anything else Build says.
	// (updateNoVIFWarnings checks there is one per instance; the first
	// and last are looked at here, not each of thousands.)
	if n := len(prev.Warnings); n > 0 && (!isNoVIFWarning(prev.Warnings[0]) || !isNoVIFWarning(prev.Warnings[n-1])) {
		return Plan{}, Change{}, false
	}
	budget := maxIncremental
	nets := make([]netChange, 0, len(d.Networks))
	oldAt, newAt := 0, 0
	di := 0
	deltaByID := make(map[int64]*model.HostNetworkDelta, len(d.Networks))
	for i := range d.Networks {
		deltaByID[d.Networks[i].Network.ID] = &d.Networks[i]
	}
	for i := range new.Networks {
		on, nn := &old.Networks[i], &new.Networks[i]
		if on.Network.ID != nn.Network.ID || (i > 0 && nn.Network.ID <= new.Networks[i-1].Network.ID) {
			return Plan{}, Change{}, false
		}
		nd := deltaByID[nn.Network.ID]
		if nd != nil {
			di++
			if !sameHeader(on, nn) || (len(on.Instances) > 0) != (len(nn.Instances) > 0) {
				return Plan{}, Change{}, false
			}
			nc := netChange{oldNet: on, newNet: nn, oldAt: oldAt, newAt: newAt, releasesChanged: nd.ReleasesChanged}
			budget -= len(nd.Instances) + len(nd.RemovedInstances) + len(nd.DHCPHosts) + len(nd.RemovedDHCPHosts)
			if budget < 0 {
				return Plan{}, Change{}, false
			}
			var ok bool
			if nc.removedInst, nc.addedInst, ok = changedEntries(on.Instances, nn.Instances, nd.RemovedInstances, nd.Instances,
				func(in *model.HostInstance) string { return in.MAC }, compareInstance); !ok {
				return Plan{}, Change{}, false
			}
			if nc.removedHosts, nc.addedHosts, ok = changedEntries(on.DHCPHosts, nn.DHCPHosts, nd.RemovedDHCPHosts, nd.DHCPHosts,
				func(h *model.DHCPHost) string { return h.MAC }, compareDHCPHostP); !ok {
				return Plan{}, Change{}, false
			}
			nets = append(nets, nc)
		}
		oldAt += len(on.Instances)
		newAt += len(nn.Instances)
	}
	if di != len(d.Networks) {
		return Plan{}, Change{}, false // a network new to the host
	}
	groups, ok := unchangedRules(old, new, d)
	if !ok {
		return Plan{}, Change{}, false
	}
	p := prev
	p.Revision = new.Revision
	var ch Change
	if !updatePorts(&p, &ch, nets) || !updateHosts(&p, &ch, nets, new) ||
		!updateChains(&p, &ch, nets, oldAt, newAt, new, groups) || !updateSets(&p, &ch, new, d) {
		return Plan{}, Change{}, false
	}
	if slices.ContainsFunc(nets, func(nc netChange) bool { return nc.releasesChanged }) {
		p.Releases = planReleases(new.Networks)
	}
	return p, ch, true
}

func sameHeader(a, b *model.HostNetwork) bool {
	return a.Network == b.Network && a.BridgeAddress == b.BridgeAddress && a.ServesDHCP == b.ServesDHCP &&
		a.NAT == b.NAT && a.DHCPServer == b.DHCPServer &&
		(a.Network.Kind == model.KindFlat || a.Network.Kind == model.KindFlatDHCP)
}

func compareInstance(a, b *model.HostInstance) int {
	if c := a.Address.Compare(b.Address); c != 0 {
		return c
	}
	return strings.Compare(a.MAC, b.MAC)
}

func compareDHCPHostP(a, b *model.DHCPHost) int { return compareDHCPHost(*a, *b) }

// changedEntries returns the indexes in old of the entries the delta
// removed or replaced and the indexes in new of the entries it added or
// replaced, each ascending. Both lists are in their sort order (cmp); a
// key is found by a scan of old (a MAC compare is a few nanoseconds) and
// then located by binary search.
func changedEntries[T any](old, new []T, removed []string, upserts []T, key func(*T) string, cmp func(a, b *T) int) (oldIdx, newIdx []int, ok bool) {
	keys := make([]string, 0, len(removed)+len(upserts))
	keys = append(keys, removed...)
	for i := range upserts {
		keys = append(keys, key(&upserts[i]))
		j, found := slices.BinarySearchFunc(new, &upserts[i], func(e T, t *T) int { return cmp(&e, t) })
		if !found {
			return nil, nil, false
		}
		newIdx = append(newIdx, j)
	}
	if len(keys) == 0 {
		return nil, nil, true
	}
	for i := range old {
		k := key(&old[i])
		if slices.Contains(keys, k) {
			oldIdx = append(oldIdx, i)
		}
	}
	slices.Sort(newIdx)
	if len(slices.Compact(newIdx)) != len(upserts) {
		return nil, nil, false
	}
	return oldIdx, newIdx, true
}

// findIndex returns the index of the first entry that matches, or -1.
func findIndex[T any](list []T, match func(*T) bool) int {
	for i := range list {
		if match(&list[i]) {
			return i
		}
	}
	return -1
}

func comparePortDevice(a, b Port) int { return strings.Compare(a.Device, b.Device) }

func updatePorts(p *Plan, ch *Change, nets []netChange) bool {
	var guard GuardChange
	bridgesCloned, guardCloned := false, false
	for _, nc := range nets {
		if len(nc.removedInst) == 0 && len(nc.addedInst) == 0 {
			continue
		}
		bi := findIndex(p.Bridges, func(b *Bridge) bool { return b.Name == nc.newNet.Network.Bridge })
		if bi < 0 {
			return false
		}
		if !bridgesCloned {
			p.Bridges = slices.Clone(p.Bridges)
			bridgesCloned = true
		}
		b := &p.Bridges[bi]
		b.Ports = slices.Clone(b.Ports)
		pc := PortChange{Bridge: b.Name}
		if !guardCloned {
			p.Firewall.Guard.Ports = slices.Clone(p.Firewall.Guard.Ports)
			guardCloned = true
		}
		for _, i := range nc.removedInst {
			in := &nc.oldNet.Instances[i]
			if in.Device == "" {
				continue
			}
			port := Port{Device: in.Device, MAC: in.MAC, Address: in.Address, InstanceUUID: in.UUID}
			j, found := slices.BinarySearchFunc(b.Ports, port, comparePortDevice)
			if !found || b.Ports[j] != port || (j+1 < len(b.Ports) && b.Ports[j+1].Device == port.Device) {
				return false
			}
			b.Ports = slices.Delete(b.Ports, j, j+1)
			pc.Removed = append(pc.Removed, port)
			g := &p.Firewall.Guard
			k, found := slices.BinarySearchFunc(g.Ports, in.Device, func(gp GuardPort, dev string) int { return strings.Compare(gp.Device, dev) })
			if !found || (k+1 < len(g.Ports) && g.Ports[k+1].Device == in.Device) {
				return false
			}
			guard.Removed = append(guard.Removed, g.Ports[k])
			g.Ports = slices.Delete(g.Ports, k, k+1)
		}
		for _, i := range nc.addedInst {
			in := &nc.newNet.Instances[i]
			if in.Device == "" {
				continue
			}
			port := Port{Device: in.Device, MAC: in.MAC, Address: in.Address, InstanceUUID: in.UUID}
			j, found := slices.BinarySearchFunc(b.Ports, port, comparePortDevice)
			if found {
				return false // two ports of one name: Build's unstable sort decides
			}
			b.Ports = slices.Insert(b.Ports, j, port)
			pc.Added = append(pc.Added, port)
			mac, ok := parseMAC(in.MAC)
			if !ok || !in.Address.Is4() {
				return false // a warning: Build says it
			}
			gp := GuardPort{Device: in.Device, MAC: mac, IPv4: in.Address}
			g := &p.Firewall.Guard
			k, found := slices.BinarySearchFunc(g.Ports, in.Device, func(gp GuardPort, dev string) int { return strings.Compare(gp.Device, dev) })
			if found {
				return false
			}
			g.Ports = slices.Insert(g.Ports, k, gp)
			guard.Added = append(guard.Added, gp)
		}
		if len(pc.Added) > 0 || len(pc.Removed) > 0 {
			ch.Ports = append(ch.Ports, pc)
		}
	}
	if guardCloned && len(p.Firewall.Guard.Ports) == 0 {
		p.Firewall.Guard.Ports = nil // as planL2Guard leaves an empty guard
	}
	ch.Guard = guard
	return true
}

func updateHosts(p *Plan, ch *Change, nets []netChange, new model.HostState) bool {
	domain := new.Options.DHCPDomain
	if domain == "" {
		domain = DefaultDomain
	}
	cloned := false
	for _, nc := range nets {
		n := nc.newNet
		if len(nc.removedHosts) == 0 && len(nc.addedHosts) == 0 || !n.ServesDHCP || n.Network.Kind != model.KindFlatDHCP {
			continue // nothing changed, or its hosts are not planned
		}
		di := findIndex(p.Dnsmasq, func(dm *Dnsmasq) bool { return dm.Bridge == n.Network.Bridge })
		if di < 0 {
			return false
		}
		if !cloned {
			p.Dnsmasq = slices.Clone(p.Dnsmasq)
			cloned = true
		}
		dm := &p.Dnsmasq[di]
		// The network's entries follow those of the networks served
		// before it on the same bridge (already updated: nets is in
		// network order).
		at := 0
		for i := range new.Networks {
			o := &new.Networks[i]
			if o.Network.ID >= n.Network.ID {
				break
			}
			if o.ServesDHCP && o.Network.Kind == model.KindFlatDHCP && o.Network.Bridge == n.Network.Bridge {
				at += len(o.DHCPHosts)
			}
		}
		oldLen, newLen := len(nc.oldNet.DHCPHosts), len(n.DHCPHosts)
		if at+oldLen > len(dm.Hosts) {
			return false
		}
		seg := dm.Hosts[at : at+oldLen]
		out := make([]HostEntry, 0, len(dm.Hosts)-oldLen+newLen)
		out = append(out, dm.Hosts[:at]...)
		hc := HostsChange{Dnsmasq: dm.Name}
		var written map[string]bool
		k, ai, ri := 0, 0, 0
		for j := 0; j < newLen; j++ {
			if ai < len(nc.addedHosts) && nc.addedHosts[ai] == j {
				e := hostEntry(n.DHCPHosts[j], domain)
				out = append(out, e)
				hc.Written = append(hc.Written, e)
				if written == nil {
					written = map[string]bool{}
				}
				written[e.FileName] = true
				ai++
				continue
			}
			for ri < len(nc.removedHosts) && nc.removedHosts[ri] == k {
				ri, k = ri+1, k+1
			}
			if k >= len(seg) {
				return false
			}
			out = append(out, seg[k])
			k++
		}
		for ri < len(nc.removedHosts) && nc.removedHosts[ri] == k {
			ri, k = ri+1, k+1
		}
		if k != len(seg) || ai != len(nc.addedHosts) {
			return false
		}
		for _, i := range nc.removedHosts {
			// A changed entry keeps its file (named after the MAC).
			if f := seg[i].FileName; !written[f] {
				hc.Removed = append(hc.Removed, f)
			}
		}
		dm.Hosts = append(out, dm.Hosts[at+oldLen:]...)
		ch.Hosts = append(ch.Hosts, hc)
	}
	return true
}

// updateChains removes the chains (and nova-compute-local jumps) of the
// removed or replaced instances and plans those of the added ones, at
// their place in Build's order: network order, then address order. It
// relies on what a plan without warnings guarantees: every instance has
// an interface id (unique in the cluster), so instance i of the plan's
// order owns jump i and the i-th instance chain.
func updateChains(p *Plan, ch *Change, nets []netChange, oldTotal, newTotal int, new model.HostState, groups map[int64]*model.HostSecurityGroup) bool {
	changed := false
	for _, nc := range nets {
		if len(nc.removedInst) > 0 || len(nc.addedInst) > 0 {
			changed = true
		}
	}
	if !changed {
		return true
	}
	if len(p.Warnings) > 0 {
		return updateNoVIFWarnings(p, nets, oldTotal, newTotal)
	}
	ti := findIndex(p.Firewall.Tables, func(t *Table) bool { return t.Name == "filter" })
	if ti < 0 {
		return false
	}
	p.Firewall.Tables = slices.Clone(p.Firewall.Tables)
	filter := &p.Firewall.Tables[ti]
	li := findIndex(filter.Chains, func(c *Chain) bool { return c.Name == roleCompute+"-local" })
	top := findIndex(filter.Chains, func(c *Chain) bool { return c.Name == filterTop })
	if li < 0 || top < 0 {
		return false
	}
	base := top + 1
	filter.Chains = slices.Clone(filter.Chains)
	if len(filter.Chains[li].Rules) != oldTotal || len(filter.Chains) != base+oldTotal+2 {
		return false
	}
	// The jumps are edited beside the chains (whose slice may move) and
	// put back at the end.
	local := &Chain{Name: filter.Chains[li].Name, Rules: slices.Clone(filter.Chains[li].Rules)}
	// Removals from the last, in the old plan's positions; then
	// additions from the first, in the new plan's.
	for n := len(nets) - 1; n >= 0; n-- {
		nc := nets[n]
		for r := len(nc.removedInst) - 1; r >= 0; r-- {
			i := nc.removedInst[r]
			in := &nc.oldNet.Instances[i]
			at := nc.oldAt + i
			name := InstanceChainName(in.VIFID)
			if local.Rules[at].Target.Chain != name || filter.Chains[base+at].Name != name {
				return false
			}
			ch.Chains.Removed = append(ch.Chains.Removed, InstanceChain{Chain: filter.Chains[base+at], Address: in.Address, Position: at})
			local.Rules = slices.Delete(local.Rules, at, at+1)
			filter.Chains = slices.Delete(filter.Chains, base+at, base+at+1)
		}
	}
	setNames := make(map[string]bool, len(p.Firewall.Sets))
	for _, s := range p.Firewall.Sets {
		setNames[s.Name] = true
	}
	rendered := map[int64][]groupRendered{}
	used := map[int64]bool{}
	var warn []string
	for _, nc := range nets {
		for _, j := range nc.addedInst {
			in := &nc.newNet.Instances[j]
			if in.VIFID <= 0 {
				return false // a warning: Build says it
			}
			for _, gid := range in.SecurityGroups {
				if groups[gid] == nil {
					return false
				}
			}
			rules := chainRules(*nc.newNet, in.SecurityGroups, new.Options, groups, rendered, used, &warn)
			if len(warn) > 0 {
				return false
			}
			for id := range used {
				if !setNames[GroupSetName(id)] {
					return false // a new set: Build lays the sets out
				}
			}
			at := nc.newAt + j
			if at > len(local.Rules) {
				return false
			}
			c := Chain{Name: InstanceChainName(in.VIFID), Rules: rules}
			local.Rules = slices.Insert(local.Rules, at, Rule{Destination: hostPrefix(in.Address), Target: jumpTo(c.Name)})
			filter.Chains = slices.Insert(filter.Chains, base+at, c)
			ch.Chains.Added = append(ch.Chains.Added, InstanceChain{Chain: c, Address: in.Address, Position: at})
		}
	}
	if len(local.Rules) != newTotal {
		return false
	}
	filter.Chains[li] = *local
	// A set no remaining chain names would leave Build's plan: let Build
	// lay the sets out then.
	for _, rc := range ch.Chains.Removed {
		for _, r := range rc.Rules {
			if r.SourceSet == "" {
				continue
			}
			if !slices.ContainsFunc(filter.Chains[base:base+newTotal], func(c Chain) bool {
				return slices.ContainsFunc(c.Rules, func(x Rule) bool { return x.SourceSet == r.SourceSet })
			}) {
				return false
			}
		}
	}
	return true
}

// updateNoVIFWarnings re-plans a host whose instances all lack their
// interface id: no instance chain, one warning per instance in instance
// order.
func updateNoVIFWarnings(p *Plan, nets []netChange, oldTotal, newTotal int) bool {
	// One warning per instance and no instance chain: every instance
	// lacks its id, and nothing else warned (another warning would be one
	// too many).
	filter := p.Firewall.Table("filter")
	if len(p.Warnings) != oldTotal || filter == nil {
		return false
	}
	if local := filter.Chain(roleCompute + "-local"); local == nil || len(local.Rules) != 0 {
		return false
	}
	warn := slices.Clone(p.Warnings)
	for n := len(nets) - 1; n >= 0; n-- {
		nc := nets[n]
		for r := len(nc.removedInst) - 1; r >= 0; r-- {
			at := nc.oldAt + nc.removedInst[r]
			if warn[at] != noVIFWarning(nc.oldNet.Instances[nc.removedInst[r]]) {
				return false
			}
			warn = slices.Delete(warn, at, at+1)
		}
	}
	for _, nc := range nets {
		for _, j := range nc.addedInst {
			in := nc.newNet.Instances[j]
			if at := nc.newAt + j; in.VIFID > 0 || at > len(warn) {
				return false
			} else {
				warn = slices.Insert(warn, at, noVIFWarning(in))
			}
		}
	}
	if len(warn) != newTotal {
		return false
	}
	p.Warnings = warn
	return true
}

// unchangedRules checks that the delta changes no group but its members
// (rules change every member's chain: Build then), and returns the new
// state's groups by ID.
func unchangedRules(old, new model.HostState, d model.HostStateDelta) (map[int64]*model.HostSecurityGroup, bool) {
	for i := range d.SecurityGroups {
		gd := &d.SecurityGroups[i]
		j, found := slices.BinarySearchFunc(old.SecurityGroups, gd.ID, func(g model.HostSecurityGroup, id int64) int { return cmpInt(g.ID, id) })
		if !found || gd.MembersReplaced || !reflect.DeepEqual(old.SecurityGroups[j].SecurityGroup, gd.SecurityGroup) {
			return nil, false
		}
	}
	byID := make(map[int64]*model.HostSecurityGroup, len(new.SecurityGroups))
	for i := range new.SecurityGroups {
		byID[new.SecurityGroups[i].ID] = &new.SecurityGroups[i]
	}
	return byID, true
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// updateSets applies the groups' member changes to their sets: a set
// holds the IPv4 members, sorted and without repeats.
func updateSets(p *Plan, ch *Change, new model.HostState, d model.HostStateDelta) bool {
	cloned := false
	for i := range d.SecurityGroups {
		gd := &d.SecurityGroups[i]
		if len(gd.AddedMembers) == 0 && len(gd.RemovedMembers) == 0 {
			continue
		}
		si := findIndex(p.Firewall.Sets, func(s *AddrSet) bool { return s.Name == GroupSetName(gd.ID) })
		if si < 0 {
			continue // no rule names the group as a source
		}
		j, found := slices.BinarySearchFunc(new.SecurityGroups, gd.ID, func(g model.HostSecurityGroup, id int64) int { return cmpInt(g.ID, id) })
		if !found {
			return false
		}
		members := new.SecurityGroups[j].Members
		if !cloned {
			p.Firewall.Sets = slices.Clone(p.Firewall.Sets)
			cloned = true
		}
		s := &p.Firewall.Sets[si]
		s.Members = slices.Clone(s.Members)
		sc := SetChange{Name: s.Name}
		for _, m := range gd.RemovedMembers {
			if _, still := slices.BinarySearchFunc(members, m, netip.Addr.Compare); still || !m.Is4() {
				continue // listed twice, or never in the set
			}
			if k, ok := slices.BinarySearchFunc(s.Members, m, netip.Addr.Compare); ok {
				s.Members = slices.Delete(s.Members, k, k+1)
				sc.Removed = append(sc.Removed, m)
			}
		}
		for _, m := range gd.AddedMembers {
			if !m.Is4() {
				continue
			}
			if k, ok := slices.BinarySearchFunc(s.Members, m, netip.Addr.Compare); !ok {
				s.Members = slices.Insert(s.Members, k, m)
				sc.Added = append(sc.Added, m)
			}
		}
		if len(sc.Added) > 0 || len(sc.Removed) > 0 {
			ch.Sets = append(ch.Sets, sc)
		}
	}
	return true
}
