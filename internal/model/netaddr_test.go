package model

import (
	"net/netip"
	"testing"
)

func TestIPv4Arithmetic(t *testing.T) {
	for _, tc := range []struct {
		prefix, last, mask string
	}{
		{"10.0.0.0/24", "10.0.0.255", "255.255.255.0"},
		{"10.0.0.77/24", "10.0.0.255", "255.255.255.0"},
		{"192.0.2.8/29", "192.0.2.15", "255.255.255.248"},
		{"203.0.113.5/32", "203.0.113.5", "255.255.255.255"},
		{"0.0.0.0/0", "255.255.255.255", "0.0.0.0"},
		{"10.0.0.0/8", "10.255.255.255", "255.0.0.0"},
	} {
		p := netip.MustParsePrefix(tc.prefix)
		if got := LastAddr(p).String(); got != tc.last {
			t.Errorf("LastAddr(%s) = %s, want %s", p, got, tc.last)
		}
		if got := PrefixMask(p).String(); got != tc.mask {
			t.Errorf("PrefixMask(%s) = %s, want %s", p, got, tc.mask)
		}
	}
	for _, tc := range []struct {
		a    string
		n    int
		want string
	}{
		{"10.0.0.255", 1, "10.0.1.0"},
		{"10.0.1.0", -1, "10.0.0.255"},
		{"192.0.2.1", 256, "192.0.3.1"},
		{"255.255.255.255", 1, "0.0.0.0"},
	} {
		if got := AddrAdd(netip.MustParseAddr(tc.a), tc.n).String(); got != tc.want {
			t.Errorf("AddrAdd(%s, %d) = %s, want %s", tc.a, tc.n, got, tc.want)
		}
	}
	for _, s := range []string{"0.0.0.0", "10.1.2.3", "255.255.255.255"} {
		a := netip.MustParseAddr(s)
		if back := Uint32Addr4(Addr4Uint32(a)); back != a {
			t.Errorf("%s round-trips to %s", a, back)
		}
	}
	if v := Addr4Uint32(netip.MustParseAddr("10.1.2.3")); v != 0x0a010203 {
		t.Errorf("Addr4Uint32(10.1.2.3) = %#x", v)
	}
}
