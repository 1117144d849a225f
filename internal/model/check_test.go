package model

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// checkCase is one input to a check: want "" means accepted, otherwise a
// substring of the refusal, which must also be an invalid-input error.
type checkCase struct {
	name string
	err  error
	want string
}

func judge(t *testing.T, cases []checkCase) {
	t.Helper()
	for _, c := range cases {
		switch {
		case c.want == "" && c.err != nil:
			t.Errorf("%s: refused with %q, want accepted", c.name, c.err)
		case c.want != "" && c.err == nil:
			t.Errorf("%s: accepted, want refused with %q", c.name, c.want)
		case c.want != "" && !IsKind(c.err, ErrInvalid):
			t.Errorf("%s: %v is not an invalid-input error", c.name, c.err)
		case c.want != "" && !strings.Contains(c.err.Error(), c.want):
			t.Errorf("%s: %q, want it to say %q", c.name, c.err, c.want)
		}
	}
}

func TestCheckMTU(t *testing.T) {
	judge(t, []checkCase{
		{"minimum", CheckMTU("mtu", 576), ""},
		{"ethernet", CheckMTU("mtu", 1500), ""},
		{"jumbo", CheckMTU("mtu", 9000), ""},
		{"switch maximum", CheckMTU("mtu", 9216), ""},
		{"too small", CheckMTU("mtu", 100), "mtu 100 is outside 576-9216: give a value in that range"},
		{"one below", CheckMTU("mtu", 575), "mtu 575 is outside 576-9216"},
		{"one above", CheckMTU("mtu", 9217), "mtu 9217 is outside 576-9216"},
		{"bridge maximum", CheckMTU("mtu", 65535), "mtu 65535 is outside 576-9216"},
		{"negative", CheckMTU("mtu", -1), "mtu -1 is outside"},
	})
}

func TestCheckPorts(t *testing.T) {
	judge(t, []checkCase{
		{"one port", CheckPort("metadata_port", 8775), ""},
		{"lowest", CheckPort("metadata_port", 1), ""},
		{"highest", CheckPort("metadata_port", 65535), ""},
		{"zero", CheckPort("metadata_port", 0), "metadata_port 0 is not between 1 and 65535: give a port in that range"},
		{"too high", CheckPort("metadata_port", 65536), "metadata_port 65536 is not between 1 and 65535"},
		{"range", CheckPortRange("tcp", 1000, 2000), ""},
		{"single", CheckPortRange("udp", 53, 53), ""},
		{"whole", CheckPortRange("tcp", 1, 65535), ""},
		{"from zero", CheckPortRange("udp", 0, 70000), "udp ports 0-70000 are not between 1 and 65535: give from_port and to_port"},
		{"to too high", CheckPortRange("tcp", 22, 65536), "tcp ports 22-65536 are not between 1 and 65535"},
		{"negative", CheckPortRange("tcp", -1, -1), "not between 1 and 65535"},
		{"inverted", CheckPortRange("tcp", 80, 22), "from_port 80 is greater than to_port 22: give the lower port as from_port"},
	})
}

func TestRuleNormalize(t *testing.T) {
	rule := func(proto string, from, to int, cidr string, src int64) SecurityGroupRule {
		r := SecurityGroupRule{GroupID: 1, Protocol: proto, FromPort: from, ToPort: to, SourceGroupID: src}
		if cidr != "" {
			r.CIDR = netip.MustParsePrefix(cidr)
		}
		return r
	}
	norm := func(r SecurityGroupRule, allowSource bool) error { _, err := r.Normalize(allowSource); return err }
	judge(t, []checkCase{
		{"tcp 22", norm(rule("tcp", 22, 22, "", 0), true), ""},
		{"TCP upper case", norm(rule(" TCP ", 80, 443, "192.0.2.0/24", 0), true), ""},
		{"udp from group", norm(rule("udp", 53, 53, "", 7), true), ""},
		{"icmp any", norm(rule("icmp", -1, -1, "", 0), true), ""},
		{"icmp echo reply", norm(rule("icmp", 0, 0, "", 0), true), ""},
		{"any from cidr", norm(rule("", 0, 0, "10.0.0.0/8", 0), true), ""},
		{"tcp without ports", norm(rule("tcp", 0, 0, "", 0), true), "a tcp rule needs ports: give from_port and to_port"},
		{"udp port 0", norm(rule("udp", 0, 70000, "", 0), true), "between 1 and 65535"},
		{"tcp inverted", norm(rule("tcp", 80, 22, "", 0), true), "from_port 80 is greater than to_port 22"},
		{"icmp type 256", norm(rule("icmp", 256, -1, "", 0), true), "icmp type 256 and code -1 are not between -1 and 255"},
		{"icmp code without type", norm(rule("icmp", -1, 3, "", 0), true), "icmp code 3 needs a type"},
		{"gre", norm(rule("gre", 0, 0, "", 0), true), `ip_protocol "gre" is not supported`},
		{"any without source", norm(rule("", -1, -1, "", 0), true), "give ip_protocol"},
		{"any with ports", norm(rule("", 22, 22, "10.0.0.0/8", 0), true), "ports 22..22 given without a protocol"},
		{"cidr and group", norm(rule("tcp", 22, 22, "10.0.0.0/8", 7), true), "not both"},
		{"default rule with group", norm(rule("tcp", 22, 22, "", 7), false), "default rules cannot name a source group"},
		{"ipv6 cidr", norm(rule("tcp", 22, 22, "2001:db8::/32", 0), true), "cidr 2001:db8::/32 is not IPv4"},
		{"host bits", norm(rule("tcp", 22, 22, "10.0.0.1/8", 0), true), "cidr 10.0.0.1/8 has host bits set: use 10.0.0.0/8"},
	})
	r, err := rule("tcp", 22, 22, "", 0).Normalize(true)
	if err != nil || r.CIDR != netip.MustParsePrefix("0.0.0.0/0") {
		t.Errorf("rule without a source: %+v, %v; want cidr 0.0.0.0/0", r, err)
	}
	if r, _ := rule("", 0, 0, "", 7).Normalize(true); r.FromPort != -1 || r.ToPort != -1 {
		t.Errorf("any protocol: ports %d..%d, want -1..-1", r.FromPort, r.ToPort)
	}
}

