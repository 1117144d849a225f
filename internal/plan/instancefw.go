package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"novanet/internal/model"
)

// The instance firewall, in nova's IptablesFirewallDriver layout: on a
// compute host nova-compute-local sends traffic for each local fixed
// address to that instance's chain, which drops INVALID, accepts
// RELATED,ESTABLISHED, passes through nova-compute-provider, accepts DHCP
// replies from the network's server, accepts the fixed range when
// allow_same_net_traffic is true, accepts what the instance's security
// groups allow and sends the rest to nova-compute-sg-fallback (DROP).
//
// A rule whose source is a security group matches one address set of the
// group's members instead of one rule per member (nova's way), so a group
// of N members costs one rule per instance and a membership change is a
// set element, not a chain rewrite.

const (
	instChainPrefix = roleCompute + "-inst-"
	providerChain   = roleCompute + "-provider"
	fallbackChain   = roleCompute + "-sg-fallback"
	// SetPrefix starts the name of every address set novanet owns.
	SetPrefix = "nova-sg-"
)

// AddrSet is a set of IPv4 addresses rules match as a source (an ipset
// of type hash:ip, or an nftables named set).
type AddrSet struct {
	Name    string       `json:"name"`
	Members []netip.Addr `json:"members"`
}

// InstanceChainName is the chain of one instance interface.
func InstanceChainName(vifID int64) string {
	return instChainPrefix + strconv.FormatInt(vifID, 10)
}

// GroupSetName is the address set of a security group's members.
func GroupSetName(groupID int64) string { return SetPrefix + strconv.FormatInt(groupID, 10) }

// instanceFirewall is what the compute role adds to the filter table.
type instanceFirewall struct {
	local  []Rule  // nova-compute-local: -d <fixed ip> -j <instance chain>
	chains []Chain // instance chains, provider, sg-fallback
	sets   []AddrSet
	warn   []string
}

// planInstanceFirewall plans the chains of every local instance interface
// and the sets their group rules name.
func planInstanceFirewall(nets []model.HostNetwork, groups []model.HostSecurityGroup, co model.ClusterOptions) instanceFirewall {
	var out instanceFirewall
	byID := make(map[int64]*model.HostSecurityGroup, len(groups))
	for i := range groups {
		byID[groups[i].ID] = &groups[i]
	}
	usedSets := map[int64]bool{}
	seenChain := map[string]bool{}
	total := 0
	for _, hn := range nets {
		total += len(hn.Instances)
	}
	out.local = make([]Rule, 0, total)
	out.chains = make([]Chain, 0, total+2)
	// Each group's rules are rendered once, not once per member.
	rendered := map[int64][]groupRendered{}
	shapes := map[chainShape][]Rule{}
	for _, hn := range nets {
		for _, in := range hn.Instances {
			if in.VIFID <= 0 {
				out.warn = append(out.warn, noVIFWarning(in))
				continue
			}
			name := InstanceChainName(in.VIFID)
			if seenChain[name] {
				continue
			}
			seenChain[name] = true
			out.local = append(out.local, Rule{Destination: hostPrefix(in.Address), Target: jumpTo(name)})
			for _, gid := range in.SecurityGroups {
				if byID[gid] == nil {
					out.warn = append(out.warn, fmt.Sprintf("instance %s is in security group %d, which the host state does not carry; its rules are not applied", in.UUID, gid))
				}
			}
			// Instances of one network in the same groups have the same
			// rules: they share one slice (read only), so a host of 5,000
			// like instances plans a few rules, not 35,000 copies.
			key := chainShape{network: hn.Network.ID, groups: groupsKey(in.SecurityGroups)}
			rules, ok := shapes[key]
			if !ok {
				rules = chainRules(hn, in.SecurityGroups, co, byID, rendered, usedSets, &out.warn)
				shapes[key] = rules
			}
			out.chains = append(out.chains, Chain{Name: name, Rules: rules})
		}
	}
	if len(out.local) == 0 {
		return out
	}
	out.chains = append(out.chains,
		Chain{Name: providerChain, Rules: []Rule{}},
		Chain{Name: fallbackChain, Rules: []Rule{{Target: Target{Verdict: Drop}}}})
	ids := make([]int64, 0, len(usedSets))
	for id := range usedSets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s := AddrSet{Name: GroupSetName(id), Members: []netip.Addr{}}
		if g := byID[id]; g != nil {
			for _, m := range g.Members {
				if m.Is4() {
					s.Members = append(s.Members, m)
				}
			}
			slices.SortFunc(s.Members, netip.Addr.Compare)
			s.Members = slices.Compact(s.Members)
		}
		out.sets = append(out.sets, s)
	}
	return out
}

type chainShape struct {
	network int64
	groups  string
}

func groupsKey(ids []int64) string {
	b := make([]byte, 0, 8*len(ids))
	for _, id := range ids {
		b = strconv.AppendInt(b, id, 10)
		b = append(b, ',')
	}
	return string(b)
}

