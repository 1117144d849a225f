package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"novanet/internal/model"
	"novanet/internal/wire"
)

// getRaw returns the body of GET path with token, for checks on the
// bytes themselves.
func getRaw(t *testing.T, e *env, token, path string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set("X-Auth-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

// TestWireRoundTrip sends every nova view through the real server and
// reads it back with the client (or, for views the client reads from /v1,
// with the wire type), and checks that nothing is lost or invented.
func TestWireRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqliteURL(t))

	// Empty lists are [], never null.
	for path, want := range map[string]string{
		"/v2.1/os-floating-ips":                 `{"floating_ips":[]}`,
		"/v2.1/os-floating-ip-pools":            `{"floating_ip_pools":[]}`,
		"/v2.1/os-floating-ips-bulk":            `{"floating_ip_info":[]}`,
		"/v2.1/os-networks":                     `{"networks":[]}`,
		"/v2.1/os-tenant-networks":              `{"networks":[]}`,
		"/v2.1/os-security-group-default-rules": `{"security_group_default_rules":[]}`,
	} {
		if got := strings.TrimSpace(string(getRaw(t, e, adminToken, path))); got != want {
			t.Errorf("GET %s = %s, want %s", path, got, want)
		}
	}

	// Networks: the /v1 model through each os-networks view.
	nets, err := e.admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24",
		Bridge: "br100", Host: "host-a", DNS1: "192.0.2.53", MTU: 1400, ProjectID: "proj-a"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.admin.GetNetwork(ctx, nets[0].UUID)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, getRaw(t, e, adminToken, "/v2.1/os-networks/"+n.UUID), &wire.NetworkOne[wire.Network]{}, &wire.NetworkOne[wire.Network]{Network: wire.NewNetwork(n)})
	roundTrip(t, getRaw(t, e, projToken, "/v2.1/os-networks/"+n.UUID), &wire.NetworkOne[wire.ProjectNetwork]{}, &wire.NetworkOne[wire.ProjectNetwork]{Network: wire.NewProjectNetwork(n)})
	roundTrip(t, getRaw(t, e, projToken, "/v2.1/os-tenant-networks/"+n.UUID), &wire.NetworkOne[wire.TenantNetwork]{}, &wire.NetworkOne[wire.TenantNetwork]{Network: wire.NewTenantNetwork(n)})

	// Floating IPs: the /v1 model back through os-floating-ips and -bulk.
	if _, err := e.admin.CreateFloatingRange(ctx, model.FloatingRangeRequest{IPRange: "203.0.113.0/30", Pool: "public", Interface: "eth0"}); err != nil {
		t.Fatal(err)
	}
	want, err := e.admin.AllocateFloatingIPFor(ctx, "proj-a", "public")
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.proj.GetFloatingIP(ctx, want.Address.String())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("os-floating-ips read back %+v, want %+v", got, want)
	}
	all, err := e.admin.ListAllFloatingIPs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var bulk model.FloatingIP
	for _, f := range all {
		if f.ID == want.ID {
			bulk = f
		}
	}
	if bulk != want { // the bulk view has no auto_assigned; want's is false
		t.Errorf("os-floating-ips-bulk read back %+v, want %+v", bulk, want)
	}
	if pools, err := e.proj.ListFloatingPools(ctx); err != nil || !reflect.DeepEqual(pools, []string{"public"}) {
		t.Errorf("pools = %v, %v; want [public]", pools, err)
	}

	// Security groups: a group without rules is [], and rules read back
	// as created.
	g, err := e.proj.CreateSecurityGroup(ctx, "web", "web servers")
	if err != nil {
		t.Fatal(err)
	}
	if body := string(getRaw(t, e, projToken, "/v2.1/os-security-groups")); !strings.Contains(body, `"rules":[]`) || strings.Contains(body, "null") {
		t.Errorf("os-security-groups with a rule-less group = %s, want \"rules\":[] and no null", body)
	}
	var rules []model.SecurityGroupRule
	for _, r := range []model.SecurityGroupRule{
		{GroupID: g.ID, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: mustPrefix(t, "192.0.2.0/24")},
		{GroupID: g.ID, Protocol: "icmp", FromPort: -1, ToPort: -1, SourceGroupID: g.ID},
		{GroupID: g.ID, CIDR: mustPrefix(t, "198.51.100.0/24")},
	} {
		out, err := e.proj.CreateSecurityGroupRule(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		r.ID = out.ID
		if out != r {
			t.Errorf("rule read back %+v, want %+v", out, r)
		}
		rules = append(rules, out)
	}
	g2, err := e.proj.GetSecurityGroup(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	g.Rules = rules
	if !reflect.DeepEqual(g2, g) {
		t.Errorf("group read back %+v, want %+v", g2, g)
	}

	// Fixed IPs: os-fixed-ips against the /v1 listing.
	d, err := e.admin.BootInstance(ctx, model.BootRequest{Hostname: "vm1", ProjectID: "proj-a", Host: "host-a", Network: "private", SecurityGroups: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	addr := d.FixedIPs[0].Address
	fi, err := e.admin.GetFixedIP(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Address != addr.String() || fi.CIDR != "10.0.0.0/24" || fi.InstanceUUID != d.UUID || !fi.Allocated || fi.Hostname != "vm1" {
		t.Errorf("os-fixed-ips read back %+v, want %s of %s in 10.0.0.0/24, allocated, hostname vm1", fi, addr, d.UUID)
	}
}

// roundTrip decodes body into into and compares it with want.
func roundTrip(t *testing.T, body []byte, into, want any) {
	t.Helper()
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if !reflect.DeepEqual(into, want) {
		t.Errorf("read back %+v,\nwant %+v", into, want)
	}
}

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