func TestParseCIDR4AndRange(t *testing.T) {
	cidr := func(s string) error { _, err := ParseCIDR4("cidr", s); return err }
	rng := func(s string) error { _, err := ParseRange("fixed_range_v4", s, 8); return err }
	judge(t, []checkCase{
		{"cidr", cidr("192.0.2.0/24"), ""},
		{"cidr with host bits", cidr("192.0.2.1/24"), ""}, // the rule says what it meant
		{"cidr everything", cidr("0.0.0.0/0"), ""},
		{"cidr prefix 99", cidr("10.0.0.0/99"), `cidr "10.0.0.0/99" is not a CIDR (not an IPv4 CIDR such as 10.0.0.0/24)`},
		{"cidr no prefix", cidr("10.0.0.0"), "is not a CIDR"},
		{"cidr garbage", cidr("ten.0.0.0/8"), "give an IPv4 address, '/' and a prefix length of 0-32"},
		{"cidr ipv6", cidr("2001:db8::/64"), "cidr 2001:db8::/64 is not IPv4"},
		{"range", rng("10.0.0.0/24"), ""},
		{"range /8", rng("10.0.0.0/8"), ""},
		{"range empty", rng(" "), "fixed_range_v4 is required"},
		{"range /33", rng("10.1.0.0/33"), `fixed_range_v4 "10.1.0.0/33" is not a CIDR`},
		{"range ipv6", rng("2001:db8::/64"), "fixed_range_v4 2001:db8::/64 is not IPv4"},
		{"range host bits", rng("10.0.0.1/24"), "has host bits set: use 10.0.0.0/24"},
		{"range too large", rng("10.0.0.0/7"), "is larger than a /8"},
	})
}

func TestParseUnicastMAC(t *testing.T) {
	mac := func(s string) error { _, err := ParseUnicastMAC("mac", s); return err }
	judge(t, []checkCase{
		{"openstack", mac("fa:16:3e:00:00:01"), ""},
		{"local", mac("02:00:00:00:00:99"), ""},
		{"upper case", mac("FA:16:3E:AB:CD:EF"), ""},
		{"broadcast", mac("ff:ff:ff:ff:ff:ff"), "mac ff:ff:ff:ff:ff:ff is a multicast or broadcast address"},
		{"multicast", mac("01:00:5e:00:00:01"), "is a multicast or broadcast address"},
		{"zero", mac("00:00:00:00:00:00"), "mac 00:00:00:00:00:00 is all zeros: give the interface's unicast MAC"},
		{"malformed", mac("fa:16:3e:zz:00:01"), `mac "fa:16:3e:zz:00:01" is malformed: use six colon-separated hex pairs`},
		{"dashes", mac("fa-16-3e-00-00-01"), "is malformed"},
		{"eui-64", mac("fa:16:3e:00:00:01:02:03"), "is malformed"},
	})
	if got, _ := ParseUnicastMAC("mac", " FA:16:3E:AB:CD:EF "); got != "fa:16:3e:ab:cd:ef" {
		t.Errorf("ParseUnicastMAC upper case = %q, want lower case", got)
	}
}

