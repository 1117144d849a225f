package plan

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// The nftables driver's layout of the same rule model. Each iptables
// table becomes novanet's own nftables table ("ip novanet-filter", "ip
// novanet-nat"); each built-in chain with jumps becomes a base chain at a
// priority just ahead of iptables-nft's (NFTPriority), holding the jumps;
// owned chains keep their names and rules.
//
// One change: a run of rules that only send one destination address each
// to a chain nothing else jumps to (nova-compute-local's "-d <fixed ip> -j
// nova-compute-inst-<id>") is folded. Instances whose chains hold the same
// rules (same network, same groups) share one chain and one set of their
// addresses, and the run becomes one "ip daddr @set jump chain" rule per
// distinct chain. Adding an instance like others is then one set element:
// no chain, no rule, and nothing that makes the kernel re-validate the
// chain graph (a jump rule or a verdict-map element does: a map of 5,000
// per-instance chains costs a walk of all of them per commit).

// NFTTablePrefix starts the name of novanet's nftables tables.
const NFTTablePrefix = "novanet-"

// NFTTableName is the nftables table of an iptables table.
func NFTTableName(table string) string { return NFTTablePrefix + table }

// NFTTable is one of novanet's tables of family ip.
type NFTTable struct {
	Name   string     `json:"name"`
	Sets   []NFTSet   `json:"sets"`   // by name
	Chains []NFTChain `json:"chains"` // base chains in hook order, then the others by name
}

// NFTSet is a named set of IPv4 addresses.
type NFTSet struct {
	Name     string       `json:"name"`
	Elements []netip.Addr `json:"elements"` // sorted
}

// NFTChain is a chain; Hook is empty for a regular chain.
type NFTChain struct {
	Name     string    `json:"name"`
	Hook     string    `json:"hook,omitempty"` // prerouting, input, forward, output, postrouting
	Type     string    `json:"type,omitempty"` // filter or nat
	Priority int       `json:"priority,omitempty"`
	Rules    []NFTRule `json:"rules"`
}

// NFTRule is a rule of the model, optionally matching its destination
// against a set first (a folded run).
type NFTRule struct {
	DaddrSet string `json:"daddr_set,omitempty"`
	Rule
}

// nftHooks maps a built-in chain to its hook, in the order hooks list.
var nftHooks = []struct{ builtin, hook string }{
	{"PREROUTING", "prerouting"}, {"INPUT", "input"}, {"FORWARD", "forward"}, {"OUTPUT", "output"}, {"POSTROUTING", "postrouting"},
}

// NFTPriority is the base chain priority of a hook: 10 ahead of
// iptables-nft's (filter 0, dstnat -100, srcnat 100), so novanet's drops
// and NAT decisions come first. An accept here does not stop iptables'
// chains at the same hook from dropping: nftables has no cross-table
// accept.
func NFTPriority(table, hook string) int {
	if table != "nat" {
		return -10
	}
	switch hook {
	case "prerouting", "output":
		return -110
	}
	return 90
}

// NFTables lays the firewall's filter and nat tables out for the nftables
// driver. Sets go into every table whose rules name them.
func (f Firewall) NFTables() []NFTTable {
	var out []NFTTable
	for _, name := range []string{"filter", "nat"} {
		t := f.Table(name)
		if t == nil || (len(t.Chains) == 0 && len(t.Jumps) == 0) {
			continue
		}
		out = append(out, nftTable(*t, f.Sets))
	}
	return out
}

