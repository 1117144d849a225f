package plan

import (
	"fmt"
	"net/netip"
	"slices"

	"novanet/internal/model"
)

// Floating IPs, as nova's linux_net.floating_forward_rules laid them out,
// with two changes that keep one association's cost flat:
//
//   - nova-network-PREROUTING and nova-network-OUTPUT DNAT floating ->
//     fixed (OUTPUT so the NAT host itself reaches the instance), and
//     nova-network-float-snat SNATs fixed -> floating, ahead of the
//     fixed_range SNAT in nova-network-snat. The per-address rules live in
//     bucket chains of one /28 each (nova-network-fdnat-<hex> by floating
//     address, nova-network-fsnat-<hex> by fixed address), reached through
//     one chain per /24 (bucketChains): the applier rewrites whole chains
//     that differ, so associating one address rewrites chains of at most
//     16 jumps or entries whether the host holds 1 or 1,000 (measured in
//     docs/BENCHMARKS.md; one flat chain cost 110 ms at 1,000).
//   - Hairpin. An instance reaching its own floating address is SNATed to
//     it (nova's -s fixed -d fixed rule). Another instance of the same
//     network reaching it is SNATed to this host's bridge address: the
//     DNATed packet goes back out on the bridge, and without the SNAT the
//     instance would answer the sender directly over L2 from its fixed
//     address, which the sender never asked (nova SNATed this to
//     routing_source_ip only because its fixed_range SNAT had no -o).
//     With br_netfilter that direct reply is un-NATed only when both
//     instances sit on the NAT host itself, so the SNAT is what makes it
//     work from any compute in single-host mode.
//
// dmz_cidr stays un-NATed: nova-network-POSTROUTING ACCEPTs it before the
// snat chains are reached.
const (
	floatDNATPrefix = roleNetwork + "-fdnat-"
	floatSNATPrefix = roleNetwork + "-fsnat-"
	floatBucketBits = 28
)

// brNetfilter is the value of net.bridge.bridge-nf-call-iptables: on
// where instances are bridged (their firewall and anti-spoofing act on
// bridged frames), off on a host whose bridges carry no instance (a
// single-host network host). There, with it on, a frame from a VM to a
// floating address would be DNATed in the bridge's own PREROUTING pass,
// and br_netfilter, seeing the new destination behind the same bridge,
// would bridge it back out the uplink it came in on, which a bridge never
// does: hairpin traffic to floating addresses would vanish. Off, the frame
// is routed and NATed like any other.
func brNetfilter(nets []model.HostNetwork) string {
	if hasRole(nets, hasInstances) {
		return "1"
	}
	return "0"
}

// bucketChains spreads per-association rules over chains of one /28
// each, reached from chains of one /24 each, reached from the rules it
// returns for the top chain: a chain holds at most 16 jumps or 16
// associations, so adding one association rewrites about 16-50 rules
// whatever the host holds. keys are sorted; association i owns
// rules[i*per:(i+1)*per], and a /28 chain's rules are a slice of rules,
// not a copy (this runs on every sync). Names are prefix + the block's
// base address in hex ("-fdnat-c63364" for 198.51.100.0/24,
// "-fdnat-c6336410" for 198.51.100.16/28: at most 27 bytes, iptables
// allows 28).
func bucketChains(prefix string, keys []netip.Addr, rules []Rule, per int, dispatch func(block netip.Prefix, chain string) Rule) (top []Rule, chains []Chain) {
	var l1 *Chain
	var b24, b28 netip.Prefix
	first := 0
	closeL2 := func(end int) {
		if end > first {
			chains[len(chains)-1].Rules = rules[first*per : end*per : end*per]
		}
	}
	for i, k := range keys {
		if p := netip.PrefixFrom(k, 24).Masked(); l1 == nil || p != b24 {
			closeL2(i)
			if l1 != nil {
				chains = append(chains, *l1)
			}
			b24 = p
			v := p.Addr().As4()
			l1 = &Chain{Name: fmt.Sprintf("%s%02x%02x%02x", prefix, v[0], v[1], v[2]), Rules: make([]Rule, 0, 16)}
			top = append(top, dispatch(p, l1.Name))
			b28 = netip.Prefix{}
		}
		if p := netip.PrefixFrom(k, floatBucketBits).Masked(); p != b28 {
			closeL2(i)
			b28, first = p, i
			v := p.Addr().As4()
			name := fmt.Sprintf("%s%02x%02x%02x%02x", prefix, v[0], v[1], v[2], v[3])
			chains = append(chains, Chain{Name: name})
			l1.Rules = append(l1.Rules, dispatch(p, name))
		}
	}
	closeL2(len(keys))
	if l1 != nil {
		chains = append(chains, *l1)
	}
	return top, chains
}

