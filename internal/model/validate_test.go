package model

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCheckIfName(t *testing.T) {
	for name, ok := range map[string]bool{
		"br100": true, "eth0.100": true, "vlan_7": true, "a-b": true, strings.Repeat("x", 15): true,
		"": false, ".": false, "..": false, strings.Repeat("x", 16): false,
		"br/1": false, "br:1": false, "br 1": false, "br\t1": false, "eth0;reboot": false,
		"$(reboot)": false, "br\x00": false, "bré": false, "eth+": false,
	} {
		if err := CheckIfName("bridge", name); (err == nil) != ok {
			t.Errorf("CheckIfName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestCheckHostName(t *testing.T) {
	for name, ok := range map[string]bool{
		"compute-1": true, "c1": true, "node.example.org": true, "A1": true,
		"": false, "$(reboot)": false, "-a": false, "a-": false, "a..b": false, ".a": false,
		"a_b": false, "a b": false, strings.Repeat("a", 64): false, strings.Repeat("a.", 127) + "ab": false,
	} {
		if err := CheckHostName("host", name); (err == nil) != ok {
			t.Errorf("CheckHostName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestCheckLabel(t *testing.T) {
	for label, ok := range map[string]bool{
		"private": true, "net 1": true, "1a": true,
		"1": false, " 42 ": false, "-3": false, "6f2c8bde-2a5e-4c39-9d39-1f0e6f3a4b5c": false,
		"6F2C8BDE2A5E4C399D391F0E6F3A4B5C": false, "{6f2c8bde-2a5e-4c39-9d39-1f0e6f3a4b5c}": false,
		"urn:uuid:6f2c8bde-2a5e-4c39-9d39-1f0e6f3a4b5c": false, "": false, "a\x00b": false,
		"a\nb": false, "\xff": false, strings.Repeat("l", 256): false,
	} {
		if err := CheckLabel("label", label); (err == nil) != ok {
			t.Errorf("CheckLabel(%q) = %v, want ok=%v", label, err, ok)
		}
	}
}

func TestCheckUsablePrefix(t *testing.T) {
	for p, ok := range map[string]bool{
		"10.0.0.0/24": true, "203.0.113.0/24": true, "192.0.2.1/32": true, "126.255.255.255/32": true,
		"127.0.0.0/8": false, "127.0.0.1/32": false, "0.0.0.0/32": false, "0.0.0.0/0": false,
		"224.0.0.0/24": false, "239.255.255.255/32": false, "255.255.255.255/32": false,
		"240.0.0.0/4": false, "169.254.169.254/32": false, "126.0.0.0/7": false,
	} {
		if err := CheckUsablePrefix("range", netip.MustParsePrefix(p)); (err == nil) != ok {
			t.Errorf("CheckUsablePrefix(%s) = %v, want ok=%v", p, err, ok)
		}
	}
}

func TestNetworkCreateBoundsBeforeWork(t *testing.T) {
	base := NetworkCreateRequest{Label: "x", FixedRangeV4: "10.0.0.0/8", Bridge: "br1"}
	for _, tc := range []struct {
		num, size int
		want      string
	}{
		{1 << 62, 65536, "num_networks"},
		{256, 65536, "num_networks 256 * network_size 65536"},
		{1, 1 << 20, "network_size"},
		{-1, 256, "negative"},
		{1, 3, "power of two"},
	} {
		r := base
		r.NumNetworks, r.NetworkSize = tc.num, tc.size
		if _, err := r.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("num %d size %d: %v, want an error with %q", tc.num, tc.size, err, tc.want)
		}
	}
	ok := base
	ok.NumNetworks, ok.NetworkSize = 256, 1024
	if _, err := ok.Check(); err != nil {
		t.Errorf("256 networks of 1024: %v", err)
	}
}

func TestParseMAC(t *testing.T) {
	for s, ok := range map[string]bool{
		"fa:16:3e:00:00:01": true, "FA:16:3E:AB:CD:EF": true,
		"fa:16:3e:zz:00:01": false, "fa-16-3e-00-00-01": false, "fa16.3e00.0001": false, "": false,
		"fa:16:3e:00:00:01:02:03": false,
	} {
		got, err := ParseMAC("mac", s)
		if (err == nil) != ok {
			t.Errorf("ParseMAC(%q) = %q, %v, want ok=%v", s, got, err, ok)
		}
		if ok && got != strings.ToLower(s) {
			t.Errorf("ParseMAC(%q) = %q, want lower case", s, got)
		}
	}
}
