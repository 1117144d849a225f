package model

import "net/netip"

// FixedIPRow is one fixed address as `novanet fixed-ip list` (nova-manage
// fixed list) and `novanet lease list` show it.
type FixedIPRow struct {
	Address      netip.Addr `json:"address"`
	Network      string     `json:"network"` // label
	Bridge       string     `json:"bridge"`
	InstanceUUID string     `json:"instance_uuid"`
	Hostname     string     `json:"hostname"`
	// Host is the instance's compute host, or the host whose own
	// (gateway) address this is.
	Host string `json:"host"`
	// DHCPHost is the host whose dnsmasq serves the address: the
	// network's host, or the instance's host in a multi-host network.
	DHCPHost  string `json:"dhcp_host"`
	MAC       string `json:"mac"`
	Allocated bool   `json:"allocated"`
	Leased    bool   `json:"leased"`
	Reserved  bool   `json:"reserved"`
}

// AddressUsage counts one network's fixed addresses or one floating
// pool's addresses, for metrics.
type AddressUsage struct {
	Network string // label ("" for a pool)
	Bridge  string
	Pool    string // floating pool ("" for a network)
	// Used: allocated, leased or held by a host (fixed), allocated to a
	// project (floating). Reserved: reserved fixed addresses.
	Free, Used, Reserved int
}