// planFloating adds the host's floating associations to the plan: the /32
// addresses to hold and the nat rules. It needs the nova-network nat
// chains, which a host gets by NATing a network; an association on a host
// that NATs nothing, or one that cannot be planned, is left out with a
// warning so the rest of the host still converges.
func planFloating(p *Plan, floats []model.HostFloatingIP, nets []model.HostNetwork, o Options) {
	p.FloatingAddrs = []FloatingAddr{}
	if len(floats) == 0 {
		return
	}
	fl := slices.Clone(floats)
	slices.SortFunc(fl, func(a, b model.HostFloatingIP) int { return a.Address.Compare(b.Address) })
	nat := p.Firewall.Table("nat")
	var pre, out, fsnat *Chain
	if nat != nil {
		pre, out = nat.Chain(roleNetwork+"-PREROUTING"), nat.Chain(roleNetwork+"-OUTPUT")
		fsnat = nat.Chain(roleNetwork + "-float-snat")
	}
	if pre == nil || out == nil || fsnat == nil {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d floating ips are associated on this host but it NATs no network; they are left out", len(fl)))
		return
	}

	kept := make([]model.HostFloatingIP, 0, len(fl))
	hairpin := map[int]bool{} // index into nets
	seen := map[netip.Addr]bool{}
	for _, f := range fl {
		if !f.Address.Is4() || !f.FixedAddress.Is4() {
			p.Warnings = append(p.Warnings, fmt.Sprintf("floating ip %s -> %s is left out: both must be IPv4 addresses", f.Address, f.FixedAddress))
			continue
		}
		if seen[f.Address] {
			p.Warnings = append(p.Warnings, fmt.Sprintf("floating ip %s is listed twice; only its first association (%s) is planned", f.Address, f.FixedAddress))
			continue
		}
		seen[f.Address] = true
		if f.Interface == "" {
			f.Interface = o.PublicInterface
		}
		if f.Interface == "" {
			p.Warnings = append(p.Warnings, fmt.Sprintf("floating ip %s is left out: its range names no interface and public_interface is not set; set public_interface in this host's configuration", f.Address))
			continue
		}
		kept = append(kept, f)
		fa := FloatingAddr{InterfaceAddr: InterfaceAddr{Interface: f.Interface, Address: hostPrefix(f.Address)}, Fixed: f.FixedAddress}
		for _, hn := range nets {
			for _, in := range hn.Instances {
				if in.Address == f.FixedAddress && hn.Network.CIDR.Contains(in.Address) {
					fa.Port = in.Device
				}
			}
		}
		p.FloatingAddrs = append(p.FloatingAddrs, fa)

		for i, hn := range nets {
			if hn.NAT && hn.BridgeAddress.IsValid() && hn.Network.CIDR.Contains(f.FixedAddress) {
				hairpin[i] = true
			}
		}
	}

	keys := make([]netip.Addr, len(kept))
	dnat := make([]Rule, len(kept))
	for i, f := range kept {
		keys[i] = f.Address
		dnat[i] = Rule{Destination: hostPrefix(f.Address), Target: Target{Verdict: DNAT, ToAddr: f.FixedAddress}}
	}
	top, dchains := bucketChains(floatDNATPrefix, keys, dnat, 1, func(b netip.Prefix, c string) Rule { return Rule{Destination: b, Target: jumpTo(c)} })
	pre.Rules = append(pre.Rules, top...)
	out.Rules = append(out.Rules, top...)
	// SNAT buckets are keyed by fixed address, which need not sort with
	// the floating addresses (kept as the tie break, for a stable plan).
	slices.SortStableFunc(kept, func(a, b model.HostFloatingIP) int { return a.FixedAddress.Compare(b.FixedAddress) })
	snat := make([]Rule, 0, 2*len(kept))
	for i, f := range kept {
		keys[i] = f.FixedAddress
		fixed := hostPrefix(f.FixedAddress)
		to := Target{Verdict: SNAT, ToAddr: f.Address}
		snat = append(snat, Rule{Source: fixed, Destination: fixed, Target: to}, Rule{Source: fixed, OutInterface: f.Interface, Target: to})
	}
	top, schains := bucketChains(floatSNATPrefix, keys, snat, 2, func(b netip.Prefix, c string) Rule { return Rule{Source: b, Target: jumpTo(c)} })
	fsnat.Rules = append(fsnat.Rules, top...)
	// Bucket chains join the table last: pre, out and fsnat point into
	// nat.Chains.
	buckets := append(dchains, schains...)
	done := map[netip.Prefix]bool{}
	for i, hn := range nets {
		cidr := hn.Network.CIDR
		if !hairpin[i] || done[cidr] {
			continue
		}
		done[cidr] = true
		fsnat.Rules = append(fsnat.Rules, Rule{Source: cidr, Destination: cidr, CTState: []string{"DNAT"},
			Target: Target{Verdict: SNAT, ToAddr: hn.BridgeAddress}})
	}
	nat.Chains = append(nat.Chains, buckets...)
}
