package plan

import (
	"cmp"
	"net/netip"
	"slices"
)

// Revocation names connection-tracking entries to delete because a change
// of plan stopped allowing them: netfilter lets an established flow pass
// on its entry without consulting the rules, so a revoked rule, member or
// instance would otherwise keep its open connections.
type Revocation struct {
	Proto string // "tcp", "udp", "icmp" or "" for any
	// Src and Dst are the original source and destination (zero: any);
	// at least one is set.
	Src, Dst netip.Addr
	// DstPort is the original destination port (tcp/udp; 0: any).
	DstPort uint16
}

// Revocations lists what going from old to new revokes on this host:
// every flow to and from an instance that is gone; for an instance that
// stays, the flows an accept rule it lost could have admitted; and every
// flow from a member that left a set a local rule still names.
//
// A removed rule is revoked by protocol, port and instance only (a CIDR
// cannot be given to conntrack's filter), so flows another rule still
// allows lose their entry too. With nf_conntrack_tcp_loose=0 (planned on
// compute hosts) such a TCP flow is not picked up again mid-stream: it
// has to reconnect, which the rules then admit. UDP and ICMP flows are
// simply tracked anew by their next packet.
func Revocations(old, new Firewall) []Revocation {
	oldInst, newInst := instanceRules(old), instanceRules(new)
	if len(oldInst) == 0 {
		return nil
	}
	// Members that left each set, found once per set (per instance it
	// was N instances times N members).
	left := map[string][]netip.Addr{}
	newSets := setMembers(new)
	for _, set := range old.Sets {
		for _, m := range set.Members {
			if !newSets[set.Name][m] {
				left[set.Name] = append(left[set.Name], m)
			}
		}
	}
	var out []Revocation
	revokedFrom := map[string]bool{} // sets whose leavers are revoked already
	// Like instances share one rule slice in each plan: compare each pair
	// of slices once, not once per instance.
	same := map[[2]sliceID]bool{}
	for addr, oldRules := range oldInst {
		newRules, ok := newInst[addr]
		if !ok {
			out = append(out, Revocation{Dst: addr}, Revocation{Src: addr})
			continue
		}
		for _, r := range newRules {
			// A member that left is revoked once by its address, for every
			// destination: per instance and rule it would be one conntrack
			// run each, N of them for one deleted member of a group N
			// instances use.
			if r.SourceSet != "" && r.Target.Verdict == Accept && !revokedFrom[r.SourceSet] {
				revokedFrom[r.SourceSet] = true
				for _, m := range left[r.SourceSet] {
					out = append(out, Revocation{Src: m})
				}
			}
		}
		key := [2]sliceID{idOf(oldRules), idOf(newRules)}
		eq, known := same[key]
		if !known || key[0].first == nil {
			eq = slices.EqualFunc(oldRules, newRules, equalRule)
			same[key] = eq
		}
		if eq {
			continue // the common case: this instance's rules did not change
		}
		kept := make(map[string]bool, len(newRules))
		for _, r := range newRules {
			kept[r.Spec()] = true
		}
		for _, r := range oldRules {
			if r.Target.Verdict != Accept || kept[r.Spec()] {
				continue
			}
			out = append(out, revocationOf(r, addr, netip.Addr{}))
		}
	}
	slices.SortFunc(out, func(a, b Revocation) int {
		return cmp.Or(a.Dst.Compare(b.Dst), a.Src.Compare(b.Src), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.DstPort, b.DstPort))
	})
	return slices.Compact(out)
}

func revocationOf(r Rule, dst, src netip.Addr) Revocation {
	rev := Revocation{Proto: r.Protocol, Dst: dst, Src: src}
	if r.Source.IsValid() && r.Source.IsSingleIP() {
		rev.Src = r.Source.Addr()
	}
	if (r.Protocol == "tcp" || r.Protocol == "udp") && r.DstPorts.From != 0 && (r.DstPorts.To == 0 || r.DstPorts.To == r.DstPorts.From) {
		rev.DstPort = r.DstPorts.From
	}
	return rev
}

// instanceRules maps each local instance address to its chain's rules,
// from nova-compute-local's jumps.
func instanceRules(fw Firewall) map[netip.Addr][]Rule {
	filter := fw.Table("filter")
	if filter == nil {
		return nil
	}
	local := filter.Chain(roleCompute + "-local")
	if local == nil {
		return nil
	}
	chains := make(map[string][]Rule, len(filter.Chains))
	for _, c := range filter.Chains {
		chains[c.Name] = c.Rules
	}
	out := make(map[netip.Addr][]Rule, len(local.Rules))
	for _, j := range local.Rules {
		if j.Target.Verdict != Goto || !j.Destination.IsValid() || !j.Destination.IsSingleIP() {
			continue
		}
		if rules, ok := chains[j.Target.Chain]; ok {
			out[j.Destination.Addr()] = rules
		}
	}
	return out
}

