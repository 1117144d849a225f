package model

import "time"

// HostReport is one agent's host as operators list it (`novanet host
// list`, like `openstack network agent list`).
type HostReport struct {
	Host string `json:"host"`
	// Roles: "network" (gateway, DHCP and NAT for a network) and/or
	// "compute" (instances run on it); empty before either.
	Roles           []string  `json:"roles"`
	Revision        int64     `json:"revision"`
	AppliedRevision int64     `json:"applied_revision"`
	LastSeen        time.Time `json:"last_seen"`
	Version         string    `json:"version"`
	Problem         string    `json:"problem"`
}
