package model

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
)

// Check judges a boot request by itself, before anything is read.
func (r BootRequest) Check() error {
	if r.UUID != "" && !looksLikeUUID(r.UUID) {
		return invalidf("uuid %q is not a UUID: give one such as 9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d, or leave it empty to have one generated", r.UUID)
	}
	if err := CheckDNSLabel("hostname", r.Hostname); err != nil {
		return err
	}
	if err := CheckHostName("host", r.Host); err != nil {
		return err
	}
	if r.FixedAddress.IsValid() && !r.FixedAddress.Is4() {
		return invalidf("fixed_address %s is not IPv4: give an address of the network, or leave it empty", r.FixedAddress)
	}
	for _, f := range []struct {
		field, v string
		max      int
	}{{"project_id", r.ProjectID, MaxNameBytes}, {"network", r.Network, MaxNameBytes}, {"key_name", r.KeyName, MaxNameBytes}} {
		if err := CheckName(f.field, f.v, f.max); err != nil {
			return err
		}
	}
	if err := CheckText("user_data", r.UserData, MaxUserDataBytes); err != nil {
		return err
	}
	if err := CheckText("key_data", r.KeyData, MaxKeyDataBytes); err != nil {
		return err
	}
	if len(r.SecurityGroups) > MaxSecurityGroupsPerInstance {
		return invalidf("security_groups names %d groups: an instance may be in at most %d", len(r.SecurityGroups), MaxSecurityGroupsPerInstance)
	}
	for i, g := range r.SecurityGroups {
		if err := CheckGroupName(fmt.Sprintf("security_groups[%d]", i), g); err != nil {
			return err
		}
	}
	return nil
}

// MaxSecurityGroupsPerInstance bounds the groups one boot names; a
// project cannot have more than its security_groups quota anyway.
const MaxSecurityGroupsPerInstance = 32

// CheckGroupName checks a security group (or floating pool) name.
func CheckGroupName(field, name string) error {
	if strings.TrimSpace(name) == "" {
		return invalidf("%s is empty: name the security group (e.g. web)", field)
	}
	return CheckName(field, name, MaxNameBytes)
}

// CheckGroupDescription checks a security group description.
func CheckGroupDescription(field, d string) error {
	return CheckText(field, d, MaxNameBytes)
}

// Check judges a network create request by itself: every count and size
// is bounded before any subnet is carved, and every name and address is
// well formed. The manager then fits the subnets into the range and
// checks them against the store.
func (r NetworkCreateRequest) Check() (netip.Prefix, error) {
	if r.Kind != "" && !r.Kind.Valid() {
		return netip.Prefix{}, invalidf("unknown network kind %q: use flat, flatdhcp or vlan", r.Kind)
	}
	rng, err := ParseRange("fixed_range_v4", r.FixedRangeV4, 8)
	if err != nil {
		return rng, err
	}
	if err := CheckUsablePrefix("fixed_range_v4", rng); err != nil {
		return rng, err
	}
	if r.NumNetworks < 0 || r.NetworkSize < 0 || r.MTU < 0 || r.VLAN < 0 {
		return rng, invalidf("num_networks %d, network_size %d, mtu %d and vlan %d: none may be negative", r.NumNetworks, r.NetworkSize, r.MTU, r.VLAN)
	}
	if r.NumNetworks > MaxNetworksPerRequest {
		return rng, invalidf("num_networks %d is more than %d: create the networks in several requests", r.NumNetworks, MaxNetworksPerRequest)
	}
	if r.NetworkSize != 0 {
		if bits.OnesCount(uint(r.NetworkSize)) != 1 {
			return rng, invalidf("network_size %d is not a power of two: use e.g. 256 for /24 subnets", r.NetworkSize)
		}
		if r.NetworkSize > MaxNetworkSize {
			return rng, invalidf("network_size %d is too large: a network holds at most %d addresses (/16)", r.NetworkSize, MaxNetworkSize)
		}
		if n := max(r.NumNetworks, 1); n*r.NetworkSize > MaxAddressesPerRequest {
			return rng, invalidf("num_networks %d * network_size %d is %d addresses: one request creates at most %d; use fewer or smaller networks per request", n, r.NetworkSize, n*r.NetworkSize, MaxAddressesPerRequest)
		}
	}
	if r.VLAN > MaxVLAN {
		return rng, invalidf("vlan %d is outside %d..%d: give a vlan id in that range", r.VLAN, MinVLAN, MaxVLAN)
	}
	if r.MTU != 0 {
		if err := CheckMTU("mtu", r.MTU); err != nil {
			return rng, err
		}
	}
	if r.Bridge != "" {
		if err := CheckIfName("bridge", r.Bridge); err != nil {
			return rng, err
		}
	}
	if r.BridgeInterface != "" {
		if err := CheckIfName("bridge_interface", r.BridgeInterface); err != nil {
			return rng, err
		}
	}
	for _, a := range []struct{ field, v string }{{"dns1", r.DNS1}, {"dns2", r.DNS2}, {"gateway", r.Gateway}, {"dhcp_start", r.DHCPStart}} {
		if _, err := ParseOptAddr4(a.field, a.v); err != nil {
			return rng, err
		}
	}
	if h := strings.TrimSpace(r.Host); h != "" {
		if err := CheckHostName("host", h); err != nil {
			return rng, err
		}
	}
	if err := CheckName("project_id", r.ProjectID, MaxNameBytes); err != nil {
		return rng, err
	}
	return rng, CheckLabel("label", r.Label)
}