func TestLeaseEventChecks(t *testing.T) {
	good := LeaseEvent{Action: LeaseAdd, MAC: "FA:16:3E:00:00:01", Address: netip.MustParseAddr("10.0.0.5"), Hostname: "vm1", Host: "compute-1"}
	with := func(f func(*LeaseEvent)) error { ev := good; f(&ev); _, err := ev.Check(); return err }
	parse := func(action, mac, addr, hostname string) error {
		_, err := ParseLeaseEvent(action, mac, addr, hostname)
		return err
	}
	judge(t, []checkCase{
		{"add", with(func(*LeaseEvent) {}), ""},
		{"old", with(func(ev *LeaseEvent) { ev.Action = LeaseOld }), ""},
		{"del without hostname", with(func(ev *LeaseEvent) { ev.Action = LeaseDel; ev.Hostname = "" }), ""},
		{"renew", with(func(ev *LeaseEvent) { ev.Action = "renew" }), `lease action "renew" is unknown: use add, old or del`},
		{"no address", with(func(ev *LeaseEvent) { ev.Address = netip.Addr{} }), `lease "address" is required`},
		{"ipv6", with(func(ev *LeaseEvent) { ev.Address = netip.MustParseAddr("fd00::5") }), "lease address fd00::5 is not an IPv4 address"},
		{"bad mac", with(func(ev *LeaseEvent) { ev.MAC = "fa:16:3e:zz:00:01" }), `MAC address "fa:16:3e:zz:00:01" is malformed`},
		{"multicast mac", with(func(ev *LeaseEvent) { ev.MAC = "01:00:5e:00:00:01" }), "MAC address 01:00:5e:00:00:01 is a multicast"},
		{"no host", with(func(ev *LeaseEvent) { ev.Host = "" }), `"host" is required`},
		{"host with shell", with(func(ev *LeaseEvent) { ev.Host = "$(reboot)" }), `host "$(reboot)" is not a DNS host name`},
		{"hostname with NUL", with(func(ev *LeaseEvent) { ev.Hostname = "vm\x001" }), "hostname contains a NUL"},
		{"script add", parse("add", "fa:16:3e:00:00:01", "10.0.0.5", "vm1"), ""},
		{"script del", parse("del", "fa:16:3e:00:00:01", "10.0.0.5", ""), ""},
		{"script bad address", parse("add", "fa:16:3e:00:00:01", "10.0.0.300", ""), `address "10.0.0.300" is not an IPv4 address`},
		{"script bad mac", parse("add", "not-a-mac", "10.0.0.5", ""), `MAC address "not-a-mac" is malformed`},
		{"script bad action", parse("renew", "fa:16:3e:00:00:01", "10.0.0.5", ""), `lease action "renew" is unknown`},
	})
	ev, err := good.Check()
	if err != nil || ev.MAC != "fa:16:3e:00:00:01" {
		t.Errorf("Check = %+v, %v; want the MAC in lower case", ev, err)
	}
	ev, err = ParseLeaseEvent("old", "FA:16:3E:00:00:01", "10.0.0.5", "vm1")
	want := LeaseEvent{Action: LeaseOld, MAC: "fa:16:3e:00:00:01", Address: netip.MustParseAddr("10.0.0.5"), Hostname: "vm1"}
	if err != nil || ev != want {
		t.Errorf("ParseLeaseEvent = %+v, %v; want %+v", ev, err, want)
	}
}

func TestNetworkCreateMTU(t *testing.T) {
	base := NetworkCreateRequest{Label: "x", FixedRangeV4: "10.0.0.0/24", Bridge: "br1"}
	for mtu, want := range map[int]string{
		0: "", 1500: "", 9000: "", 9216: "",
		100: "mtu 100 is outside 576-9216: give a value in that range", 65535: "mtu 65535 is outside 576-9216", -5: "none may be negative",
	} {
		r := base
		r.MTU = mtu
		_, err := r.Check()
		judge(t, []checkCase{{"mtu " + strconv.Itoa(mtu), err, want}})
	}
}

func TestTextLimits(t *testing.T) {
	judge(t, []checkCase{
		{"password at nova's limit", CheckText("password", strings.Repeat("p", MaxPasswordBytes), MaxPasswordBytes), ""},
		{"password over", CheckText("password", strings.Repeat("p", MaxPasswordBytes+1), MaxPasswordBytes), "password is 1021 bytes long: at most 1020 are allowed"},
		{"password with NUL", CheckText("password", "a\x00b", MaxPasswordBytes), "password contains a NUL character at byte 1: remove it"},
		{"password not UTF-8", CheckText("password", "\xff", MaxPasswordBytes), "password is not valid UTF-8"},
		{"agent version", CheckName("agent version", "0.4.1 (3a2b3b6, 2026-12-02)", MaxAgentVersionBytes), ""},
		{"agent version too long", CheckName("agent version", strings.Repeat("v", 101), MaxAgentVersionBytes), "agent version is 101 bytes long: at most 100"},
		{"agent version with newline", CheckName("agent version", "0.4\nx", MaxAgentVersionBytes), "contains the control character U+000A"},
	})
}

func TestNetworkCreateVLAN(t *testing.T) {
	base := NetworkCreateRequest{Label: "x", FixedRangeV4: "10.0.0.0/24", Kind: KindVLAN}
	for vlan, want := range map[int]string{
		0: "", 1: "", 100: "", 4094: "",
		4095: "vlan 4095 is outside 1..4094: give a vlan id in that range", -1: "none may be negative",
	} {
		r := base
		r.VLAN = vlan
		_, err := r.Check()
		judge(t, []checkCase{{"vlan " + strconv.Itoa(vlan), err, want}})
	}
}
