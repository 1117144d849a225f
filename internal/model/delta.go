package model

import "net/netip"

// HostStateProtocol is the version of the host state wire protocol (the
// /v1/hosts/{host}/state, /watch and /applied resources). An agent and a
// server that speak different versions refuse each other with a message
// naming both versions rather than misreading each other's JSON.
const HostStateProtocol = 2

// HostProtocolHeader carries HostStateProtocol in an agent's requests to
// the host resources and in the server's answers. An agent that sends
// none is served as protocol 1 was (the watch answers revisions only).
const HostProtocolHeader = "Novanet-Host-Protocol"

// HostStateDelta is what changed in one host's desired state between the
// agent's revision From and the server's revision To. Applying it to the
// state at From gives exactly the state at To (HostState.Apply); the server
// sends it instead of the whole state so that one more instance costs the
// agent the same at 5,000 as at 100.
//
// When Full is set it is the whole state at To and every other field is
// empty: the agent was too far behind, the server could not describe the
// change, or From is zero (an agent with no state).
//
// The server describes the items the change log says were touched as they
// are at To: an entry that exists is upserted, one that does not is
// listed as removed, whether or not the state at From held it. Removing
// a key the state lacks is therefore a no-op, not an inconsistency.
//
// Entries are keyed as the state keys them: networks by Network.ID,
// instances, DHCP hosts and metadata by MAC (a VIF), floating IPs by
// Address, security groups by ID. An upsert replaces the whole entry of
// that key.
type HostStateDelta struct {
	Host string     `json:"host"`
	From int64      `json:"from"`
	To   int64      `json:"to"`
	Full *HostState `json:"full,omitempty"`

	// Options replaces the cluster options when set.
	Options *ClusterOptions `json:"options,omitempty"`

	Networks        []HostNetworkDelta `json:"networks,omitempty"`
	RemovedNetworks []int64            `json:"removed_networks,omitempty"`

	FloatingIPs        []HostFloatingIP `json:"floating_ips,omitempty"`
	RemovedFloatingIPs []netip.Addr     `json:"removed_floating_ips,omitempty"`

	SecurityGroups        []HostSecurityGroupDelta `json:"security_groups,omitempty"`
	RemovedSecurityGroups []int64                  `json:"removed_security_groups,omitempty"`

	Metadata        []InstanceMetadata `json:"metadata,omitempty"`
	RemovedMetadata []string           `json:"removed_metadata,omitempty"` // MACs
}

// HostNetworkDelta is one network that changed on the host. Its header
// (Network, BridgeAddress, ServesDHCP, NAT, DHCPServer) is always sent
// whole; of its lists only the changed entries travel. A network that is
// new to the host arrives with all its entries as upserts.
type HostNetworkDelta struct {
	Network       Network    `json:"network"`
	BridgeAddress netip.Addr `json:"bridge_address,omitzero"`
	ServesDHCP    bool       `json:"serves_dhcp"`
	NAT           bool       `json:"nat"`
	DHCPServer    netip.Addr `json:"dhcp_server,omitzero"`

	Instances        []HostInstance `json:"instances,omitempty"`
	RemovedInstances []string       `json:"removed_instances,omitempty"` // MACs

	DHCPHosts        []DHCPHost `json:"dhcp_hosts,omitempty"`
	RemovedDHCPHosts []string   `json:"removed_dhcp_hosts,omitempty"` // MACs

	// Releases, when ReleasesChanged, replaces the network's whole
	// release list (it is short: leases waiting for dnsmasq's del).
	ReleasesChanged bool          `json:"releases_changed,omitempty"`
	Releases        []DHCPRelease `json:"releases,omitempty"`
}

// HostSecurityGroupDelta is one group that changed: its rules travel
// whole (a group has few), its members as additions and removals (a
// group can have thousands). A group new to the host has MembersReplaced
// set and all its members in AddedMembers.
type HostSecurityGroupDelta struct {
	SecurityGroup
	MembersReplaced bool         `json:"members_replaced,omitempty"`
	AddedMembers    []netip.Addr `json:"added_members,omitempty"`
	RemovedMembers  []netip.Addr `json:"removed_members,omitempty"`
}

// Empty reports whether the delta changes nothing.
func (d HostStateDelta) Empty() bool {
	return d.Full == nil && d.Options == nil &&
		len(d.Networks) == 0 && len(d.RemovedNetworks) == 0 &&
		len(d.FloatingIPs) == 0 && len(d.RemovedFloatingIPs) == 0 &&
		len(d.SecurityGroups) == 0 && len(d.RemovedSecurityGroups) == 0 &&
		len(d.Metadata) == 0 && len(d.RemovedMetadata) == 0
}
