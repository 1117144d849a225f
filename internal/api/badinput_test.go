package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"novanet/internal/model"
	"novanet/internal/store/pgtest"
)

type badCase struct {
	name   string
	method string
	path   string
	token  string
	body   string
	status int
	want   string // substring of the error message
}

// seed creates the state every bad input runs against and returns an
// instance uuid of proj-a and an address allocated to it, and a floating
// IP of proj-a.
func seed(t *testing.T, e *env) (uuid, fixed, floating string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100", Host: "host-a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateFloatingRange(ctx, model.FloatingRangeRequest{IPRange: "203.0.113.0/29", Pool: "nova"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateFloatingRange(ctx, model.FloatingRangeRequest{IPRange: "198.51.100.7/32", Pool: "tiny"}); err != nil {
		t.Fatal(err)
	}
	d, err := e.proj.BootInstance(ctx, model.BootRequest{Hostname: "vm1", Host: "host-a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.projB.AllocateFloatingIP(ctx, "tiny"); err != nil {
		t.Fatal(err)
	}
	f, err := e.proj.AllocateFloatingIP(ctx, "nova")
	if err != nil {
		t.Fatal(err)
	}
	// First use of each project creates its default group: do it now so
	// the reads below change nothing.
	for _, c := range []interface {
		ListSecurityGroups(context.Context, bool) ([]model.SecurityGroup, error)
	}{e.admin, e.proj, e.projB} {
		if _, err := c.ListSecurityGroups(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	return d.UUID, d.FixedIPs[0].Address.String(), f.Address.String()
}

func badCases(uuid, fixed, floating string) []badCase {
	A, P, B, G := adminToken, projToken, projBToken, agentAToken
	huge := `{"label":"` + strings.Repeat("x", 1<<20) + `"}`
	return []badCase{
		// networks
		{"cidr prefix too long", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.1.0.0/33"}`, 400, "not an IPv4 CIDR"},
		{"cidr garbage", "POST", "/v1/networks", A, `{"fixed_range_v4":"ten.0.0.0/8"}`, 400, "not an IPv4 CIDR"},
		{"cidr ipv6", "POST", "/v1/networks", A, `{"fixed_range_v4":"2001:db8::/64"}`, 400, "not an IPv4 CIDR"},
		{"cidr overlaps", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"10.0.0.128/25"}`, 409, "10.0.0"},
		{"nova cidr overlaps", "POST", "/v2.1/os-networks", A, `{"network":{"label":"x","cidr":"10.0.0.0/16","bridge":"br1","host":"host-net"}}`, 409, "10.0.0"},
		{"negative size", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.1.0.0/24","network_size":-1}`, 400, "must not be negative"},
		{"size too small", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"10.1.0.0/24","network_size":2}`, 400, "network_size"},
		{"too many networks", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"10.1.0.0/24","num_networks":4,"network_size":256}`, 400, "10.1.0.0/24"},
		{"bridge too long", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.1.0.0/24","bridge":"averyveryverylongbridge"}`, 400, "longer than 15 bytes"},
		{"bridge with slash", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.1.0.0/24","bridge":"br/1"}`, 400, "not a valid interface name"},
		{"unknown kind", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.1.0.0/24","kind":"ovs"}`, 400, `kind "ovs" is unknown`},
		{"bad dns", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.1.0.0/24","dns1":"8.8.8"}`, 400, `dns1 "8.8.8" is not an IPv4 address`},
		{"gateway outside", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"10.1.0.0/24","gateway":"192.0.2.1"}`, 400, "192.0.2.1"},
		{"dhcp_start outside", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"10.1.0.0/24","dhcp_start":"10.2.0.5"}`, 400, "10.2.0.5"},
		{"vlan out of range", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.1.0.0/24","kind":"vlan","vlan":5000}`, 400, "vlan 5000 is outside"},
		{"mtu too small", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.1.0.0/24","mtu":100}`, 400, "mtu 100"},
		{"project creates network", "POST", "/v1/networks", P, `{"fixed_range_v4":"10.1.0.0/24"}`, 403, "needs an admin token"},
		{"project deletes network", "DELETE", "/v2.1/os-networks/private", P, ``, 403, "needs an admin token"},
		{"delete network in use", "DELETE", "/v1/networks/private", A, ``, 409, "private"},
		{"unknown network", "GET", "/v2.1/os-networks/nope", A, ``, 404, "nope"},
		{"nova create without cidr", "POST", "/v2.1/os-networks", A, `{"network":{"label":"x"}}`, 400, `"cidr" is required`},
		// auth and body handling
		{"missing token", "GET", "/v2.1/os-networks", "", ``, 401, "missing X-Auth-Token"},
		{"unknown token", "GET", "/v2.1/os-networks", unknownToken, ``, 401, "unknown token"},
		{"malformed json", "POST", "/v1/networks", A, `{"fixed_range_v4":`, 400, "malformed request body"},
		{"wrong type", "POST", "/v1/networks", A, `{"fixed_range_v4":5}`, 400, `field "fixed_range_v4" must be a string`},
		{"unknown field", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.1.0.0/24","colour":"red"}`, 400, `unknown field "colour"`},
		{"trailing data", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.1.0.0/24"} {}`, 400, "trailing data"},
		{"empty body", "POST", "/v1/networks", A, ``, 400, "missing JSON request body"},
		{"oversized body", "POST", "/v1/networks", A, huge, 413, "larger than 1048576 bytes"},
		{"project in url mismatch", "GET", "/v2.1/proj-b/os-floating-ips", P, ``, 403, `names project "proj-b"`},
		{"unknown endpoint", "GET", "/v2.1/os-cells", A, ``, 404, "no such endpoint"},
		// instances
		{"boot without host", "POST", "/v1/instances", P, `{"hostname":"vm2"}`, 400, `"host" is required`},
		{"boot bad uuid", "POST", "/v1/instances", P, `{"uuid":"not-a-uuid","host":"host-a"}`, 400, "not a UUID"},
		{"boot address outside", "POST", "/v1/instances", A, `{"hostname":"vm9","host":"host-a","fixed_address":"10.9.0.5","project_id":"proj-a"}`, 400, "10.9.0.5"},
		{"boot address taken", "POST", "/v1/instances", A, `{"hostname":"vm9","host":"host-a","fixed_address":"` + fixed + `","project_id":"proj-a"}`, 409, fixed},
		{"boot bad address", "POST", "/v1/instances", A, `{"host":"host-a","fixed_address":"10.0.0.300"}`, 400, "malformed request body"},
		{"boot unknown network", "POST", "/v1/instances", P, `{"hostname":"vm9","host":"host-a","network":"nope"}`, 400, "nope"},
		{"boot unknown group", "POST", "/v1/instances", P, `{"hostname":"vm9","host":"host-a","security_groups":["nope"]}`, 400, "nope"},
		{"boot in other project", "POST", "/v1/instances", P, `{"host":"host-a","project_id":"proj-b"}`, 403, `cannot boot in project "proj-b"`},
		{"agent boots", "POST", "/v1/instances", G, `{"host":"host-a"}`, 403, "agent tokens may only use"},
		{"delete unknown instance", "DELETE", "/v1/instances/00000000-0000-0000-0000-000000000000", P, ``, 404, "00000000-0000-0000-0000-000000000000"},
		{"other project's instance", "GET", "/v1/instances/" + uuid, B, ``, 404, uuid},
		{"other project deletes instance", "DELETE", "/v1/instances/" + uuid, B, ``, 404, uuid},
		// floating IPs
		{"pool exhausted", "POST", "/v2.1/os-floating-ips", P, `{"pool":"tiny"}`, 409, "tiny"},
		{"unknown pool", "POST", "/v2.1/os-floating-ips", P, `{"pool":"nope"}`, 404, "nope"},
		{"release unknown", "DELETE", "/v2.1/os-floating-ips/99999", P, ``, 404, "99999"},
		{"release other project's", "DELETE", "/v2.1/os-floating-ips/" + floating, B, ``, 404, floating},
		{"associate bad address", "POST", "/v2.1/servers/" + uuid + "/action", P, `{"addFloatingIp":{"address":"203.0.113.999"}}`, 400, "not an IPv4 address"},
		{"associate unallocated", "POST", "/v2.1/servers/" + uuid + "/action", P, `{"addFloatingIp":{"address":"203.0.113.6"}}`, 404, "203.0.113.6"},
		{"associate to unknown instance", "POST", "/v2.1/servers/00000000-0000-0000-0000-000000000001/action", P, `{"addFloatingIp":{"address":"` + floating + `"}}`, 404, "00000000-0000-0000-0000-000000000001"},
		{"unknown server action", "POST", "/v2.1/servers/" + uuid + "/action", P, `{"reboot":{"type":"HARD"}}`, 400, `server action "reboot"`},
		{"two server actions", "POST", "/v2.1/servers/" + uuid + "/action", P, `{"addSecurityGroup":{"name":"default"},"removeSecurityGroup":{"name":"default"}}`, 400, "exactly one action"},
		{"bulk bad range", "POST", "/v2.1/os-floating-ips-bulk", A, `{"floating_ips_bulk_create":{"ip_range":"203.0.113.0/40"}}`, 400, "203.0.113.0/40"},
		{"bulk overlapping range", "POST", "/v2.1/os-floating-ips-bulk", A, `{"floating_ips_bulk_create":{"ip_range":"203.0.113.4/30"}}`, 409, "203.0.113"},
		{"bulk by project", "POST", "/v2.1/os-floating-ips-bulk", P, `{"floating_ips_bulk_create":{"ip_range":"192.0.2.0/30"}}`, 403, "needs an admin token"},
		{"bulk delete without range", "PUT", "/v2.1/os-floating-ips-bulk/delete", A, `{}`, 400, `missing "ip_range"`},
		// fixed IPs
		{"fixed bad address", "GET", "/v2.1/os-fixed-ips/10.0.0.999", A, ``, 400, "not an IPv4 address"},
		{"fixed outside networks", "GET", "/v2.1/os-fixed-ips/192.0.2.1", A, ``, 404, "192.0.2.1"},
		{"fixed reserve by project", "POST", "/v2.1/os-fixed-ips/10.0.0.9/action", P, `{"reserve":null}`, 403, "needs an admin token"},
		{"fixed unknown action", "POST", "/v2.1/os-fixed-ips/10.0.0.9/action", A, `{"explode":null}`, 400, "unknown fixed IP action"},
		// security groups
		{"group without name", "POST", "/v2.1/os-security-groups", P, `{"security_group":{"description":"x"}}`, 400, `with a "name"`},
		{"duplicate group", "POST", "/v2.1/os-security-groups", P, `{"security_group":{"name":"default","description":"x"}}`, 409, "default"},
		{"group bad id", "GET", "/v2.1/os-security-groups/abc", P, ``, 404, "ids are positive integers"},
		{"rule bad cidr", "POST", "/v2.1/os-security-group-rules", P, `{"security_group_rule":{"parent_group_id":"1","ip_protocol":"tcp","from_port":22,"to_port":22,"cidr":"10.0.0.0/99"}}`, 400, "not an IPv4 CIDR"},
		{"rule inverted ports", "POST", "/v2.1/os-security-group-rules", P, `{"security_group_rule":{"parent_group_id":"1","ip_protocol":"tcp","from_port":80,"to_port":22}}`, 400, "from_port 80 is greater than to_port 22"},
		{"rule port out of range", "POST", "/v2.1/os-security-group-rules", P, `{"security_group_rule":{"parent_group_id":"1","ip_protocol":"udp","from_port":0,"to_port":70000}}`, 400, "between 1 and 65535"},
		{"rule protocol", "POST", "/v2.1/os-security-group-rules", P, `{"security_group_rule":{"parent_group_id":"1","ip_protocol":"gre"}}`, 400, `ip_protocol "gre" is not supported`},
		{"rule port not a number", "POST", "/v2.1/os-security-group-rules", P, `{"security_group_rule":{"parent_group_id":"1","ip_protocol":"tcp","from_port":"ssh","to_port":22}}`, 400, `"ssh" is not an integer`},
		{"rule in unknown group", "POST", "/v2.1/os-security-group-rules", P, `{"security_group_rule":{"parent_group_id":"99999","ip_protocol":"tcp","from_port":22,"to_port":22}}`, 404, "99999"},
		{"default rule by project", "POST", "/v2.1/os-security-group-default-rules", P, `{"security_group_default_rule":{"ip_protocol":"tcp","from_port":22,"to_port":22}}`, 403, "needs an admin token"},
		// agents
		{"agent reads other host", "GET", "/v1/hosts/host-b/state", G, ``, 403, `agent of host "host-b"`},
		{"project reads host state", "GET", "/v1/hosts/host-a/state", P, ``, 403, "only an admin or the agent"},
		{"lease bad mac", "POST", "/v1/leases", G, `{"action":"add","mac":"fa:16:3e:zz:00:01","address":"10.0.0.5","host":"host-a"}`, 400, "MAC address"},
		{"lease other host", "POST", "/v1/leases", G, `{"action":"add","mac":"fa:16:3e:00:00:01","address":"10.0.0.5","host":"host-b"}`, 403, `cannot record leases for host "host-b"`},
		{"lease bad action", "POST", "/v1/leases", G, `{"action":"renew","mac":"fa:16:3e:00:00:01","address":"10.0.0.5","host":"host-a"}`, 400, `lease action "renew"`},
		{"watch bad after", "GET", "/v1/hosts/host-a/watch?after=-1", G, ``, 400, "must be a revision number"},
		{"watch bad timeout", "GET", "/v1/hosts/host-a/watch?timeout=soon", G, ``, 400, "must be a duration"},
		{"leases without bridge", "GET", "/v1/hosts/host-a/leases", G, ``, 400, "?bridge= is required"},
	}
}

func runBadInputs(t *testing.T, dbURL string) {
	e := newEnv(t, dbURL)
	uuid, fixed, floating := seed(t, e)
	ctx := context.Background()
	cases := badCases(uuid, fixed, floating)
	if len(cases) < 40 {
		t.Fatalf("only %d bad inputs", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, err := e.st.Dump(ctx)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, strings.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("X-Auth-Token", tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var body map[string]struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(data, &body); err != nil || len(body) != 1 {
				t.Fatalf("status %d, body %q is not nova's error shape", resp.StatusCode, data)
			}
			for _, d := range body {
				if resp.StatusCode != tc.status || d.Code != tc.status || !strings.Contains(d.Message, tc.want) {
					t.Errorf("%s %s: status %d (code %d) %q; want %d containing %q", tc.method, tc.path, resp.StatusCode, d.Code, d.Message, tc.status, tc.want)
				}
			}
			after, err := e.st.Dump(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal([]byte(before), []byte(after)) {
				t.Errorf("the store changed:\n%s", lineDiff(before, after))
			}
		})
	}
}

func TestBadInputsSQLite(t *testing.T) { runBadInputs(t, sqliteURL(t)) }

func TestBadInputsPostgres(t *testing.T) { runBadInputs(t, pgtest.Start(t)) }

func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	in := map[string]int{}
	for _, l := range al {
		in[l]++
	}
	var out []string
	for _, l := range bl {
		if in[l] > 0 {
			in[l]--
			continue
		}
		out = append(out, "+ "+l)
	}
	for l, n := range in {
		for range n {
			out = append(out, "- "+l)
		}
	}
	return strings.Join(out, "\n")
}
