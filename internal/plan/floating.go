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
//     address, nova-network-fsnat-<hex> by fixed address), reached by one
//     prefix rule per bucket: the applier rewrites whole chains that
//     differ, so associating one address rewrites a chain of at most 16
//     entries whether the host holds 1 or 1,000 (measured in
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

// floatBucket is the /28 holding a; its chain name is the bucket's base
// address in hex (27 bytes, under iptables' 28).
func floatBucket(prefix string, a netip.Addr) (netip.Prefix, string) {
	b := netip.PrefixFrom(a, floatBucketBits).Masked()
	v := b.Addr().As4()
	return b, fmt.Sprintf("%s%02x%02x%02x%02x", prefix, v[0], v[1], v[2], v[3])
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

	dnat := map[string]*Chain{}
	snat := map[string]*Chain{}
	var dnatOrder, snatOrder []string
	var dnatBuckets, snatBuckets []netip.Prefix
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
		iface := f.Interface
		if iface == "" {
			iface = o.PublicInterface
		}
		if iface == "" {
			p.Warnings = append(p.Warnings, fmt.Sprintf("floating ip %s is left out: its range names no interface and public_interface is not set; set public_interface in this host's configuration", f.Address))
			continue
		}
		fa := FloatingAddr{InterfaceAddr: InterfaceAddr{Interface: iface, Address: hostPrefix(f.Address)}, Fixed: f.FixedAddress}
		for _, hn := range nets {
			for _, in := range hn.Instances {
				if in.Address == f.FixedAddress && hn.Network.CIDR.Contains(in.Address) {
					fa.Port = in.Device
				}
			}
		}
		p.FloatingAddrs = append(p.FloatingAddrs, fa)

		block, name := floatBucket(floatDNATPrefix, f.Address)
		c := dnat[name]
		if c == nil {
			c = &Chain{Name: name}
			dnat[name] = c
			dnatOrder = append(dnatOrder, name)
			dnatBuckets = append(dnatBuckets, block)
		}
		c.Rules = append(c.Rules, Rule{Destination: hostPrefix(f.Address), Target: Target{Verdict: DNAT, ToAddr: f.FixedAddress}})

		block, name = floatBucket(floatSNATPrefix, f.FixedAddress)
		c = snat[name]
		if c == nil {
			c = &Chain{Name: name}
			snat[name] = c
			snatOrder = append(snatOrder, name)
			snatBuckets = append(snatBuckets, block)
		}
		fixed := hostPrefix(f.FixedAddress)
		to := Target{Verdict: SNAT, ToAddr: f.Address}
		c.Rules = append(c.Rules,
			Rule{Source: fixed, Destination: fixed, Target: to},
			Rule{Source: fixed, OutInterface: iface, Target: to})

		for i, hn := range nets {
			if hn.NAT && hn.BridgeAddress.IsValid() && hn.Network.CIDR.Contains(f.FixedAddress) {
				hairpin[i] = true
			}
		}
	}

	// Bucket chains are appended to the table last: pre, out and fsnat
	// point into nat.Chains.
	var buckets []Chain
	for i, name := range dnatOrder {
		j := Rule{Destination: dnatBuckets[i], Target: jumpTo(name)}
		pre.Rules = append(pre.Rules, j)
		out.Rules = append(out.Rules, j)
		buckets = append(buckets, *dnat[name])
	}
	// SNAT buckets are keyed by fixed address, which need not sort with
	// the floating addresses: order them by bucket for a stable plan.
	idx := make([]int, len(snatOrder))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return snatBuckets[a].Addr().Compare(snatBuckets[b].Addr()) })
	for _, i := range idx {
		name := snatOrder[i]
		fsnat.Rules = append(fsnat.Rules, Rule{Source: snatBuckets[i], Target: jumpTo(name)})
		buckets = append(buckets, *snat[name])
	}
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
