package model

// Defaults of nova.conf options that more than one layer needs (the
// manager hands them to agents, the planner and the DHCP script fall
// back on them). internal/config's `default` tags spell the same values;
// internal/archtest checks that they agree.
const (
	// DefaultDHCPLeaseTime is dhcp_lease_time, in seconds.
	DefaultDHCPLeaseTime = 120
	// DefaultDHCPDomain is dhcp_domain.
	DefaultDHCPDomain = "novalocal"
	// DefaultMetadataPort is metadata_port.
	DefaultMetadataPort = 8775
)
