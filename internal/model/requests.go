package model

import "net/netip"

// NetworkCreateRequest mirrors nova-manage network create.
type NetworkCreateRequest struct {
	Label           string      `json:"label"`
	Kind            ManagerKind `json:"kind"`           // default flatdhcp
	FixedRangeV4    string      `json:"fixed_range_v4"` // CIDR
	NumNetworks     int         `json:"num_networks"`   // default 1
	NetworkSize     int         `json:"network_size"`   // default 256 (or the whole range if smaller)
	Bridge          string      `json:"bridge"`
	BridgeInterface string      `json:"bridge_interface"`
	// MultiHost: nil leaves it to serve's multi_host (false unless set),
	// so an explicit false is kept apart from an absent one.
	MultiHost *bool  `json:"multi_host,omitempty"`
	DNS1      string `json:"dns1"`
	DNS2      string `json:"dns2"`
	Gateway   string `json:"gateway"`
	DHCPStart string `json:"dhcp_start"`
	VLAN      int    `json:"vlan"`
	ProjectID string `json:"project_id"`
	// Host is the single-host network host; default the server's network_host.
	Host string `json:"host"`
	MTU  int    `json:"mtu"`
}

// IsMultiHost is the request's multi_host (false when absent).
func (r NetworkCreateRequest) IsMultiHost() bool { return r.MultiHost != nil && *r.MultiHost }

// BootRequest allocates networking for an instance on a host.
type BootRequest struct {
	UUID      string `json:"uuid"` // generated when empty
	Hostname  string `json:"hostname"`
	ProjectID string `json:"project_id"` // admin may set; projects get their own
	Host      string `json:"host"`
	// Network is an id, uuid or label; empty picks the first network the
	// project may use.
	Network        string     `json:"network"`
	FixedAddress   netip.Addr `json:"fixed_address,omitzero"`
	UserData       string     `json:"user_data"`
	KeyName        string     `json:"key_name"`
	KeyData        string     `json:"key_data"`
	SecurityGroups []string   `json:"security_groups"` // names; default ["default"]
}

// InstanceDetail is an instance with its networking.
type InstanceDetail struct {
	Instance
	VIFs        []VIF        `json:"vifs"`
	FixedIPs    []FixedIP    `json:"fixed_ips"`
	FloatingIPs []FloatingIP `json:"floating_ips"`
}

// FixedIPDetail is a fixed IP with its network's facts (os-fixed-ips).
type FixedIPDetail struct {
	FixedIP
	CIDR     netip.Prefix `json:"cidr"`
	Hostname string       `json:"hostname,omitempty"`
	Host     string       `json:"host,omitempty"`
}

// FloatingRangeRequest mirrors nova-manage floating create.
type FloatingRangeRequest struct {
	IPRange   string `json:"ip_range"`  // CIDR or single address
	Pool      string `json:"pool"`      // default default_floating_pool
	Interface string `json:"interface"` // default public_interface
}
