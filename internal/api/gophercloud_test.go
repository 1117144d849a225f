package api_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/defsecrules"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/floatingips"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/networks"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/secgroups"
	"github.com/gophercloud/gophercloud/openstack/compute/v2/extensions/tenantnetworks"

	"novanet/internal/model"
)

// compute returns a gophercloud compute client for the server with a
// token and no Keystone.
func compute(url, token string) *gophercloud.ServiceClient {
	pc := &gophercloud.ProviderClient{TokenID: token}
	return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: url + "/v2.1/"}
}

// TestGophercloud drives the server with the real OpenStack Go SDK.
func TestGophercloud(t *testing.T) {
	e := newEnv(t, sqliteURL(t))
	ctx := context.Background()
	nets, err := e.admin.CreateNetworks(ctx, model.NetworkCreateRequest{
		Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100", Host: "host-a",
		DNS1: "192.0.2.53",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateFloatingRange(ctx, model.FloatingRangeRequest{IPRange: "203.0.113.0/29", Pool: "nova", Interface: "eth0"}); err != nil {
		t.Fatal(err)
	}
	inst, err := e.proj.BootInstance(ctx, model.BootRequest{Hostname: "vm1", Host: "host-a"})
	if err != nil {
		t.Fatal(err)
	}

	admin := compute(e.srv.URL, adminToken)
	proj := compute(e.srv.URL, projToken)

	// os-networks
	pages, err := networks.List(admin).AllPages()
	if err != nil {
		t.Fatal(err)
	}
	gnets, err := networks.ExtractNetworks(pages)
	if err != nil || len(gnets) != 1 {
		t.Fatalf("networks.List = %v, %v", gnets, err)
	}
	gn := gnets[0]
	if gn.ID != nets[0].UUID || gn.CIDR != "10.0.0.0/24" || gn.Label != "private" || gn.Bridge != "br100" ||
		gn.Netmask != "255.255.255.0" || gn.Gateway != nets[0].Gateway.String() || gn.DNS1 != "192.0.2.53" ||
		time.Time(gn.CreatedAt).IsZero() {
		t.Errorf("network as gophercloud reads it: %+v", gn)
	}
	got, err := networks.Get(admin, nets[0].UUID).Extract()
	if err != nil || got.ID != nets[0].UUID || got.DHCPStart != nets[0].DHCPStart.String() {
		t.Errorf("networks.Get = %+v, %v", got, err)
	}
	if _, err := networks.Get(admin, "no-such-network").Extract(); !is404(err) {
		t.Errorf("networks.Get(unknown) err = %v, want 404", err)
	}

	// os-tenant-networks
	pages, err = tenantnetworks.List(proj).AllPages()
	if err != nil {
		t.Fatal(err)
	}
	tnets, err := tenantnetworks.ExtractNetworks(pages)
	if err != nil || len(tnets) != 1 || tnets[0].CIDR != "10.0.0.0/24" || tnets[0].Name != "private" {
		t.Errorf("tenantnetworks.List = %+v, %v", tnets, err)
	}
	tn, err := tenantnetworks.Get(proj, nets[0].UUID).Extract()
	if err != nil || tn.ID != nets[0].UUID {
		t.Errorf("tenantnetworks.Get = %+v, %v", tn, err)
	}

	// os-floating-ips
	fip, err := floatingips.Create(proj, floatingips.CreateOpts{Pool: "nova"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if a, err := netip.ParseAddr(fip.IP); err != nil || !netip.MustParsePrefix("203.0.113.0/29").Contains(a) || fip.Pool != "nova" || fip.ID == "" {
		t.Errorf("allocated floating IP %+v", fip)
	}
	pages, err = floatingips.List(proj).AllPages()
	if err != nil {
		t.Fatal(err)
	}
	fips, err := floatingips.ExtractFloatingIPs(pages)
	if err != nil || len(fips) != 1 || fips[0].IP != fip.IP {
		t.Errorf("floatingips.List = %+v, %v", fips, err)
	}
	if err := floatingips.AssociateInstance(proj, inst.UUID, floatingips.AssociateOpts{FloatingIP: fip.IP}).ExtractErr(); err != nil {
		t.Fatalf("associate: %v", err)
	}
	g, err := floatingips.Get(proj, fip.ID).Extract()
	if err != nil || g.InstanceID != inst.UUID || g.FixedIP != inst.FixedIPs[0].Address.String() {
		t.Errorf("after associate: %+v, %v (instance %s fixed %s)", g, err, inst.UUID, inst.FixedIPs[0].Address)
	}
	if err := floatingips.DisassociateInstance(proj, inst.UUID, floatingips.DisassociateOpts{FloatingIP: fip.IP}).ExtractErr(); err != nil {
		t.Fatalf("disassociate: %v", err)
	}
	g, err = floatingips.Get(proj, fip.ID).Extract()
	if err != nil || g.InstanceID != "" || g.FixedIP != "" {
		t.Errorf("after disassociate: %+v, %v", g, err)
	}
	if _, err := floatingips.Get(compute(e.srv.URL, projBToken), fip.ID).Extract(); !is404(err) {
		t.Errorf("another project's floating IP: err = %v, want 404", err)
	}
	if err := floatingips.Delete(proj, fip.ID).ExtractErr(); err != nil {
		t.Fatalf("release: %v", err)
	}
	if _, err := floatingips.Get(proj, fip.ID).Extract(); !is404(err) {
		t.Errorf("released floating IP still visible: %v", err)
	}

	// os-security-groups and rules
	sg, err := secgroups.Create(proj, secgroups.CreateOpts{Name: "web", Description: "web servers"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if sg.Name != "web" || sg.TenantID != "proj-a" || sg.ID == "" {
		t.Errorf("created group %+v", sg)
	}
	pages, err = secgroups.List(proj).AllPages()
	if err != nil {
		t.Fatal(err)
	}
	sgs, err := secgroups.ExtractSecurityGroups(pages)
	if err != nil || !hasGroup(sgs, "web") || !hasGroup(sgs, "default") {
		t.Errorf("secgroups.List = %+v, %v (want web and default)", sgs, err)
	}
	desc := "front end"
	up, err := secgroups.Update(proj, sg.ID, secgroups.UpdateOpts{Name: "www", Description: &desc}).Extract()
	if err != nil || up.Name != "www" || up.Description != "front end" {
		t.Errorf("update = %+v, %v", up, err)
	}
	rule, err := secgroups.CreateRule(proj, secgroups.CreateRuleOpts{ParentGroupID: sg.ID, FromPort: 22, ToPort: 22, IPProtocol: "tcp", CIDR: "198.51.100.0/24"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if rule.ParentGroupID != sg.ID || rule.FromPort != 22 || rule.IPProtocol != "tcp" || rule.IPRange.CIDR != "198.51.100.0/24" {
		t.Errorf("rule %+v", rule)
	}
	var defID string
	for _, s := range sgs {
		if s.Name == "default" {
			defID = s.ID
		}
	}
	grule, err := secgroups.CreateRule(proj, secgroups.CreateRuleOpts{ParentGroupID: sg.ID, FromPort: 80, ToPort: 80, IPProtocol: "tcp", FromGroupID: defID}).Extract()
	if err != nil || grule.Group.Name != "default" {
		t.Errorf("source-group rule %+v, %v", grule, err)
	}
	got2, err := secgroups.Get(proj, sg.ID).Extract()
	if err != nil || len(got2.Rules) != 2 {
		t.Errorf("get group = %+v, %v (want 2 rules)", got2, err)
	}
	if err := secgroups.AddServer(proj, inst.UUID, "www").ExtractErr(); err != nil {
		t.Fatalf("add server to group: %v", err)
	}
	pages, err = secgroups.ListByServer(proj, inst.UUID).AllPages()
	if err != nil {
		t.Fatal(err)
	}
	bys, _ := secgroups.ExtractSecurityGroups(pages)
	if !hasGroup(bys, "www") {
		t.Errorf("server's groups = %+v, want www", bys)
	}
	if err := secgroups.RemoveServer(proj, inst.UUID, "www").ExtractErr(); err != nil {
		t.Fatalf("remove server from group: %v", err)
	}
	if err := secgroups.DeleteRule(proj, rule.ID).ExtractErr(); err != nil {
		t.Fatalf("delete rule: %v", err)
	}
	if err := secgroups.DeleteRule(proj, grule.ID).ExtractErr(); err != nil {
		t.Fatalf("delete rule: %v", err)
	}
	if err := secgroups.Delete(proj, sg.ID).ExtractErr(); err != nil {
		t.Fatalf("delete group: %v", err)
	}
	if _, err := secgroups.Get(proj, sg.ID).Extract(); !is404(err) {
		t.Errorf("deleted group: err = %v, want 404", err)
	}

	// os-security-group-default-rules (admin)
	dr, err := defsecrules.Create(admin, defsecrules.CreateOpts{IPProtocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "0.0.0.0/0"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if dr.FromPort != 22 || dr.IPProtocol != "tcp" || dr.ID == "" {
		t.Errorf("default rule %+v", dr)
	}
	pages, err = defsecrules.List(admin).AllPages()
	if err != nil {
		t.Fatal(err)
	}
	drs, err := defsecrules.ExtractDefaultRules(pages)
	if err != nil || len(drs) != 1 {
		t.Errorf("default rules = %+v, %v", drs, err)
	}
	if d2, err := defsecrules.Get(admin, dr.ID).Extract(); err != nil || d2.ID != dr.ID {
		t.Errorf("get default rule = %+v, %v", d2, err)
	}
	if _, err := defsecrules.Create(proj, defsecrules.CreateOpts{IPProtocol: "tcp", FromPort: 1, ToPort: 2}).Extract(); !isCode(err, 403) {
		t.Errorf("project token creating a default rule: err = %v, want 403", err)
	}
	if err := defsecrules.Delete(admin, dr.ID).ExtractErr(); err != nil {
		t.Fatalf("delete default rule: %v", err)
	}
}

func hasGroup(gs []secgroups.SecurityGroup, name string) bool {
	for _, g := range gs {
		if g.Name == name {
			return true
		}
	}
	return false
}

func is404(err error) bool { return isCode(err, 404) }

func isCode(err error, code int) bool {
	var ec gophercloud.ErrUnexpectedResponseCode
	switch e := err.(type) {
	case gophercloud.ErrDefault404:
		return code == 404
	case gophercloud.ErrDefault403:
		return code == 403
	case gophercloud.ErrDefault400:
		return code == 400
	case gophercloud.ErrUnexpectedResponseCode:
		ec = e
		return ec.Actual == code
	}
	return false
}
