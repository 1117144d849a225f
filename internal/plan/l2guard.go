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
// base chain that only drops, with per-port facts in sets keyed by the
// input port (ifname, ifname . MAC, ifname . address), so what a frame
// pays and what a new port costs do not grow with the number of ports.
// (Per-port chains behind a verdict map were tried first: every commit
// then re-validated all chains the map can jump to, 166 ms per new port
// at 5,000.)
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

// Names of what novanet owns in the bridge family.
const (
	GuardTable     = "novanet"
	GuardBaseChain = "guard"
	// GuardPortSet holds the guarded ports; GuardMACSet and GuardIPv4Set
	// pair each with its MAC and its address.
	GuardPortSet = "guarded_ports"
	GuardMACSet  = "port_macs"
	GuardIPv4Set = "port_ipv4"
	// GuardEthertypes are the ethertypes a guarded port may send.
	GuardEthertypes = "allowed_ethertypes"
)

// GuardRules are the base chain's rules in nft syntax, in order: the
// rule model the applier programs. Every rule starts with "iifname
// @guarded_ports" and ends with drop; per-port facts live only in the
// sets, so a port costs three set elements and a frame a few hash
// lookups, however many ports there are.
func GuardRules() []string {
	rules := []string{
		"iifname . ether saddr != @" + GuardMACSet,
		"ether type != @" + GuardEthertypes,
		"ether type ip ip saddr != 0.0.0.0 iifname . ip saddr != @" + GuardIPv4Set,
		"ether type ip ip saddr 0.0.0.0 meta l4proto != udp",
		"ether type ip ip saddr 0.0.0.0 udp sport != 68",
		"ether type ip ip saddr 0.0.0.0 udp dport != 67",
		"ether type ip udp sport 67",
		"ether type arp arp htype != 1",
		"ether type arp arp ptype != ip",
		"ether type arp arp hlen != 6",
		"ether type arp arp plen != 4",
		"ether type arp iifname . arp saddr ether != @" + GuardMACSet,
		"ether type arp arp saddr ip != 0.0.0.0 iifname . arp saddr ip != @" + GuardIPv4Set,
		"ether type ip6 icmpv6 type nd-router-advert",
		"ether type ip6 udp sport 547",
	}
	for i, r := range rules {
		rules[i] = "iifname @" + GuardPortSet + " " + r + " drop"
	}
	return rules
}

// Listing renders the guard as the parts of `nft list table bridge
// novanet` (golden files, docs).
func (g L2Guard) Listing() []string {
	out := []string{
		"table bridge " + GuardTable,
		"set " + GuardEthertypes + " { type ether_type; elements = { ip, arp, ip6 } }",
		"set " + GuardPortSet + " { type ifname }",
		"set " + GuardMACSet + " { type ifname . ether_addr }",
		"set " + GuardIPv4Set + " { type ifname . ipv4_addr }",
		"chain " + GuardBaseChain + " { type filter hook prerouting priority -300; policy accept; }",
	}
	for _, r := range GuardRules() {
		out = append(out, "  "+r)
	}
	for _, p := range g.Ports {
		out = append(out,
			"element "+GuardPortSet+" { \""+p.Device+"\" }",
			"element "+GuardMACSet+" { \""+p.Device+"\" . "+p.MACString()+" }",
			"element "+GuardIPv4Set+" { \""+p.Device+"\" . "+p.IPv4.String()+" }")
	}
	return out
}
