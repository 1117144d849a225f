package model

import (
	"net/netip"
	"time"
)

// InstanceMetadata is everything the metadata service answers one
// instance's requests with, for one of its network interfaces (the one the
// request came from).
type InstanceMetadata struct {
	UUID             string    `json:"uuid"`
	Hostname         string    `json:"hostname"`
	ProjectID        string    `json:"project_id"`
	Host             string    `json:"host"`
	AvailabilityZone string    `json:"availability_zone"`
	LaunchIndex      int       `json:"launch_index"`
	UserData         string    `json:"user_data,omitempty"`
	KeyName          string    `json:"key_name,omitempty"`
	KeyData          string    `json:"key_data,omitempty"`
	SecurityGroups   []string  `json:"security_groups"`
	CreatedAt        time.Time `json:"created_at"`
	// Password is what the guest posted to /openstack/latest/password
	// (encrypted by the guest with its own key), empty until then.
	Password string `json:"password,omitempty"`
	// DHCPDomain is appended to the hostname (nova's dhcp_domain).
	DHCPDomain string `json:"dhcp_domain,omitempty"`

	// The interface the request arrived from.
	Address         netip.Addr `json:"address"`
	MAC             string     `json:"mac"`
	Device          string     `json:"device"`
	VIFUUID         string     `json:"vif_uuid"`
	FloatingAddress netip.Addr `json:"floating_address,omitzero"`
	// Network is the interface's network (in a host state only its ID:
	// the rest is in HostState.Networks).
	Network Network `json:"network"`
	// Gateway and DNS are what the instance's DHCP offer carries: in
	// multi-host mode its host's own address on the network.
	Gateway netip.Addr   `json:"gateway,omitzero"`
	DNS     []netip.Addr `json:"dns"`
}
