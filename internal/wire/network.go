package wire

import "novanet/internal/model"

// Network is nova's os-networks network dict, admin fields included. It
// sends dns1/dns2 as nova does and dns_1/dns_2 as gophercloud v1 expects,
// so both clients read them; kind and numeric_id are novanet's.
type Network struct {
	Bridge            *string `json:"bridge"`
	BridgeInterface   *string `json:"bridge_interface"`
	Broadcast         *string `json:"broadcast"`
	CIDR              string  `json:"cidr"`
	CIDRv6            *string `json:"cidr_v6"`
	CreatedAt         *string `json:"created_at"`
	Deleted           bool    `json:"deleted"`
	DeletedAt         *string `json:"deleted_at"`
	DHCPServer        *string `json:"dhcp_server"`
	DHCPStart         *string `json:"dhcp_start"`
	DNS1              *string `json:"dns1"`
	DNS2              *string `json:"dns2"`
	DNS1Alt           *string `json:"dns_1"`
	DNS2Alt           *string `json:"dns_2"`
	EnableDHCP        bool    `json:"enable_dhcp"`
	Gateway           *string `json:"gateway"`
	GatewayV6         *string `json:"gateway_v6"`
	Host              *string `json:"host"`
	ID                string  `json:"id"`
	Injected          bool    `json:"injected"`
	Kind              string  `json:"kind"`
	Label             string  `json:"label"`
	MTU               *int    `json:"mtu"`
	MultiHost         bool    `json:"multi_host"`
	Netmask           string  `json:"netmask"`
	NetmaskV6         *string `json:"netmask_v6"`
	NumericID         int64   `json:"numeric_id"`
	Priority          *int    `json:"priority"`
	ProjectID         *string `json:"project_id"`
	RXTXBase          *int    `json:"rxtx_base"`
	ShareAddress      bool    `json:"share_address"`
	UpdatedAt         *string `json:"updated_at"`
	VLAN              *int    `json:"vlan"`
	VPNPrivateAddress *string `json:"vpn_private_address"`
	VPNPublicAddress  *string `json:"vpn_public_address"`
	VPNPublicPort     *int    `json:"vpn_public_port"`
}

// NewNetwork is the admin's view of n.
func NewNetwork(n model.Network) Network {
	return Network{
		Bridge: stringOrNull(n.Bridge), BridgeInterface: stringOrNull(n.BridgeInterface),
		Broadcast: addrOrNull(n.Broadcast), CIDR: n.CIDR.String(), CreatedAt: timeOrNull(n.CreatedAt),
		DHCPServer: addrOrNull(n.Gateway), DHCPStart: addrOrNull(n.DHCPStart),
		DNS1: addrOrNull(n.DNS1), DNS2: addrOrNull(n.DNS2), DNS1Alt: addrOrNull(n.DNS1), DNS2Alt: addrOrNull(n.DNS2),
		EnableDHCP: n.Kind != model.KindFlat, Gateway: addrOrNull(n.Gateway), Host: stringOrNull(n.Host),
		ID: n.UUID, Injected: n.Kind == model.KindFlat, Kind: string(n.Kind), Label: n.Label,
		MTU: intOrNull(n.MTU), MultiHost: n.MultiHost, Netmask: n.Netmask().String(), NumericID: n.ID,
		ProjectID: stringOrNull(n.ProjectID), VLAN: intOrNull(n.VLAN),
	}
}

// ProjectNetwork is the os-networks dict nova showed a project
// (network_dict's fields); the rest (host, bridge, vlan, dhcp_start,
// project_id, multi_host, ...) describe the datapath and are admin-only.
type ProjectNetwork struct {
	Broadcast *string `json:"broadcast"`
	CIDR      string  `json:"cidr"`
	CIDRv6    *string `json:"cidr_v6"`
	DNS1      *string `json:"dns1"`
	DNS2      *string `json:"dns2"`
	DNS1Alt   *string `json:"dns_1"`
	DNS2Alt   *string `json:"dns_2"`
	Gateway   *string `json:"gateway"`
	GatewayV6 *string `json:"gateway_v6"`
	ID        string  `json:"id"`
	Label     string  `json:"label"`
	Netmask   string  `json:"netmask"`
	NetmaskV6 *string `json:"netmask_v6"`
}

// NewProjectNetwork is a project's view of n.
func NewProjectNetwork(n model.Network) ProjectNetwork {
	a := NewNetwork(n)
	return ProjectNetwork{Broadcast: a.Broadcast, CIDR: a.CIDR, DNS1: a.DNS1, DNS2: a.DNS2,
		DNS1Alt: a.DNS1Alt, DNS2Alt: a.DNS2Alt, Gateway: a.Gateway, ID: a.ID, Label: a.Label, Netmask: a.Netmask}
}

// TenantNetwork is nova's os-tenant-networks dict.
type TenantNetwork struct {
	CIDR  string `json:"cidr"`
	ID    string `json:"id"`
	Label string `json:"label"`
}

// NewTenantNetwork is the os-tenant-networks view of n.
func NewTenantNetwork(n model.Network) TenantNetwork {
	return TenantNetwork{CIDR: n.CIDR.String(), ID: n.UUID, Label: n.Label}
}
