package model

import "net/netip"

// IPv4 arithmetic in one place: subnet carving, broadcast addresses and
// netmasks are sums and masks on the address as a 32-bit number, and
// every package that needs them asks here rather than shifting bytes
// itself. (go4.org/netipx would do; it is not in the module cache.)

// Addr4Uint32 is an IPv4 address as a big-endian number; an IPv6
// address is the caller's bug and panics in As4.
func Addr4Uint32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Uint32Addr4 is the IPv4 address with number v.
func Uint32Addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// LastAddr is the highest address of an IPv4 prefix (its broadcast).
func LastAddr(p netip.Prefix) netip.Addr {
	return Uint32Addr4(Addr4Uint32(p.Masked().Addr()) | ^uint32(0)>>p.Bits())
}

// PrefixMask returns the IPv4 netmask of p as an address.
func PrefixMask(p netip.Prefix) netip.Addr {
	var m uint32
	if bits := p.Bits(); bits > 0 {
		m = ^uint32(0) << (32 - bits)
	}
	return Uint32Addr4(m)
}

// AddrAdd is a moved n addresses up (n may be negative), wrapping at the
// ends of the IPv4 space as the 32-bit sum does.
func AddrAdd(a netip.Addr, n int) netip.Addr {
	return Uint32Addr4(Addr4Uint32(a) + uint32(n))
}
