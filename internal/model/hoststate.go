package model

import "net/netip"

// HostState is everything one host's agent needs to converge its datapath.
// The server computes it from the store; its Revision moves whenever
// anything in it changes. Host-local facts (flat_interface,
// public_interface, routing_source_ip, metadata_host) come from the
// agent's own configuration, not from here.
type HostState struct {
	Host     string         `json:"host"`
	Revision int64          `json:"revision"`
	Options  ClusterOptions `json:"options"`
	// Networks this host takes part in: the ones it serves as single-host
	// network host, and the ones with instances on it.
	Networks []HostNetwork `json:"networks"`
	// FloatingIPs this host must NAT (single-host: the network host does
	// all; multi-host: the instance's host).
	FloatingIPs []HostFloatingIP `json:"floating_ips"`
	// SecurityGroups used by instances on this host, with member addresses
	// of the groups their rules name as sources.
	SecurityGroups []HostSecurityGroup `json:"security_groups"`
	// Metadata is what this host's metadata service answers its local
	// instances with (multi-host networks only: their requests stay on
	// the host), sorted by address.
	Metadata []InstanceMetadata `json:"metadata,omitempty"`
}

// ClusterOptions are the nova.conf options the server owns and every agent
// must agree on.
type ClusterOptions struct {
	DHCPDomain          string `json:"dhcp_domain"`
	DHCPLeaseTime       int    `json:"dhcp_lease_time"` // seconds
	ForceDHCPRelease    bool   `json:"force_dhcp_release"`
	AllowSameNetTraffic bool   `json:"allow_same_net_traffic"`
	// FixedRanges are the CIDRs of all networks (nova's fixed_range), used
	// for the SNAT and the metadata/dmz exemptions.
	FixedRanges []netip.Prefix `json:"fixed_ranges"`
}

// HostNetwork is one network as seen by one host.
type HostNetwork struct {
	Network Network `json:"network"`
	// BridgeAddress is the address this host puts on the bridge: the
	// gateway on a single-host network host, the host's own gateway
	// address in a multi-host network, zero on a plain compute host.
	BridgeAddress netip.Addr `json:"bridge_address,omitzero"`
	// ServesDHCP: this host runs dnsmasq for the network.
	ServesDHCP bool `json:"serves_dhcp"`
	// NAT: this host routes and SNATs the network's traffic to the outside.
	NAT bool `json:"nat"`
	// DHCPServer is the address local instances receive DHCP from (for the
	// instance firewall's DHCP rule): the network host's gateway in single
	// host mode, this host's BridgeAddress in multi-host mode.
	DHCPServer netip.Addr `json:"dhcp_server,omitzero"`
	// Instances are the VIFs of instances on this host in this network.
	Instances []HostInstance `json:"instances"`
	// DHCPHosts are the static entries this host's dnsmasq serves (only
	// when ServesDHCP): every instance of the network in single-host mode,
	// the local ones in multi-host mode. Sorted by address.
	DHCPHosts []DHCPHost `json:"dhcp_hosts"`
	// Releases are leases this host must release from its dnsmasq (sends
	// DHCPRELEASE) because their instance was deleted.
	Releases []DHCPRelease `json:"releases"`
}

// HostInstance is one local instance VIF.
type HostInstance struct {
	UUID string `json:"uuid"`
	// VIFID is the interface's number, unique in the cluster: it names the
	// instance chain (nova-compute-inst-<id>), which iptables limits to 28
	// bytes, too few for a UUID.
	VIFID          int64      `json:"vif_id,omitempty"`
	Hostname       string     `json:"hostname"`
	ProjectID      string     `json:"project_id"`
	Address        netip.Addr `json:"address"`
	MAC            string     `json:"mac"`
	Device         string     `json:"device"`
	SecurityGroups []int64    `json:"security_groups"`
}

// DHCPHost is one static dnsmasq entry.
type DHCPHost struct {
	MAC      string     `json:"mac"`
	Hostname string     `json:"hostname"`
	Address  netip.Addr `json:"address"`
}

// DHCPRelease is a lease to release.
type DHCPRelease struct {
	MAC     string     `json:"mac"`
	Address netip.Addr `json:"address"`
}

// HostFloatingIP is one floating association this host must NAT.
type HostFloatingIP struct {
	Address      netip.Addr `json:"address"`
	FixedAddress netip.Addr `json:"fixed_address"`
	Interface    string     `json:"interface,omitempty"`
	InstanceUUID string     `json:"instance_uuid"`
}

// HostSecurityGroup is a group with its rules and the fixed addresses of
// its members (for source-group rules).
type HostSecurityGroup struct {
	SecurityGroup
	Members []netip.Addr `json:"members"`
}