// ParseCIDR4 parses an IPv4 CIDR; host bits and size are the caller's
// to judge (a range refuses host bits, a rule says what it meant).
func ParseCIDR4(field, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, invalidf("%s %q is not a CIDR (not an IPv4 CIDR such as 10.0.0.0/24): give an IPv4 address, '/' and a prefix length of 0-32", field, s)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, invalidf("%s %s is not IPv4: give an IPv4 CIDR such as 10.0.0.0/24 (novanet networks are IPv4)", field, p)
	}
	return p, nil
}

// ParseRange parses an IPv4 CIDR with no host bits set and no larger
// than a /minBits.
func ParseRange(field, s string, minBits int) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, invalidf("%s is required: give an IPv4 CIDR such as 10.0.0.0/24", field)
	}
	p, err := ParseCIDR4(field, s)
	if err != nil {
		return p, err
	}
	if p.Masked() != p {
		return p, invalidf("%s %s has host bits set: use %s", field, p, p.Masked())
	}
	if p.Bits() < minBits {
		return p, invalidf("%s %s is larger than a /%d: use a smaller range", field, p, minBits)
	}
	return p, nil
}

// ParseFloatingRange returns the first and last address of a floating
// range given as a CIDR (every host address; in a /31 or /32 every
// address) or as one address, refusing unroutable addresses.
func ParseFloatingRange(field, s string) (lo, hi netip.Addr, p netip.Prefix, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return lo, hi, p, invalidf("%s is required: give a CIDR such as 203.0.113.0/28 or one address", field)
	}
	if !strings.Contains(s, "/") {
		a, err := ParseAddr4(field, s)
		if err != nil {
			return lo, hi, p, err
		}
		p = netip.PrefixFrom(a, 32)
		if err := CheckUsablePrefix(field, p); err != nil {
			return lo, hi, p, err
		}
		return a, a, p, nil
	}
	if p, err = ParseRange(field, s, 16); err != nil {
		return lo, hi, p, err
	}
	if err := CheckUsablePrefix(field, p); err != nil {
		return lo, hi, p, err
	}
	lo, hi = p.Addr(), LastAddr(p)
	if p.Bits() <= 30 {
		lo, hi = lo.Next(), hi.Prev()
	}
	return lo, hi, p, nil
}

// Check judges a floating range request by itself; empty pool and
// interface take the server's defaults.
func (r FloatingRangeRequest) Check() error {
	if _, _, _, err := ParseFloatingRange("ip_range", r.IPRange); err != nil {
		return err
	}
	if p := strings.TrimSpace(r.Pool); p != "" {
		if err := CheckPoolName("pool", p); err != nil {
			return err
		}
	}
	if i := strings.TrimSpace(r.Interface); i != "" {
		return CheckIfName("interface", i)
	}
	return nil
}

// CheckPoolName checks a floating IP pool name: it appears in URLs and
// command lines, so letters, digits, '-', '_' and '.' only.
func CheckPoolName(field, p string) error {
	if err := CheckName(field, p, MaxNameBytes); err != nil {
		return err
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return invalidf("%s %q contains %q: use letters, digits, '-', '_' or '.'", field, p, r)
		}
	}
	return nil
}

// Check judges a lease event by itself, as the API's lease endpoint
// receives it (the reporting host named), and returns it with its MAC in
// lower case.
func (ev LeaseEvent) Check() (LeaseEvent, error) {
	ev, err := ev.checkSeen()
	if err != nil {
		return ev, err
	}
	if ev.Host == "" {
		return ev, invalidf(`"host" is required: the agent's host that saw the lease`)
	}
	return ev, CheckHostName("host", ev.Host)
}

// checkSeen judges what dnsmasq reported: the action, the address, the
// client's MAC and the hostname it asked for.
func (ev LeaseEvent) checkSeen() (LeaseEvent, error) {
	switch ev.Action {
	case LeaseAdd, LeaseOld, LeaseDel:
	default:
		return ev, invalidf("lease action %q is unknown: use add, old or del", ev.Action)
	}
	if !ev.Address.IsValid() {
		return ev, invalidf(`lease "address" is required: the IPv4 address dnsmasq leased, such as 10.0.0.5`)
	}
	if !ev.Address.Is4() {
		return ev, invalidf("lease address %s is not an IPv4 address: novanet leases IPv4 fixed addresses only", ev.Address)
	}
	mac, err := ParseUnicastMAC("MAC address", ev.MAC)
	if err != nil {
		return ev, err
	}
	ev.MAC = mac
	return ev, CheckText("hostname", ev.Hostname, MaxNameBytes)
}

// ParseLeaseEvent builds a lease event from what dnsmasq hands its
// --dhcp-script (action, MAC, address, hostname) and judges it as Check
// does, but for the host, which the agent fills in: the script and the
// agent's socket refuse a bad event with the API's own words.
func ParseLeaseEvent(action, mac, address, hostname string) (LeaseEvent, error) {
	a, err := ParseAddr4("address", address)
	if err != nil {
		return LeaseEvent{}, err
	}
	return LeaseEvent{Action: LeaseAction(action), MAC: mac, Address: a, Hostname: hostname}.checkSeen()
}