// chainRules are the rules of an instance chain in network hn for an
// instance in groups, in nova's order.
func chainRules(hn model.HostNetwork, groups []int64, co model.ClusterOptions, byID map[int64]*model.HostSecurityGroup,
	rendered map[int64][]groupRendered, usedSets map[int64]bool, warn *[]string) []Rule {
	rules := make([]Rule, 0, 7+len(groups)*4)
	rules = append(rules,
		Rule{State: stateInvalid, Target: Target{Verdict: Drop}},
		Rule{State: stateEstablished, Target: accept()},
		Rule{Target: jumpTo(providerChain)})
	if hn.DHCPServer.IsValid() {
		rules = append(rules, Rule{Source: hostPrefix(hn.DHCPServer), Protocol: "udp",
			SrcPorts: PortRange{From: 67}, DstPorts: PortRange{From: 68}, Target: accept()})
	}
	if co.AllowSameNetTraffic {
		rules = append(rules, Rule{Source: hn.Network.CIDR.Masked(), Target: accept()})
	}
	seenRule := map[ruleKey]bool{}
	for _, gid := range groups {
		g := byID[gid]
		if g == nil {
			continue
		}
		grs, ok := rendered[gid]
		if !ok {
			for _, sr := range g.Rules {
				r, ok := groupRule(sr)
				if !ok {
					*warn = append(*warn, fmt.Sprintf("security group %d rule %d (%s %d..%d) cannot be rendered; skipped", g.ID, sr.ID, sr.Protocol, sr.FromPort, sr.ToPort))
					continue
				}
				if sr.SourceGroupID != 0 {
					usedSets[sr.SourceGroupID] = true
				}
				grs = append(grs, groupRendered{keyOf(sr), r})
			}
			rendered[gid] = grs
		}
		for _, gr := range grs {
			// Two groups with the same rule give one rule.
			if !seenRule[gr.key] {
				seenRule[gr.key] = true
				rules = append(rules, gr.rule)
			}
		}
	}
	return slices.Clip(append(rules, Rule{Target: jumpTo(fallbackChain)}))
}

// groupRule renders one security group rule as an accept. nova's
// conventions: for icmp, from_port is the type and to_port the code (-1:
// any); a rule with neither cidr nor source group admits 0.0.0.0/0.
func groupRule(sr model.SecurityGroupRule) (Rule, bool) {
	r := Rule{Protocol: sr.Protocol, Target: accept()}
	switch sr.Protocol {
	case "":
	case "tcp", "udp":
		// The store holds checked rules; one that is not is skipped.
		if model.CheckPortRange(sr.Protocol, sr.FromPort, sr.ToPort) != nil {
			return r, false
		}
		r.DstPorts = PortRange{From: uint16(sr.FromPort)}
		if sr.ToPort != sr.FromPort {
			r.DstPorts.To = uint16(sr.ToPort)
		}
	case "icmp":
		if sr.FromPort >= 0 {
			t := sr.FromPort
			r.ICMPType = &t
			if sr.ToPort >= 0 {
				c := sr.ToPort
				r.ICMPCode = &c
			}
		}
	default:
		return r, false
	}
	switch {
	case sr.SourceGroupID != 0:
		r.SourceSet = GroupSetName(sr.SourceGroupID)
	case sr.CIDR.IsValid() && sr.CIDR.Bits() > 0:
		r.Source = sr.CIDR.Masked()
	}
	return r, true
}

// The conntrack states of every instance chain, shared (read only).
var (
	stateInvalid     = []string{"INVALID"}
	stateEstablished = []string{"RELATED", "ESTABLISHED"}
)

type groupRendered struct {
	key  ruleKey
	rule Rule
}

// ruleKey is what makes two group rules the same rule in a chain.
type ruleKey struct {
	proto    string
	from, to int
	cidr     netip.Prefix
	source   int64
}

func keyOf(sr model.SecurityGroupRule) ruleKey {
	k := ruleKey{proto: sr.Protocol, from: sr.FromPort, to: sr.ToPort, source: sr.SourceGroupID}
	if sr.SourceGroupID == 0 && sr.CIDR.IsValid() && sr.CIDR.Bits() > 0 {
		k.cidr = sr.CIDR.Masked()
	}
	return k
}

// addInstanceFirewall fills the compute role's chains of p's filter table
// (planned by planFirewall) with the instance firewall.
func addInstanceFirewall(p *Plan, nets []model.HostNetwork, groups []model.HostSecurityGroup, co model.ClusterOptions) {
	filter := p.Firewall.Table("filter")
	if filter == nil {
		return
	}
	local := filter.Chain(roleCompute + "-local")
	if local == nil {
		return
	}
	ifw := planInstanceFirewall(nets, groups, co)
	p.Warnings = append(p.Warnings, ifw.warn...)
	if len(ifw.local) > 0 {
		// A revoked flow's conntrack entry is deleted; with loose pickup
		// (the default) the instance's next mid-stream segment would track
		// the flow anew from its side, and the peer's packets would pass
		// as ESTABLISHED. Without it they are INVALID and dropped.
		p.Sysctls = append(p.Sysctls, Sysctl{Key: "net.netfilter.nf_conntrack_tcp_loose", Value: "0"})
	}
	local.Rules = append(local.Rules, ifw.local...)
	filter.Chains = append(filter.Chains, ifw.chains...)
	p.Firewall.Sets = ifw.sets
	guard, warn := planL2Guard(p.Bridges)
	p.Firewall.Guard = guard
	p.Warnings = append(p.Warnings, warn...)
}

// IpsetType is the ipset type of every AddrSet.
const IpsetType = "hash:ip"

// IpsetLines renders the set as `ipset save` prints it (and `ipset
// restore` reads it): the create line, then one add line per member.
func (s AddrSet) IpsetLines() []string {
	out := make([]string, 0, len(s.Members)+1)
	out = append(out, "create "+s.Name+" "+IpsetType+" family inet")
	for _, m := range s.Members {
		out = append(out, "add "+s.Name+" "+m.String())
	}
	return out
}

// noVIFWarning is the warning of an instance the server sent without
// its interface id (an older server).
func noVIFWarning(in model.HostInstance) string {
	return fmt.Sprintf("instance %s (%s) has no interface id in the host state; its firewall chain cannot be named: upgrade the server", in.UUID, in.Address)
}

func isNoVIFWarning(w string) bool {
	return strings.HasPrefix(w, "instance ") && strings.HasSuffix(w, " has no interface id in the host state; its firewall chain cannot be named: upgrade the server")
}