func nftTable(t Table, sets []AddrSet) NFTTable {
	nt := NFTTable{Name: NFTTableName(t.Name)}
	typ := "filter"
	if t.Name == "nat" {
		typ = "nat"
	}
	for _, h := range nftHooks {
		var rules []NFTRule
		for _, j := range t.Jumps {
			if j.From == h.builtin {
				rules = append(rules, NFTRule{Rule: Rule{Target: jumpTo(j.To)}})
			}
		}
		if len(rules) > 0 {
			nt.Chains = append(nt.Chains, NFTChain{Name: h.hook, Hook: h.hook, Type: typ, Priority: NFTPriority(t.Name, h.hook), Rules: rules})
		}
	}
	fold := folder{chains: t.Chains, other: jumpedToOtherwise(t),
		folded: make([]bool, len(t.Chains)), chainOf: map[string]*NFTChain{}, members: map[string]*[]netip.Addr{}}
	var regular []NFTChain
	var index []int
	for i := range t.Chains {
		c := &t.Chains[i]
		if !fold.folded[i] {
			regular = append(regular, NFTChain{Name: c.Name, Rules: fold.rules(c.Name, c.Rules)})
			index = append(index, i)
		}
	}
	// A chain folded after it was listed (its jump came later) goes.
	kept := regular[:0]
	for k, c := range regular {
		if !fold.folded[index[k]] {
			kept = append(kept, c)
		}
	}
	regular = kept
	for _, c := range fold.chainOf {
		regular = append(regular, *c)
	}
	slices.SortFunc(regular, func(a, b NFTChain) int { return strings.Compare(a.Name, b.Name) })
	nt.Chains = append(nt.Chains, regular...)
	for name, mp := range fold.members {
		m := *mp
		if !slices.IsSortedFunc(m, CompareIPv4) {
			slices.SortFunc(m, netip.Addr.Compare)
		}
		nt.Sets = append(nt.Sets, NFTSet{Name: name, Elements: m})
	}
	used := map[string]bool{}
	for _, c := range nt.Chains {
		for _, r := range c.Rules {
			if r.SourceSet != "" {
				used[r.SourceSet] = true
			}
		}
	}
	for _, s := range sets {
		if used[s.Name] {
			nt.Sets = append(nt.Sets, NFTSet{Name: s.Name, Elements: s.Members})
		}
	}
	slices.SortFunc(nt.Sets, func(a, b NFTSet) int { return strings.Compare(a.Name, b.Name) })
	return nt
}

// CompareIPv4 orders IPv4 addresses as netip.Addr.Compare does, faster.
func CompareIPv4(a, b netip.Addr) int {
	x, y := a.As4(), b.As4()
	return cmp.Compare(binary.BigEndian.Uint32(x[:]), binary.BigEndian.Uint32(y[:]))
}

// isDaddrJump: the rule only sends one destination address to a chain.
func isDaddrJump(r *Rule) bool {
	return r.Target.Verdict == Goto && r.Destination.IsValid() && r.Destination.IsSingleIP() &&
		r.InInterface == "" && r.OutInterface == "" && !r.Source.IsValid() && r.SourceSet == "" && r.Protocol == "" &&
		r.SrcPorts.IsZero() && r.DstPorts.IsZero() && r.ICMPType == nil && r.ICMPCode == nil &&
		len(r.State) == 0 && len(r.CTState) == 0 && r.PhysdevIn == "" && r.PhysdevOut == "" && r.Comment == ""
}

// sliceID identifies a rule slice the planner shares among like chains.
type sliceID struct {
	first *Rule
	n     int
}

func idOf(rules []Rule) sliceID {
	if len(rules) == 0 {
		return sliceID{}
	}
	return sliceID{&rules[0], len(rules)}
}

// jumpedToOtherwise lists the chains reached by anything but a daddr
// jump (a built-in chain's jump, any other rule): those are not folded.
// Like chains share one rule slice, which is looked at once.
func jumpedToOtherwise(t Table) map[string]bool {
	other := map[string]bool{}
	for _, j := range t.Jumps {
		other[j.To] = true
	}
	seen := map[sliceID]bool{}
	var last sliceID
	for _, c := range t.Chains {
		id := idOf(c.Rules)
		if id.first != nil && (id == last || seen[id]) {
			continue
		}
		seen[id], last = true, id
		for i := range c.Rules {
			if r := &c.Rules[i]; r.Target.Verdict == Goto && !isDaddrJump(r) {
				other[r.Target.Chain] = true
			}
		}
	}
	return other
}

