package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// L2Guard is the anti-spoofing of instance ports, what libvirt's
// clean-traffic filter gave nova, with the gaps later found in peers
// closed. A frame that enters a bridge from a guarded port must carry the
// port's MAC; IPv4 must carry its fixed address (0.0.0.0 only for a DHCP
// discover or request); ARP must announce its own MAC and address (sender
// MAC and sender IP both checked; 0.0.0.0 for an RFC 5227 probe); DHCP
// server replies and IPv6 router advertisements from an instance are
// dropped; and every ethertype but IPv4, ARP and IPv6 is dropped, so a
// VLAN tag (802.1Q, QinQ) cannot carry a frame past the checks.
//
// It is programmed in novanet's own nftables bridge-family table, in a
// base chain that only drops: a verdict map keyed by the input port jumps
// to that port's chain of drops with its constants, so what a frame pays
// does not grow with the number of ports.
type L2Guard struct {
	Ports []GuardPort `json:"ports"`
}

// GuardPort is one guarded instance port.
type GuardPort struct {
	Device string     `json:"device"`
	MAC    [6]byte    `json:"mac"`
	IPv4   netip.Addr `json:"ipv4"`
}

// IsZero reports whether no port is guarded.
func (g L2Guard) IsZero() bool { return len(g.Ports) == 0 }

// planL2Guard guards every local instance tap.
func planL2Guard(bridges []Bridge) (L2Guard, []string) {
	var g L2Guard
	var warn []string
	for _, b := range bridges {
		for _, pt := range b.Ports {
			mac, ok := parseMAC(pt.MAC)
			if !ok || !pt.Address.Is4() {
				warn = append(warn, fmt.Sprintf("port %s (%s, %s) cannot be guarded: it needs a MAC and an IPv4 address", pt.Device, pt.MAC, pt.Address))
				continue
			}
			g.Ports = append(g.Ports, GuardPort{Device: pt.Device, MAC: mac, IPv4: pt.Address})
		}
	}
	slices.SortFunc(g.Ports, func(a, b GuardPort) int { return strings.Compare(a.Device, b.Device) })
	return g, warn
}

func parseMAC(s string) ([6]byte, bool) {
	var m [6]byte
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return m, false
	}
	for i, p := range parts {
		var v byte
		if len(p) != 2 {
			return m, false
		}
		for _, c := range []byte(strings.ToLower(p)) {
			switch {
			case c >= '0' && c <= '9':
				v = v<<4 | (c - '0')
			case c >= 'a' && c <= 'f':
				v = v<<4 | (c - 'a' + 10)
			default:
				return m, false
			}
		}
		m[i] = v
	}
	return m, true
}

// MACString is the port's MAC as nft prints it.
func (p GuardPort) MACString() string {
	m := p.MAC
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// GuardTable, GuardBaseChain and GuardPortMap name what novanet owns in
// the bridge family.
const (
	GuardTable     = "novanet"
	GuardBaseChain = "guard"
	GuardPortMap   = "guarded_ports"
)

// GuardChainName is a port's chain. It carries the port's MAC and address,
// so the applier can tell from a chain listing alone whether a port's
// rules are current.
func (p GuardPort) GuardChainName() string {
	a := p.IPv4.As4()
	return fmt.Sprintf("port-%s-%x-%x", p.Device, p.MAC, a)
}

// GuardRules are a port's drops in nft syntax, in order: the rule model
// the applier programs, and what `nft list chain` prints back.
func (p GuardPort) GuardRules() []string {
	mac, ip := p.MACString(), p.IPv4.String()
	return []string{
		"ether saddr != " + mac + " drop",
		"ether type != { ip, arp, ip6 } drop",
		"ether type ip ip saddr != { 0.0.0.0, " + ip + " } drop",
		"ether type ip ip saddr 0.0.0.0 meta l4proto != udp drop",
		"ether type ip ip saddr 0.0.0.0 udp sport != 68 drop",
		"ether type ip ip saddr 0.0.0.0 udp dport != 67 drop",
		"ether type ip udp sport 67 drop",
		"ether type arp arp htype != 1 drop",
		"ether type arp arp ptype != ip drop",
		"ether type arp arp hlen != 6 drop",
		"ether type arp arp plen != 4 drop",
		"ether type arp arp saddr ether != " + mac + " drop",
		"ether type arp arp saddr ip != { 0.0.0.0, " + ip + " } drop",
		"ether type ip6 icmpv6 type nd-router-advert drop",
		"ether type ip6 udp sport 547 drop",
	}
}

// Listing renders the guard as `nft list table bridge novanet` would
// show its parts (golden files, docs).
func (g L2Guard) Listing() []string {
	out := []string{
		"table bridge " + GuardTable,
		"map " + GuardPortMap + " { type ifname : verdict }",
		"chain " + GuardBaseChain + " { type filter hook prerouting priority -300; policy accept; }",
		"  iifname vmap @" + GuardPortMap,
	}
	for _, p := range g.Ports {
		out = append(out, "element "+GuardPortMap+" { \""+p.Device+"\" : jump "+p.GuardChainName()+" }")
	}
	for _, p := range g.Ports {
		out = append(out, "chain "+p.GuardChainName())
		for _, r := range p.GuardRules() {
			out = append(out, "  "+r)
		}
	}
	return out
}
