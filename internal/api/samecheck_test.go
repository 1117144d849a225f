package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"novanet/internal/model"
)

// TestOneValidation: a bad MTU, bridge name, MAC or port (or a boot for
// another project) is refused with the same words whether it reaches the
// manager directly, through the native API or through the OpenStack API,
// since every layer asks the model's one check. Each case names what the
// message must say, so a check that stopped refusing, or that answered
// differently per layer, fails.
func TestOneValidation(t *testing.T) {
	e := newEnv(t, sqliteURL(t))
	ctx := context.Background()
	if _, err := e.admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100", Host: "host-a"}); err != nil {
		t.Fatal(err)
	}
	web, err := e.proj.CreateSecurityGroup(ctx, "web", "")
	if err != nil {
		t.Fatal(err)
	}
	proj := model.Scope{ProjectID: "proj-a"}
	net := func(f func(*model.NetworkCreateRequest)) func() error {
		req := model.NetworkCreateRequest{Label: "x", FixedRangeV4: "10.9.0.0/24", Bridge: "br9", Host: "host-net"}
		f(&req)
		return func() error { _, err := e.m.CreateNetworks(ctx, req); return err }
	}
	rule := func(proto string, from, to int) func() error {
		return func() error {
			_, err := e.m.CreateSecurityGroupRule(ctx, proj, model.SecurityGroupRule{GroupID: web.ID, Protocol: proto, FromPort: from, ToPort: to})
			return err
		}
	}
	defaultRule := func(proto string, from, to int) func() error {
		return func() error {
			_, err := e.m.CreateDefaultRule(ctx, model.SecurityGroupRule{Protocol: proto, FromPort: from, ToPort: to, CIDR: netip.MustParsePrefix("0.0.0.0/0")})
			return err
		}
	}
	lease := func(mac string) func() error {
		return func() error {
			return e.m.RecordLease(ctx, model.LeaseEvent{Action: model.LeaseAdd, MAC: mac, Address: netip.MustParseAddr("10.0.0.5"), Host: "host-a"})
		}
	}
	type request struct{ method, path, token, body string }
	for _, c := range []struct {
		name    string
		manager func() error
		http    []request
		want    string
		kind    model.ErrorKind // ErrInvalid (400) when zero
	}{
		{"mtu too small", net(func(r *model.NetworkCreateRequest) { r.MTU = 100 }), []request{
			{"POST", "/v1/networks", adminToken, `{"label":"x","fixed_range_v4":"10.9.0.0/24","bridge":"br9","host":"host-net","mtu":100}`},
			{"POST", "/v2.1/os-networks", adminToken, `{"network":{"label":"x","cidr":"10.9.0.0/24","bridge":"br9","host":"host-net","mtu":"100"}}`},
		}, "mtu 100 is outside 576-9216: give a value in that range", 0},
		{"mtu above the switches", net(func(r *model.NetworkCreateRequest) { r.MTU = 65535 }), []request{
			{"POST", "/v1/networks", adminToken, `{"label":"x","fixed_range_v4":"10.9.0.0/24","bridge":"br9","host":"host-net","mtu":65535}`},
			{"POST", "/v2.1/os-networks", adminToken, `{"network":{"label":"x","cidr":"10.9.0.0/24","bridge":"br9","host":"host-net","mtu":65535}}`},
		}, "mtu 65535 is outside 576-9216", 0},
		{"bridge with slash", net(func(r *model.NetworkCreateRequest) { r.Bridge = "br/9" }), []request{
			{"POST", "/v1/networks", adminToken, `{"label":"x","fixed_range_v4":"10.9.0.0/24","bridge":"br/9","host":"host-net"}`},
			{"POST", "/v2.1/os-networks", adminToken, `{"network":{"label":"x","cidr":"10.9.0.0/24","bridge":"br/9","host":"host-net"}}`},
		}, `bridge "br/9" may not contain '/'`, 0},
		{"bridge too long", net(func(r *model.NetworkCreateRequest) { r.Bridge = "br0123456789abcd" }), []request{
			{"POST", "/v1/networks", adminToken, `{"label":"x","fixed_range_v4":"10.9.0.0/24","bridge":"br0123456789abcd","host":"host-net"}`},
			{"POST", "/v2.1/os-networks", adminToken, `{"network":{"label":"x","cidr":"10.9.0.0/24","bridge":"br0123456789abcd","host":"host-net"}}`},
		}, "at most 15 bytes", 0},
		{"malformed MAC", lease("fa:16:3e:zz:00:01"), []request{
			{"POST", "/v1/leases", agentAToken, `{"action":"add","mac":"fa:16:3e:zz:00:01","address":"10.0.0.5","host":"host-a"}`},
		}, `MAC address "fa:16:3e:zz:00:01" is malformed: use six colon-separated hex pairs`, 0},
		{"multicast MAC", lease("01:00:5e:00:00:01"), []request{
			{"POST", "/v1/leases", agentAToken, `{"action":"add","mac":"01:00:5e:00:00:01","address":"10.0.0.5","host":"host-a"}`},
		}, "MAC address 01:00:5e:00:00:01 is a multicast or broadcast address", 0},
		{"port out of range", rule("udp", 0, 70000), []request{
			{"POST", "/v2.1/os-security-group-rules", projToken, `{"security_group_rule":{"parent_group_id":"` + itoa(web.ID) + `","ip_protocol":"udp","from_port":0,"to_port":70000}}`},
		}, "udp ports 0-70000 are not between 1 and 65535", 0},
		{"inverted ports", rule("tcp", 80, 22), []request{
			{"POST", "/v2.1/os-security-group-rules", projToken, `{"security_group_rule":{"parent_group_id":"` + itoa(web.ID) + `","ip_protocol":"tcp","from_port":80,"to_port":22}}`},
		}, "from_port 80 is greater than to_port 22", 0},
		{"tcp without ports", rule("tcp", 0, 0), []request{
			{"POST", "/v2.1/os-security-group-rules", projToken, `{"security_group_rule":{"parent_group_id":"` + itoa(web.ID) + `","ip_protocol":"tcp","cidr":"0.0.0.0/0"}}`},
		}, "a tcp rule needs ports: give from_port and to_port", 0},
		{"icmp type out of range", rule("icmp", 256, -1), []request{
			{"POST", "/v2.1/os-security-group-rules", projToken, `{"security_group_rule":{"parent_group_id":"` + itoa(web.ID) + `","ip_protocol":"icmp","from_port":256}}`},
		}, "icmp type 256 and code -1 are not between -1 and 255", 0},
		{"default rule port", defaultRule("tcp", 22, 65536), []request{
			{"POST", "/v2.1/os-security-group-default-rules", adminToken, `{"security_group_default_rule":{"ip_protocol":"tcp","from_port":22,"to_port":65536,"cidr":"0.0.0.0/0"}}`},
		}, "tcp ports 22-65536 are not between 1 and 65535", 0},
		{"boot in another project", func() error {
			_, err := e.m.BootInstance(ctx, proj, model.BootRequest{Host: "host-a", ProjectID: "proj-b"})
			return err
		}, []request{
			{"POST", "/v1/instances", projToken, `{"host":"host-a","project_id":"proj-b"}`},
		}, `project "proj-a" cannot boot in project "proj-b": leave project_id empty`, model.ErrForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			kind, wantStatus := c.kind, http.StatusForbidden
			if kind == 0 {
				kind, wantStatus = model.ErrInvalid, http.StatusBadRequest
			}
			merr := c.manager()
			if !model.IsKind(merr, kind) || !strings.Contains(merr.Error(), c.want) {
				t.Fatalf("manager: %v; want a %v error saying %q", merr, kind, c.want)
			}
			for _, r := range c.http {
				status, msg := httpError(t, e, r.method, r.path, r.token, r.body)
				if status != wantStatus || msg != merr.Error() {
					t.Errorf("%s %s: %d %q; want %d with the manager's %q", r.method, r.path, status, msg, wantStatus, merr.Error())
				}
			}
		})
	}
}

// httpError sends one request and returns its status and nova-shaped
// error message.
func httpError(t *testing.T, e *env, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var shaped map[string]struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(data, &shaped); err != nil || len(shaped) != 1 {
		t.Fatalf("%s %s: status %d, body %q is not nova's error shape", method, path, resp.StatusCode, data)
	}
	for _, d := range shaped {
		return resp.StatusCode, d.Message
	}
	return resp.StatusCode, ""
}

func itoa(id int64) string { b, _ := json.Marshal(id); return string(b) }