// folder folds the runs of one table's chains (see above). It is built
// for a host of thousands of like instances: the planner lists instance
// chains in the order of their jumps and gives like chains one rule
// slice, so the next chain, its folded name and its set are guessed from
// the last before any map is consulted.
type folder struct {
	chains  []Chain
	byName  map[string]int // built on the first wrong guess
	other   map[string]bool
	folded  []bool                   // by chain index
	names   map[sliceID]string       // a shared rule slice's folded chain
	chainOf map[string]*NFTChain     // folded chains by name
	members map[string]*[]netip.Addr // their address sets
}

// chainIndex finds a chain, trying the one after guess first.
func (f *folder) chainIndex(name string, guess int) (int, bool) {
	if guess+1 < len(f.chains) && f.chains[guess+1].Name == name {
		return guess + 1, true
	}
	if guess < 0 && f.byName == nil {
		// The first target of a run: a scan is cheaper than the map.
		for i := range f.chains {
			if f.chains[i].Name == name {
				return i, true
			}
		}
		return 0, false
	}
	if f.byName == nil {
		f.byName = make(map[string]int, len(f.chains))
		for i, c := range f.chains {
			f.byName[c.Name] = i
		}
	}
	i, ok := f.byName[name]
	return i, ok
}

// rules translates a chain's rules. A run of daddr jumps to foldable
// chains ends at any other rule and at an address seen before in it (the
// first rule for an address must win).
func (f *folder) rules(chain string, rules []Rule) []NFTRule {
	out := make([]NFTRule, 0, min(len(rules), 16))
	var run []string // folded chain names of the current run, first appearance order
	// Duplicate addresses: none while they only increase; a map of the
	// run's addresses once they do not.
	var runAddrs []netip.Addr
	var seen map[netip.Addr]bool
	// Each run has its own sets (a later run's addresses must not match
	// in an earlier run); the first run's set is named as its chain.
	runNo := 0
	setName := func(chain string) string {
		if runNo == 0 {
			return chain
		}
		return chain + "-" + strconv.Itoa(runNo)
	}
	var lastID sliceID
	var lastName string
	var lastMembers *[]netip.Addr
	end := func() {
		for _, n := range run {
			out = append(out, NFTRule{DaddrSet: setName(n), Rule: Rule{Target: jumpTo(n)}})
		}
		if len(run) > 0 {
			runNo++
		}
		run, runAddrs, seen, lastID = run[:0], runAddrs[:0], nil, sliceID{}
	}
	guess := -1
	for i := range rules {
		r := &rules[i]
		if !isDaddrJump(r) || r.Target.Chain == chain || f.other[r.Target.Chain] {
			end()
			out = append(out, NFTRule{Rule: *r})
			continue
		}
		ti, ok := f.chainIndex(r.Target.Chain, guess)
		if !ok {
			end()
			out = append(out, NFTRule{Rule: *r})
			continue
		}
		guess = ti
		a := r.Destination.Addr()
		if n := len(runAddrs); seen == nil && n > 0 && !runAddrs[n-1].Less(a) {
			seen = make(map[netip.Addr]bool, len(runAddrs))
			for _, x := range runAddrs {
				seen[x] = true
			}
		}
		if seen != nil && seen[a] {
			end()
		}
		if seen != nil {
			seen[a] = true
		}
		runAddrs = append(runAddrs, a)
		f.folded[ti] = true
		target := f.chains[ti].Rules
		id := idOf(target)
		if id != lastID || id.first == nil {
			lastID = id
			if f.names == nil {
				f.names = map[sliceID]string{}
			}
			name, ok := f.names[id]
			if !ok || id.first == nil {
				name = foldedName(chain, target)
				f.names[id] = name
				if f.chainOf[name] == nil {
					nr := make([]NFTRule, len(target))
					for k, tr := range target {
						nr[k] = NFTRule{Rule: tr}
					}
					f.chainOf[name] = &NFTChain{Name: name, Rules: nr}
				}
			}
			lastName = name
			if lastMembers = f.members[setName(name)]; lastMembers == nil {
				m := make([]netip.Addr, 0, len(rules)-i)
				lastMembers = &m
				f.members[setName(name)] = lastMembers
			}
		}
		*lastMembers = append(*lastMembers, a)
		if !slices.Contains(run, lastName) {
			run = append(run, lastName)
		}
	}
	end()
	return out
}

