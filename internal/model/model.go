// Package model holds novanet's plain domain types: networks, fixed and
// floating IPs, virtual interfaces, instances, security groups and the
// per-host desired state. It does no I/O and imports only the standard
// library; every address is a net/netip value.
package model

import (
	"net/netip"
	"time"
)

// ManagerKind is the nova network manager a network follows.
type ManagerKind string

const (
	KindFlat     ManagerKind = "flat"     // FlatManager: bridge only, configuration injected
	KindFlatDHCP ManagerKind = "flatdhcp" // FlatDHCPManager: bridge + dnsmasq + gateway + NAT
	KindVLAN     ManagerKind = "vlan"     // VlanManager: a VLAN, bridge and subnet per project
)

// Valid reports whether k names a known manager.
func (k ManagerKind) Valid() bool {
	return k == KindFlat || k == KindFlatDHCP || k == KindVLAN
}

// Network is one subnet carved from a fixed range (nova's networks table).
type Network struct {
	ID              int64        `json:"id"`
	UUID            string       `json:"uuid"`
	Label           string       `json:"label"`
	Kind            ManagerKind  `json:"kind"`
	CIDR            netip.Prefix `json:"cidr"`
	Gateway         netip.Addr   `json:"gateway"`
	Broadcast       netip.Addr   `json:"broadcast"`
	DHCPStart       netip.Addr   `json:"dhcp_start"`
	DNS1            netip.Addr   `json:"dns1,omitzero"`
	DNS2            netip.Addr   `json:"dns2,omitzero"`
	Bridge          string       `json:"bridge"`
	BridgeInterface string       `json:"bridge_interface,omitempty"`
	VLAN            int          `json:"vlan,omitempty"`
	MultiHost       bool         `json:"multi_host"`
	ProjectID       string       `json:"project_id,omitempty"`
	// Host is the single-host network host serving this network (gateway,
	// DHCP, NAT). Empty for multi-host networks.
	Host      string    `json:"host,omitempty"`
	MTU       int       `json:"mtu,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Netmask returns the dotted netmask of the network.
func (n Network) Netmask() netip.Addr { return PrefixMask(n.CIDR) }

// FixedIP is one address row of a network (nova's fixed_ips table).
type FixedIP struct {
	ID        int64      `json:"id"`
	Address   netip.Addr `json:"address"`
	NetworkID int64      `json:"network_id"`
	// InstanceUUID is set while the address belongs to an instance,
	// including the time between deallocation and disassociation.
	InstanceUUID string `json:"instance_uuid,omitempty"`
	VIFID        int64  `json:"virtual_interface_id,omitempty"`
	// Host is set when the address is a host's own gateway address in a
	// multi-host network.
	Host      string    `json:"host,omitempty"`
	Allocated bool      `json:"allocated"`
	Leased    bool      `json:"leased"`
	Reserved  bool      `json:"reserved"`
	UpdatedAt time.Time `json:"updated_at"`
}

// VIF is an instance's virtual interface on one network.
type VIF struct {
	ID           int64  `json:"id"`
	UUID         string `json:"uuid"`
	MAC          string `json:"mac"` // fa:16:3e:xx:xx:xx, lower case
	InstanceUUID string `json:"instance_uuid"`
	NetworkID    int64  `json:"network_id"`
	// Device is the tap name the hypervisor must create for this VIF
	// (e.g. "tap1a2b3c4d-5e"); the agent enslaves it to the bridge.
	Device string `json:"device"`
}

// Instance is a VM as the network manager sees it.
type Instance struct {
	UUID      string    `json:"uuid"`
	Hostname  string    `json:"hostname"`
	ProjectID string    `json:"project_id"`
	Host      string    `json:"host"`
	UserData  string    `json:"user_data,omitempty"`
	KeyName   string    `json:"key_name,omitempty"`
	KeyData   string    `json:"key_data,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// SecurityGroups are the ids of the groups the instance belongs to.
	SecurityGroups []int64 `json:"security_groups,omitempty"`
}

// FloatingIP is a public address in a pool (nova's floating_ips table).
type FloatingIP struct {
	ID        int64      `json:"id"`
	Address   netip.Addr `json:"address"`
	Pool      string     `json:"pool"`
	Interface string     `json:"interface,omitempty"`
	ProjectID string     `json:"project_id,omitempty"`
	// FixedAddress is the fixed IP the floating IP is associated with.
	FixedAddress netip.Addr `json:"fixed_address,omitzero"`
	InstanceUUID string     `json:"instance_uuid,omitempty"`
	// Host is the host that does the NAT for the association.
	Host         string `json:"host,omitempty"`
	AutoAssigned bool   `json:"auto_assigned"`
}

// SecurityGroup is a per-project set of ingress rules.
type SecurityGroup struct {
	ID          int64               `json:"id"`
	ProjectID   string              `json:"project_id"`
	Name        string              `json:"name"`
	Description string              `json:"description"`
	Rules       []SecurityGroupRule `json:"rules"`
}

// SecurityGroupRule admits traffic to members of its group. Protocol is
// "tcp", "udp", "icmp" or "" (any). For icmp, FromPort is the type and
// ToPort the code, -1 meaning any. Exactly one of CIDR and SourceGroupID
// is set (a zero CIDR and zero SourceGroupID mean 0.0.0.0/0).
type SecurityGroupRule struct {
	ID            int64        `json:"id"`
	GroupID       int64        `json:"group_id"`
	Protocol      string       `json:"protocol"`
	FromPort      int          `json:"from_port"`
	ToPort        int          `json:"to_port"`
	CIDR          netip.Prefix `json:"cidr,omitzero"`
	SourceGroupID int64        `json:"source_group_id,omitempty"`
}

// LeaseAction is what dnsmasq's --dhcp-script reports.
type LeaseAction string

const (
	LeaseAdd LeaseAction = "add"
	LeaseOld LeaseAction = "old"
	LeaseDel LeaseAction = "del"
)

// LeaseEvent is one dnsmasq lease change, forwarded by the agent.
type LeaseEvent struct {
	Action   LeaseAction `json:"action"`
	MAC      string      `json:"mac"`
	Address  netip.Addr  `json:"address"`
	Hostname string      `json:"hostname,omitempty"`
	Host     string      `json:"host"` // the agent's host that saw the event
}

// Lease is one entry dnsmasq should believe it has handed out, printed by
// `dhcpbridge init` because dnsmasq runs with --leasefile-ro.
type Lease struct {
	MAC      string     `json:"mac"`
	Address  netip.Addr `json:"address"`
	Hostname string     `json:"hostname"`
}
