package model

import (
	"net/netip"
	"strings"
)

// Normalize checks a rule by itself and fills its defaults (any protocol
// means ports -1, no source means 0.0.0.0/0). allowSource is false for
// default rules, which cannot name a source group.
func (r SecurityGroupRule) Normalize(allowSource bool) (SecurityGroupRule, error) {
	r.Protocol = strings.ToLower(strings.TrimSpace(r.Protocol))
	switch r.Protocol {
	case "":
		if !r.CIDR.IsValid() && r.SourceGroupID == 0 {
			// nova: "Not enough parameters to build a valid rule".
			return r, invalidf("a rule without a protocol needs a cidr or a source group to admit every protocol from: give ip_protocol (tcp, udp, icmp) with from_port/to_port, or a cidr or group_id")
		}
		if (r.FromPort != -1 && r.FromPort != 0) || (r.ToPort != -1 && r.ToPort != 0) {
			return r, invalidf("ports %d..%d given without a protocol: set protocol tcp or udp, or use -1", r.FromPort, r.ToPort)
		}
		r.FromPort, r.ToPort = -1, -1
	case "tcp", "udp":
		if r.FromPort <= 0 && r.ToPort <= 0 {
			return r, invalidf("a %s rule needs ports: give from_port and to_port (1..65535; the same number for one port)", r.Protocol)
		}
		if err := CheckPortRange(r.Protocol, r.FromPort, r.ToPort); err != nil {
			return r, err
		}
	case "icmp":
		if r.FromPort < -1 || r.FromPort > 255 || r.ToPort < -1 || r.ToPort > 255 {
			return r, invalidf("icmp type %d and code %d are not between -1 and 255: give from_port (the type) and to_port (the code) in -1..255, -1 for any", r.FromPort, r.ToPort)
		}
		if r.FromPort == -1 && r.ToPort != -1 {
			return r, invalidf("icmp code %d needs a type: give from_port (the type) too", r.ToPort)
		}
	default:
		return r, invalidf("ip_protocol %q is not supported: use tcp, udp, icmp or leave it empty for any", r.Protocol)
	}
	if r.CIDR.IsValid() && r.SourceGroupID != 0 {
		return r, invalidf("a rule has either a cidr or a source group, not both: give cidr or group_id")
	}
	if r.SourceGroupID != 0 && !allowSource {
		return r, invalidf("default rules cannot name a source group: give a cidr")
	}
	if r.CIDR.IsValid() {
		if !r.CIDR.Addr().Is4() {
			return r, invalidf("cidr %s is not IPv4: give an IPv4 CIDR such as 192.0.2.0/24", r.CIDR)
		}
		if r.CIDR.Masked() != r.CIDR {
			return r, invalidf("cidr %s has host bits set: use %s", r.CIDR, r.CIDR.Masked())
		}
	} else if r.SourceGroupID == 0 {
		r.CIDR = netip.MustParsePrefix("0.0.0.0/0")
	}
	return r, nil
}

// Port bounds for TCP and UDP: 0 is no port a rule or a listener can
// name.
const MinPort, MaxPort = 1, 65535

// CheckPort checks one TCP or UDP port.
func CheckPort(field string, port int) error {
	if port < MinPort || port > MaxPort {
		return invalidf("%s %d is not between %d and %d: give a port in that range", field, port, MinPort, MaxPort)
	}
	return nil
}

// CheckPortRange checks a TCP or UDP port range from..to (one port when
// from == to); proto names it in the message.
func CheckPortRange(proto string, from, to int) error {
	if from < MinPort || from > MaxPort || to < MinPort || to > MaxPort {
		return invalidf("%s ports %d-%d are not between %d and %d: give from_port and to_port in that range (the same number for one port)", proto, from, to, MinPort, MaxPort)
	}
	if from > to {
		return invalidf("from_port %d is greater than to_port %d: give the lower port as from_port", from, to)
	}
	return nil
}
