package model

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Stateless checks shared by the API and the manager: each names the
// field it judges and says what to send instead. Checks that need the
// store (overlap, existence, counts) stay in the manager.

// Size limits. Where nova had a quota or a database column the limit is
// nova's: String(255) columns for names, labels and descriptions,
// MAX_USERDATA_SIZE for user data, Text for key data.
const (
	MaxNameBytes     = 255     // labels, group names and descriptions, pools, key names, project ids
	MaxUserDataBytes = 65535   // nova's MAX_USERDATA_SIZE
	MaxKeyDataBytes  = 65535   // nova's key_pairs.public_key (Text)
	MaxHostnameBytes = 63      // one DNS label
	MaxHostBytes     = 253     // a DNS name
	MaxIfNameBytes   = 15      // IFNAMSIZ - 1
	MaxPasswordBytes = 4 * 255 // nova's: four system_metadata chunks of 255
	// MaxAgentVersionBytes bounds the version an agent reports (a
	// version string, with a commit and a date at most).
	MaxAgentVersionBytes = 100
	// MaxNetworksPerRequest bounds num_networks, checked before any
	// subnet is carved.
	MaxNetworksPerRequest = 256
	// MaxAddressesPerRequest bounds num_networks * network_size: the
	// address rows one network create writes in one transaction.
	MaxAddressesPerRequest = 1 << 18
	// MaxNetworkSize is the largest network (a /16).
	MaxNetworkSize = 65536
	// MTU bounds: IPv4's minimum datagram a host must accept (RFC 791),
	// and 9216, the largest frame common data-centre switches and NICs
	// carry. Linux bridges take up to 65535, but a bridge MTU above what
	// its uplink and the switches carry drops every large packet
	// silently, and dnsmasq hands the same MTU to every guest.
	MinMTU, MaxMTU = 576, 9216
	// VLAN ids 802.1Q leaves usable: 0 is priority tagging, 4095
	// reserved.
	MinVLAN, MaxVLAN = 1, 4094
)

// CheckMTU checks a network's MTU (0, unset, is the caller's to allow).
func CheckMTU(field string, mtu int) error {
	if mtu < MinMTU || mtu > MaxMTU {
		return invalidf("%s %d is outside %d-%d: give a value in that range (1500 for plain Ethernet, 9000 for jumbo frames), or leave it unset for the interfaces' own", field, mtu, MinMTU, MaxMTU)
	}
	return nil
}

func invalidf(format string, args ...any) error { return Errorf(ErrInvalid, format, args...) }

// CheckText refuses what no column should hold: invalid UTF-8, NUL
// (PostgreSQL cannot store it in text and SQLite would cut C strings at
// it) and more than max bytes. Newlines and tabs are allowed (user data,
// descriptions).
func CheckText(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return invalidf("%s is not valid UTF-8: send UTF-8 text (base64 for binary data)", field)
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return invalidf("%s contains a NUL character at byte %d: remove it", field, i)
	}
	if len(s) > max {
		return invalidf("%s is %d bytes long: at most %d are allowed", field, len(s), max)
	}
	return nil
}

// CheckName is CheckText for one-line names: no control characters at all.
func CheckName(field, s string, max int) error {
	if err := CheckText(field, s, max); err != nil {
		return err
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return invalidf("%s %q contains the control character %U: use printable characters", field, s, r)
		}
	}
	return nil
}

// CheckLabel checks a network label: a name that cannot be mistaken for
// another network's numeric id or uuid, since a network is found by any
// of the three.
func CheckLabel(field, s string) error {
	if strings.TrimSpace(s) == "" {
		return invalidf("%s is required: name the network (e.g. private)", field)
	}
	if err := CheckName(field, s, MaxNameBytes); err != nil {
		return err
	}
	t := strings.TrimSpace(s)
	if _, err := strconv.ParseInt(t, 10, 64); err == nil {
		return invalidf("%s %q is a number and would shadow the network with that id: use a name with a letter", field, s)
	}
	if looksLikeUUID(t) {
		return invalidf("%s %q is a UUID and would shadow the network with that uuid: use a plain name", field, s)
	}
	return nil
}

// looksLikeUUID accepts the forms a UUID parser would: 32 hex digits,
// optionally hyphenated 8-4-4-4-12, in braces or after "urn:uuid:".
func looksLikeUUID(s string) bool {
	s = strings.TrimPrefix(strings.ToLower(s), "urn:uuid:")
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		s = s[1 : len(s)-1]
	}
	if len(s) == 36 {
		for _, i := range []int{8, 13, 18, 23} {
			if s[i] != '-' {
				return false
			}
		}
		s = strings.ReplaceAll(s, "-", "")
	}
	if len(s) != 32 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