func setMembers(fw Firewall) map[string]map[netip.Addr]bool {
	out := make(map[string]map[netip.Addr]bool, len(fw.Sets))
	for _, s := range fw.Sets {
		m := make(map[netip.Addr]bool, len(s.Members))
		for _, a := range s.Members {
			m[a] = true
		}
		out[s.Name] = m
	}
	return out
}

// equalRule compares rules by value (the ICMP fields are pointers).
func equalRule(a, b Rule) bool {
	eqInt := func(x, y *int) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	if !eqInt(a.ICMPType, b.ICMPType) || !eqInt(a.ICMPCode, b.ICMPCode) {
		return false
	}
	a.ICMPType, a.ICMPCode, b.ICMPType, b.ICMPCode = nil, nil, nil, nil
	return a.InInterface == b.InInterface && a.OutInterface == b.OutInterface && a.Source == b.Source &&
		a.Destination == b.Destination && a.SourceSet == b.SourceSet && a.Protocol == b.Protocol &&
		a.SrcPorts == b.SrcPorts && a.DstPorts == b.DstPorts && slices.Equal(a.State, b.State) &&
		slices.Equal(a.CTState, b.CTState) && a.CTStateNegate == b.CTStateNegate && a.PhysdevIn == b.PhysdevIn &&
		a.PhysdevOut == b.PhysdevOut && a.Comment == b.Comment && a.Target == b.Target
}

// ChangeRevocations is Revocations(prev, next) for a next plan that
// Update derived from prev with ch, computed from the change alone: the
// chains it removed and added, and the members that left sets. It costs
// what the change holds, not what the host holds.
func ChangeRevocations(next Firewall, ch Change) []Revocation {
	if ch.Full {
		return nil
	}
	added := make(map[netip.Addr][]Rule, len(ch.Chains.Added))
	for _, c := range ch.Chains.Added {
		added[c.Address] = c.Rules
	}
	var out []Revocation
	for _, c := range ch.Chains.Removed {
		newRules, ok := added[c.Address]
		if !ok {
			out = append(out, Revocation{Dst: c.Address}, Revocation{Src: c.Address})
			continue
		}
		if slices.EqualFunc(c.Rules, newRules, equalRule) {
			continue
		}
		kept := make(map[string]bool, len(newRules))
		for _, r := range newRules {
			kept[r.Spec()] = true
		}
		for _, r := range c.Rules {
			if r.Target.Verdict == Accept && !kept[r.Spec()] {
				out = append(out, revocationOf(r, c.Address, netip.Addr{}))
			}
		}
	}
	// Instances new to the host (not replaced ones) do not count as
	// naming a set: Revocations looks at instances in both plans.
	fresh := make(map[netip.Addr]bool, len(added))
	for a := range added {
		fresh[a] = true
	}
	for _, c := range ch.Chains.Removed {
		delete(fresh, c.Address)
	}
	for _, sc := range ch.Sets {
		if len(sc.Removed) == 0 || !namedByStayingInstance(next, sc.Name, fresh) {
			continue
		}
		for _, m := range sc.Removed {
			out = append(out, Revocation{Src: m})
		}
	}
	slices.SortFunc(out, func(a, b Revocation) int {
		return cmp.Or(a.Dst.Compare(b.Dst), a.Src.Compare(b.Src), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.DstPort, b.DstPort))
	})
	return slices.Compact(out)
}

// namedByStayingInstance: an instance chain of next that was there
// before (not just added) accepts from set. Like chains share their
// rules, so the first instance usually answers.
func namedByStayingInstance(next Firewall, set string, fresh map[netip.Addr]bool) bool {
	filter := next.Table("filter")
	if filter == nil {
		return false
	}
	local := filter.Chain(roleCompute + "-local")
	base := slices.IndexFunc(filter.Chains, func(c Chain) bool { return c.Name == filterTop }) + 1
	if local == nil || base == 0 {
		return false
	}
	var byName map[string][]Rule
	for i, j := range local.Rules {
		if j.Target.Verdict != Goto || !j.Destination.IsValid() || !j.Destination.IsSingleIP() || fresh[j.Destination.Addr()] {
			continue
		}
		// The planner lists instance chains in the order of their jumps.
		var rules []Rule
		if k := base + i; k < len(filter.Chains) && filter.Chains[k].Name == j.Target.Chain {
			rules = filter.Chains[k].Rules
		} else {
			if byName == nil {
				byName = make(map[string][]Rule, len(filter.Chains))
				for _, c := range filter.Chains {
					byName[c.Name] = c.Rules
				}
			}
			rules = byName[j.Target.Chain]
		}
		if slices.ContainsFunc(rules, func(r Rule) bool { return r.SourceSet == set && r.Target.Verdict == Accept }) {
			return true
		}
	}
	return false
}