// foldedName names the shared chain of instances whose chains hold these
// rules: the run's chain and a hash of the rules.
func foldedName(chain string, rules []Rule) string {
	h := fnv.New64a()
	for _, r := range rules {
		h.Write([]byte(NFTRule{Rule: r}.Text()))
		h.Write([]byte{'\n'})
	}
	return fmt.Sprintf("%s-%012x", chain, h.Sum64()>>16)
}

// Text renders the rule in nft syntax, matches in the order the nftables
// driver programs them.
func (r NFTRule) Text() string {
	var p []string
	if r.DaddrSet != "" {
		p = append(p, "ip daddr @"+r.DaddrSet)
	}
	if r.Source.IsValid() && r.Source.Bits() > 0 {
		p = append(p, "ip saddr "+nftPrefix(r.Source))
	}
	if r.Destination.IsValid() && r.Destination.Bits() > 0 {
		p = append(p, "ip daddr "+nftPrefix(r.Destination))
	}
	if r.InInterface != "" {
		p = append(p, "iifname "+strconv.Quote(nftIfname(r.InInterface)))
	}
	if r.OutInterface != "" {
		p = append(p, "oifname "+strconv.Quote(nftIfname(r.OutInterface)))
	}
	if r.Protocol != "" {
		// nft folds the protocol into a port or icmp match it guards.
		var l4 []string
		switch r.Protocol {
		case "tcp", "udp":
			if !r.SrcPorts.IsZero() {
				l4 = append(l4, r.Protocol+" sport "+r.SrcPorts.nft())
			}
			if !r.DstPorts.IsZero() {
				l4 = append(l4, r.Protocol+" dport "+r.DstPorts.nft())
			}
		case "icmp":
			if r.ICMPType != nil && *r.ICMPType >= 0 {
				l4 = append(l4, "icmp type "+nftName(icmpTypes, *r.ICMPType))
				if r.ICMPCode != nil && *r.ICMPCode >= 0 {
					l4 = append(l4, "icmp code "+nftName(icmpCodes, *r.ICMPCode))
				}
			}
		}
		if len(l4) == 0 {
			l4 = []string{"meta l4proto " + r.Protocol}
		}
		p = append(p, l4...)
	}
	if r.SourceSet != "" {
		p = append(p, "ip saddr @"+r.SourceSet)
	}
	if len(r.State) > 0 {
		p = append(p, "ct state "+nftStates(r.State))
	}
	if len(r.CTState) > 0 {
		key, val := nftCTMatch(r.CTState)
		if r.CTStateNegate {
			p = append(p, key+" ! "+val)
		} else {
			p = append(p, key+" "+val)
		}
	}
	p = append(p, r.Target.nft())
	if r.Comment != "" {
		p = append(p, "comment "+strconv.Quote(r.Comment))
	}
	return strings.Join(p, " ")
}

func nftPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.Masked().String()
}

// nftIfname turns iptables' "eth+" wildcard into nft's "eth*".
func nftIfname(s string) string {
	if b, ok := strings.CutSuffix(s, "+"); ok {
		return b + "*"
	}
	return s
}

func (p PortRange) nft() string {
	if p.To == 0 || p.To == p.From {
		return strconv.Itoa(int(p.From))
	}
	return fmt.Sprintf("%d-%d", p.From, p.To)
}

// nftStates lists conntrack states or status bits as nft does: in bit
// order.
func nftStates(states []string) string {
	out := slices.Clone(states)
	slices.SortStableFunc(out, func(a, b string) int { return ctBit[a] - ctBit[b] })
	for i, s := range out {
		out[i] = strings.ToLower(s)
	}
	return strings.Join(out, ",")
}

var ctBit = map[string]int{"INVALID": 1, "ESTABLISHED": 2, "RELATED": 4, "NEW": 8, "UNTRACKED": 64, "SNAT": 16, "DNAT": 32}

