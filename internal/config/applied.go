package config

import (
	"fmt"
	"strings"
)

// networkManagers are the network_manager classes nova.conf may name,
// by class name, and whether novanet builds their datapath.
var networkManagers = map[string]bool{
	"FlatDHCPManager": true,
	"FlatManager":     false,
	"VlanManager":     false,
}

// managerName is the class name of network_manager, which nova.conf
// spells with its module (nova.network.manager.FlatDHCPManager).
func managerName(v string) string {
	v = strings.TrimSpace(v)
	return v[strings.LastIndexByte(v, '.')+1:]
}

// Unapplied is an option set to a value novanet does not act on yet.
type Unapplied struct {
	Option, Value string
	// Why says what happens instead, for the operator.
	Why string
}

// NotApplied lists the options whose value is accepted but not acted on
// yet, one entry each, for serve and the agent to log at startup, so a
// nova.conf carried over never changes nothing in silence. Options left
// at their defaults are not listed.
func (c *Config) NotApplied() []Unapplied {
	var out []Unapplied
	if built, ok := networkManagers[managerName(c.NetworkManager)]; ok && !built {
		out = append(out, Unapplied{"network_manager", c.NetworkManager,
			"not built yet (on the roadmap): novanet runs FlatDHCPManager, networks are created as kind flatdhcp unless a request names its kind"})
	}
	if c.FlatInjected {
		out = append(out, Unapplied{"flat_injected", "true",
			"not applied yet: novanet injects no network configuration into images; flat guests must configure their address themselves"})
	}
	if len(c.FixedRange) > 1 {
		rs := make([]string, len(c.FixedRange))
		for i, p := range c.FixedRange {
			rs[i] = p.String()
		}
		out = append(out, Unapplied{"fixed_range", strings.Join(rs, ","),
			fmt.Sprintf("lists %d ranges: not applied, network create takes its default range only from a single one, so requests must give fixed_range_v4", len(rs))})
	}
	if !c.SendARPForHA && c.SendARPForHACount != 3 {
		out = append(out, Unapplied{"send_arp_for_ha_count", fmt.Sprint(c.SendARPForHACount),
			"has no effect while send_arp_for_ha is false: no gratuitous ARP is sent"})
	}
	if c.VLANStart != 100 {
		out = append(out, Unapplied{"vlan_start", fmt.Sprint(c.VLANStart),
			"not applied yet: VlanManager is not built; vlan networks need an explicit vlan id"})
	}
	if c.VLANInterface != "" {
		out = append(out, Unapplied{"vlan_interface", c.VLANInterface,
			"not applied yet: VlanManager is not built, the agents create no vlan devices"})
	}
	return out
}
