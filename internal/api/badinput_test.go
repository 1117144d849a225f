package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"novanet/internal/model"
	"novanet/internal/store"
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

// seeded is what seed made that the cases name.
type seeded struct {
	uuid, fixed, floating string
	// An address and MAC served by host-b's dnsmasq, not host-a's.
	otherAddr, otherMAC string
	fullGroup           int64 // proj-b's group at its rule quota
}

// seed creates the state every bad input runs against: an instance of
// proj-a with an address, a floating IP of proj-a, an instance on a
// network served by host-b, a network of proj-b only, and proj-b at its
// security group, rule and floating IP quotas.
func seed(t *testing.T, e *env) seeded {
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
	if _, err := e.admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "other", FixedRangeV4: "10.5.0.0/24", Bridge: "br101", Host: "host-b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "b-only", FixedRangeV4: "10.6.0.0/24", Bridge: "br102", Host: "host-b", ProjectID: "proj-b"}); err != nil {
		t.Fatal(err)
	}
	o, err := e.admin.BootInstance(ctx, model.BootRequest{Hostname: "vmb", Host: "host-b", ProjectID: "proj-b", Network: "other"})
	if err != nil {
		t.Fatal(err)
	}
	// proj-b: 10 groups (default and 9 more), 20 rules in "full", and a
	// floating IP quota of 1 (it holds the one of pool tiny).
	var full int64
	for i := range 9 {
		g, err := e.projB.CreateSecurityGroup(ctx, fmt.Sprintf("g%d", i), "")
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			continue
		}
		full = g.ID
		for port := 1; port <= 20; port++ {
			if _, err := e.projB.CreateSecurityGroupRule(ctx, model.SecurityGroupRule{GroupID: g.ID, Protocol: "tcp", FromPort: port, ToPort: port}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.st.Update(ctx, func(tx *store.Tx) error { return tx.SetQuotaLimit(ctx, "proj-b", "floating_ips", 1) }); err != nil {
		t.Fatal(err)
	}
	return seeded{uuid: d.UUID, fixed: d.FixedIPs[0].Address.String(), floating: f.Address.String(),
		otherAddr: o.FixedIPs[0].Address.String(), otherMAC: o.VIFs[0].MAC, fullGroup: full}
}

func badCases(sd seeded) []badCase {
	uuid, fixed, floating := sd.uuid, sd.fixed, sd.floating
	A, P, B, G := adminToken, projToken, projBToken, agentAToken
	huge := `{"label":"` + strings.Repeat("x", 1<<20) + `"}`
	return []badCase{
		// networks
		{"cidr prefix too long", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.1.0.0/33"}`, 400, `fixed_range_v4 "10.1.0.0/33" is not a CIDR`},
		{"cidr garbage", "POST", "/v1/networks", A, `{"fixed_range_v4":"ten.0.0.0/8"}`, 400, `fixed_range_v4 "ten.0.0.0/8" is not a CIDR`},
		{"cidr ipv6", "POST", "/v1/networks", A, `{"fixed_range_v4":"2001:db8::/64"}`, 400, "fixed_range_v4 2001:db8::/64 is not IPv4"},
		{"cidr overlaps", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"10.0.0.128/25"}`, 409, "10.0.0"},
		{"nova cidr overlaps", "POST", "/v2.1/os-networks", A, `{"network":{"label":"x","cidr":"10.0.0.0/16","bridge":"br1","host":"host-net"}}`, 409, "10.0.0"},
		{"negative size", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.1.0.0/24","network_size":-1}`, 400, "none may be negative"},
		{"size too small", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"10.1.0.0/24","network_size":2}`, 400, "network_size"},
		{"too many networks", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"10.1.0.0/24","num_networks":4,"network_size":256}`, 400, "10.1.0.0/24"},
		{"bridge too long", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.1.0.0/24","bridge":"averyveryverylongbridge"}`, 400, "at most 15 bytes"},
		{"bridge with slash", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.1.0.0/24","bridge":"br/1"}`, 400, `bridge "br/1" may not contain '/'`},
		{"unknown kind", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.1.0.0/24","kind":"ovs"}`, 400, `unknown network kind "ovs"`},
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
		{"boot without host", "POST", "/v1/instances", P, `{"hostname":"vm2"}`, 400, `host is required`},
		{"boot bad uuid", "POST", "/v1/instances", P, `{"uuid":"not-a-uuid","host":"host-a"}`, 400, "not a UUID"},
		{"boot address outside", "POST", "/v1/instances", A, `{"hostname":"vm9","host":"host-a","fixed_address":"10.9.0.5","project_id":"proj-a"}`, 400, "10.9.0.5"},
		{"boot address taken", "POST", "/v1/instances", A, `{"hostname":"vm9","host":"host-a","fixed_address":"` + fixed + `","project_id":"proj-a"}`, 409, fixed},
		{"boot bad address", "POST", "/v1/instances", A, `{"host":"host-a","fixed_address":"10.0.0.300"}`, 400, `fixed_address "10.0.0.300" is not an IPv4 address`},
		{"boot unknown network", "POST", "/v1/instances", P, `{"hostname":"vm9","host":"host-a","network":"nope"}`, 404, `network "nope" not found`},
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
		{"rule port not a number", "POST", "/v2.1/os-security-group-rules", P, `{"security_group_rule":{"parent_group_id":"1","ip_protocol":"tcp","from_port":"ssh","to_port":22}}`, 400, `field "security_group_rule.from_port" must be an integer, not a JSON value "ssh"`},
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

		// issue 13, 6: every count and size bounded before any work
		{"num_networks overflows", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"10.0.0.0/8","num_networks":4611686018427387904,"network_size":65536}`, 400, "num_networks 4611686018427387904 is more than 256"},
		{"num_networks times network_size", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"10.0.0.0/8","num_networks":256,"network_size":65536}`, 400, "num_networks 256 * network_size 65536"},
		{"nova num_networks overflows", "POST", "/v2.1/os-networks", A, `{"network":{"label":"x","cidr":"11.0.0.0/8","bridge":"br1","host":"host-net","num_networks":"9223372036854775807","network_size":"256"}}`, 400, "num_networks 9223372036854775807 is more than 256"},
		{"network_size too large", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"11.0.0.0/8","network_size":131072}`, 400, "network_size 131072 is too large"},
		// 7: an address cannot be both fixed and floating
		{"fixed network over floating range", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"203.0.113.0/28"}`, 409, "203.0.113.0/28 overlaps 6 floating ip addresses"},
		// 8: NUL and invalid UTF-8 refused on both engines
		{"NUL in label", "POST", "/v1/networks", A, `{"label":"a\u0000b","bridge":"br1","host":"host-net","fixed_range_v4":"10.9.0.0/24"}`, 400, `field "label" contains a NUL`},
		{"NUL in user data", "POST", "/v1/instances", P, `{"hostname":"vm9","host":"host-a","user_data":"#!/bin/sh\u0000"}`, 400, `field "user_data" contains a NUL`},
		{"NUL in group description", "POST", "/v2.1/os-security-groups", P, `{"security_group":{"name":"web","description":"x\u0000"}}`, 400, `field "security_group.description" contains a NUL`},
		{"NUL in group list", "POST", "/v1/instances", P, `{"hostname":"vm9","host":"host-a","security_groups":["default","\u0000"]}`, 400, `field "security_groups[1]" contains a NUL`},
		{"NUL in URL path", "GET", "/v2.1/os-networks/pri%00vate", A, ``, 400, "URL path"},
		{"NUL in URL query", "GET", "/v1/hosts/host-a/leases?bridge=br%00100", G, ``, 400, `query parameter "bridge"`},
		{"NUL in server action", "POST", "/v2.1/servers/" + uuid + "/action", P, `{"addSecurityGroup":{"name":"web\u0000"}}`, 400, `addSecurityGroup: field "name" contains a NUL`},
		{"invalid UTF-8 in body", "POST", "/v2.1/os-security-groups", P, "{\"security_group\":{\"name\":\"w\xffb\",\"description\":\"\"}}", 400, "not valid UTF-8 (first bad byte at offset 28)"},
		{"invalid UTF-8 in URL", "GET", "/v2.1/os-networks/%ff", A, ``, 400, "URL path"},
		// 9: labels that would shadow an id or uuid
		{"label is a number", "POST", "/v1/networks", A, `{"label":"1","bridge":"br1","host":"host-net","fixed_range_v4":"10.9.0.0/24"}`, 400, `label "1" is a number`},
		{"label is a uuid", "POST", "/v1/networks", A, `{"label":"6f2c8bde-2a5e-4c39-9d39-1f0e6f3a4b5c","bridge":"br1","host":"host-net","fixed_range_v4":"10.9.0.0/24"}`, 400, "is a UUID"},
		// 10: unroutable ranges and addresses, names as the kernel and DNS take them
		{"network on loopback", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"127.0.0.0/24"}`, 400, "fixed_range_v4 127.0.0.0/24 overlaps loopback"},
		{"network on multicast", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"224.0.0.0/24"}`, 400, "overlaps multicast"},
		{"network on 0/8", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"0.0.0.0/24"}`, 400, "overlaps \"this network\""},
		{"network on broadcast", "POST", "/v2.1/os-networks", A, `{"network":{"label":"x","cidr":"255.255.255.252/30","bridge":"br1","host":"host-net"}}`, 400, "overlaps reserved"},
		{"network on link-local", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"169.254.0.0/24"}`, 400, "overlaps link-local"},
		{"floating 0.0.0.0", "POST", "/v2.1/os-floating-ips-bulk", A, `{"floating_ips_bulk_create":{"ip_range":"0.0.0.0"}}`, 400, "ip_range 0.0.0.0/32 overlaps"},
		{"floating loopback", "POST", "/v2.1/os-floating-ips-bulk", A, `{"floating_ips_bulk_create":{"ip_range":"127.0.0.5"}}`, 400, "overlaps loopback"},
		{"floating broadcast", "POST", "/v2.1/os-floating-ips-bulk", A, `{"floating_ips_bulk_create":{"ip_range":"255.255.255.255"}}`, 400, "overlaps reserved"},
		{"floating bad interface", "POST", "/v2.1/os-floating-ips-bulk", A, `{"floating_ips_bulk_create":{"ip_range":"192.0.2.0/30","interface":"eth0;reboot"}}`, 400, `interface "eth0;reboot" may not contain ';'`},
		{"bridge_interface with shell", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"10.9.0.0/24","bridge_interface":"eth0;reboot"}`, 400, `bridge_interface "eth0;reboot" may not contain ';'`},
		{"network host with shell", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"$(reboot)","fixed_range_v4":"10.9.0.0/24"}`, 400, `host "$(reboot)" is not a DNS host name`},
		{"boot host with shell", "POST", "/v1/instances", P, `{"hostname":"vm9","host":"$(reboot)"}`, 400, `host "$(reboot)" is not a DNS host name`},
		{"boot hostname not a label", "POST", "/v1/instances", P, `{"hostname":"vm_9","host":"host-a"}`, 400, `hostname "vm_9" contains '_'`},
		{"pool name with slash", "POST", "/v2.1/os-floating-ips-bulk", A, `{"floating_ips_bulk_create":{"ip_range":"192.0.2.0/30","pool":"a/b"}}`, 400, `pool "a/b" contains '/'`},
		// 11: limits (nova's quotas and column sizes)
		{"4096 networks", "POST", "/v1/networks", A, `{"label":"x","bridge":"br1","host":"host-net","fixed_range_v4":"11.0.0.0/8","num_networks":4096,"network_size":4}`, 400, "num_networks 4096 is more than 256"},
		{"long group description", "POST", "/v2.1/os-security-groups", P, `{"security_group":{"name":"web","description":"` + strings.Repeat("d", 300) + `"}}`, 400, "description is 300 bytes long: at most 255"},
		{"long group name", "PUT", "/v2.1/os-security-groups/1", P, `{"security_group":{"name":"` + strings.Repeat("n", 256) + `"}}`, 400, "name is 256 bytes long"},
		{"long label", "POST", "/v1/networks", A, `{"label":"` + strings.Repeat("l", 256) + `","bridge":"br1","host":"host-net","fixed_range_v4":"10.9.0.0/24"}`, 400, "label is 256 bytes long"},
		{"long user data", "POST", "/v1/instances", P, `{"hostname":"vm9","host":"host-a","user_data":"` + strings.Repeat("u", 70000) + `"}`, 400, "user_data is 70000 bytes long: at most 65535"},
		{"security groups over quota", "POST", "/v2.1/os-security-groups", B, `{"security_group":{"name":"g10","description":""}}`, 403, "quota (security_groups) is 10"},
		{"rules over quota", "POST", "/v2.1/os-security-group-rules", B, `{"security_group_rule":{"parent_group_id":"` + fmt.Sprint(sd.fullGroup) + `","ip_protocol":"tcp","from_port":99,"to_port":99}}`, 403, "quota (security_group_rules) is 20"},
		{"floating ips over quota", "POST", "/v2.1/os-floating-ips", B, `{"pool":"nova"}`, 403, "its quota is 1"},
		// 12: errors name the field or path and say what to send
		{"port in exponent form", "POST", "/v2.1/os-security-group-rules", P, `{"security_group_rule":{"parent_group_id":"1","ip_protocol":"tcp","from_port":"1e3","to_port":22}}`, 400, `field "security_group_rule.from_port" must be an integer, not a JSON value "1e3"`},
		{"num_networks as float", "POST", "/v1/networks", A, `{"fixed_range_v4":"10.9.0.0/24","num_networks":1.5}`, 400, `field "num_networks" must be an integer`},
		{"lease bad address", "POST", "/v1/leases", G, `{"action":"add","mac":"fa:16:3e:00:00:01","address":"10.0.0.300","host":"host-a"}`, 400, `address "10.0.0.300" is not an IPv4 address`},
		{"unknown v2.1 resource", "GET", "/v2.1/os-cells", A, ``, 404, "the /v2.1 (also /v2 and /v2.1/{project_id}) resources are os-networks"},
		{"unknown resource under project", "GET", "/v2.1/proj-a/os-cells/detail", A, ``, 404, "GET /v2.1/proj-a/os-cells/detail: the /v2.1"},
		{"unknown v1 resource", "GET", "/v1/routers", A, ``, 404, "the /v1 resources are instances"},
		{"unknown top path", "GET", "/v3/servers", A, ``, 404, "GET / lists the versions"},
		{"wrong method", "PATCH", "/v2.1/os-networks", A, `{}`, 405, "PATCH is not allowed on /v2.1/os-networks: use GET or POST"},
		// 13: an agent reports only the leases its own host serves
		{"lease of another host's address", "POST", "/v1/leases", G, `{"action":"add","mac":"` + sd.otherMAC + `","address":"` + sd.otherAddr + `","host":"host-a"}`, 403, `host "host-a" does not serve address ` + sd.otherAddr},
		{"lease del of another host's address", "POST", "/v1/leases", G, `{"action":"del","mac":"` + sd.otherMAC + `","address":"` + sd.otherAddr + `","host":"host-a"}`, 403, `host "host-a" does not serve address ` + sd.otherAddr},
		// 15: another project's network is not found, booting as reading
		{"boot into another project's network", "POST", "/v1/instances", P, `{"hostname":"vm9","host":"host-a","network":"b-only"}`, 404, `network "b-only" not found`},
		{"read another project's network", "GET", "/v2.1/os-networks/b-only", P, ``, 404, `network "b-only" not found`},
	}
}

func runBadInputs(t *testing.T, dbURL string) {
	e := newEnv(t, dbURL)
	sd := seed(t, e)
	ctx := context.Background()
	cases := badCases(sd)
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