// CheckIfName checks a Linux interface name as the kernel's
// dev_valid_name does (1..15 bytes, not "." or "..", no '/', ':' or
// whitespace), and stricter: only letters, digits, '-', '_' and '.'. The
// kernel would take "eth0;reboot" or "$(x)", but these names reach
// iptables rules, dnsmasq arguments, file names and logs, where such
// characters mean something.
func CheckIfName(field, name string) error {
	if name == "" {
		return invalidf("%s is empty: give a Linux interface name such as br100", field)
	}
	if len(name) > MaxIfNameBytes {
		return invalidf("%s %q is longer than %d bytes (%d): Linux interface names are at most %d bytes", field, name, MaxIfNameBytes, len(name), MaxIfNameBytes)
	}
	if name == "." || name == ".." {
		return invalidf("%s %q is not a valid interface name: use a name such as br100", field, name)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return invalidf("%s %q may not contain %q: use letters, digits, '-', '_' and '.' in interface names (no '/', ':', whitespace or shell characters)", field, name, r)
		}
	}
	return nil
}

// CheckDNSLabel checks one RFC 1123 label (an instance's DHCP hostname).
func CheckDNSLabel(field, h string) error {
	if h == "" {
		return invalidf("%s is required: give a DNS label such as vm1", field)
	}
	if len(h) > MaxHostnameBytes {
		return invalidf("%s %q is %d bytes: a DNS label is at most %d", field, h, len(h), MaxHostnameBytes)
	}
	for i, r := range h {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-'
		if !ok {
			return invalidf("%s %q contains %q: use letters, digits and '-'", field, h, r)
		}
		if r == '-' && (i == 0 || i == len(h)-1) {
			return invalidf("%s %q starts or ends with '-': a DNS label may not", field, h)
		}
	}
	return nil
}

// CheckHostName checks a compute or network host's name as DNS does
// (RFC 1123: dot-separated labels of letters, digits and '-', at most
// 253 bytes), since it names hosts in logs, state files and URLs.
func CheckHostName(field, h string) error {
	if h == "" {
		return invalidf("%s is required: name the host (its DNS name, e.g. compute-1)", field)
	}
	if len(h) > MaxHostBytes {
		return invalidf("%s is %d bytes long: a DNS name is at most %d", field, len(h), MaxHostBytes)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return invalidf("%s %q has an empty label (a leading, trailing or double '.'): give a DNS name such as compute-1", field, h)
		}
		if err := CheckDNSLabel(field, label); err != nil {
			return invalidf("%s %q is not a DNS host name (%v): use letters, digits, '-' and '.'", field, h, err)
		}
	}
	return nil
}

// ParseMAC parses an Ethernet MAC in the colon form dnsmasq and the
// kernel print, returned in lower case.
func ParseMAC(field, s string) (string, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 || strings.Count(s, ":") != 5 {
		return "", invalidf("%s %q is malformed: use six colon-separated hex pairs like fa:16:3e:00:00:01", field, s)
	}
	return hw.String(), nil
}

// ParseUnicastMAC is ParseMAC for the MAC of one interface (a VIF, a
// DHCP client): a group (multicast or broadcast) or all-zero address
// can be no interface's, and would reach dnsmasq's hosts and the L2
// guard's sets as if it were.
func ParseUnicastMAC(field, s string) (string, error) {
	mac, err := ParseMAC(field, s)
	if err != nil {
		return "", err
	}
	hw, _ := net.ParseMAC(mac)
	switch {
	case hw[0]&1 != 0:
		return "", invalidf("%s %s is a multicast or broadcast address (the low bit of its first byte is set): give the interface's unicast MAC, such as fa:16:3e:00:00:01", field, mac)
	case mac == "00:00:00:00:00:00":
		return "", invalidf("%s %s is all zeros: give the interface's unicast MAC, such as fa:16:3e:00:00:01", field, mac)
	}
	return mac, nil
}

// ParseAddr4 parses an IPv4 address.
func ParseAddr4(field, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || !a.Is4() {
		return netip.Addr{}, invalidf("%s %q is not an IPv4 address: send one such as 192.0.2.10", field, s)
	}
	return a, nil
}

// ParseOptAddr4 is ParseAddr4 where empty means unset.
func ParseOptAddr4(field, s string) (netip.Addr, error) {
	if strings.TrimSpace(s) == "" {
		return netip.Addr{}, nil
	}
	return ParseAddr4(field, s)
}

// unroutable are the IPv4 blocks that can be neither a network of
// instances nor a floating address: "this network", loopback, link-local
// (where the metadata service lives), multicast, and the reserved block
// ending in the limited broadcast address.
var unroutable = []struct {
	p    netip.Prefix
	what string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\" (0.0.0.0/8)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback (127.0.0.0/8)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (169.254.0.0/16, the metadata service's)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast (224.0.0.0/4)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (240.0.0.0/4, with the broadcast address 255.255.255.255)"},
}

// CheckUsablePrefix refuses a range that overlaps an unroutable block.
func CheckUsablePrefix(field string, p netip.Prefix) error {
	for _, u := range unroutable {
		if u.p.Overlaps(p) {
			return invalidf("%s %s overlaps %s, which no instance or floating address can use: choose a private range such as 10.0.0.0/24 or a public one you own", field, p, u.what)
		}
	}
	return nil
}