// The names nft prints for icmp types and codes.
var (
	icmpTypes = map[int]string{0: "echo-reply", 3: "destination-unreachable", 4: "source-quench", 5: "redirect",
		8: "echo-request", 9: "router-advertisement", 10: "router-solicitation", 11: "time-exceeded",
		12: "parameter-problem", 13: "timestamp-request", 14: "timestamp-reply", 15: "info-request",
		16: "info-reply", 17: "address-mask-request", 18: "address-mask-reply"}
	icmpCodes = map[int]string{0: "net-unreachable", 1: "host-unreachable", 2: "prot-unreachable", 3: "port-unreachable",
		4: "frag-needed", 9: "net-prohibited", 10: "host-prohibited", 13: "admin-prohibited"}
)

func nftName(names map[int]string, v int) string {
	if n, ok := names[v]; ok {
		return n
	}
	return strconv.Itoa(v)
}

// nftCTMatch: iptables' --ctstate mixes conntrack states with the NAT
// status bits (SNAT, DNAT), which nft matches as ct status.
func nftCTMatch(states []string) (key, val string) {
	if slices.ContainsFunc(states, IsCTStatus) {
		return "ct status", nftStates(states)
	}
	return "ct state", nftStates(states)
}

// IsCTStatus reports whether an iptables --ctstate value is a conntrack
// status bit (SNAT, DNAT) rather than a state.
func IsCTStatus(s string) bool { return s == "SNAT" || s == "DNAT" }

func (t Target) nft() string {
	switch t.Verdict {
	case Goto:
		return "jump " + t.Chain
	case DNAT, SNAT:
		to := t.ToAddr.String()
		if t.ToPort != 0 {
			to += ":" + strconv.Itoa(int(t.ToPort))
		}
		return strings.ToLower(string(t.Verdict)) + " to " + to
	}
	return strings.ToLower(string(t.Verdict))
}

// nftPriorityName prints a priority as nft does: relative to the
// standard priority the hook accepts a name for.
func nftPriorityName(typ, hook string, prio int) string {
	name, base := "filter", 0
	if typ == "nat" {
		switch hook {
		case "prerouting":
			name, base = "dstnat", -100
		case "postrouting":
			name, base = "srcnat", 100
		default:
			return strconv.Itoa(prio)
		}
	}
	switch d := prio - base; {
	case d == 0:
		return name
	case d < 0:
		return fmt.Sprintf("%s - %d", name, -d)
	default:
		return fmt.Sprintf("%s + %d", name, d)
	}
}

// Listing renders the table as `nft list table ip <name>` lays it out
// (rules in nft syntax, numbers where nft would print names).
func (t NFTTable) Listing() []string {
	out := []string{"table ip " + t.Name + " {"}
	for _, s := range t.Sets {
		out = append(out, "\tset "+s.Name+" {", "\t\ttype ipv4_addr")
		if len(s.Elements) > 0 {
			el := make([]string, len(s.Elements))
			for i, a := range s.Elements {
				el[i] = a.String()
			}
			out = append(out, "\t\telements = { "+strings.Join(el, ", ")+" }")
		}
		out = append(out, "\t}")
	}
	for _, c := range t.Chains {
		out = append(out, "\tchain "+c.Name+" {")
		if c.Hook != "" {
			out = append(out, fmt.Sprintf("\t\ttype %s hook %s priority %s; policy accept;", c.Type, c.Hook, nftPriorityName(c.Type, c.Hook, c.Priority)))
		}
		for _, r := range c.Rules {
			out = append(out, "\t\t"+r.Text())
		}
		out = append(out, "\t}")
	}
	return append(out, "}")
}

// NFTInstanceChain is the shared chain (and address set) the nftables
// layout folds an instance chain of these rules into, when the
// instances' jumps in nova-compute-local form one run (every address
// once, as the planner lists them): the incremental path adds or removes
// one element of that set.
func NFTInstanceChain(rules []Rule) string { return foldedName(roleCompute+"-local", rules) }
