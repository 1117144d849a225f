package archtest

import (
	"testing"

	"novanet/internal/config"
	"novanet/internal/model"
	"novanet/internal/plan"
)

// TestDefaultsAgree: config's `default` tags and the constants in model
// spell the same defaults (a tag cannot name a constant).
func TestDefaultsAgree(t *testing.T) {
	c, err := config.Load(config.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	if c.DHCPLeaseTime != model.DefaultDHCPLeaseTime || plan.DefaultLeaseTime != model.DefaultDHCPLeaseTime {
		t.Errorf("dhcp_lease_time: config %d, plan %d, model %d", c.DHCPLeaseTime, plan.DefaultLeaseTime, model.DefaultDHCPLeaseTime)
	}
	if c.DHCPDomain != model.DefaultDHCPDomain || plan.DefaultDomain != model.DefaultDHCPDomain {
		t.Errorf("dhcp_domain: config %q, plan %q, model %q", c.DHCPDomain, plan.DefaultDomain, model.DefaultDHCPDomain)
	}
	if c.MetadataPort != model.DefaultMetadataPort || plan.DefaultMetadataPort != model.DefaultMetadataPort {
		t.Errorf("metadata_port: config %d, plan %d, model %d", c.MetadataPort, plan.DefaultMetadataPort, model.DefaultMetadataPort)
	}
}
