package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// osc runs Debian's openstack CLI against serve's identity endpoint with
// nothing else configured (no clouds.yaml, no Keystone).
type osc struct {
	t   *testing.T
	env []string
}

func (o osc) run(args ...string) (string, error) {
	o.t.Helper()
	cmd := exec.Command("openstack", args...)
	cmd.Env = o.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (o osc) json(v any, args ...string) {
	o.t.Helper()
	out, err := o.run(append(args, "-f", "json")...)
	if err != nil {
		o.t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		o.t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (o osc) ok(args ...string) {
	o.t.Helper()
	if out, err := o.run(args...); err != nil {
		o.t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestOpenStackCLIThroughIdentityEndpoint drives the standard openstack
// CLI (python3-openstackclient) through serve's Keystone v3 endpoint:
// password auth with a tokens-file token as password, then networks,
// floating IPs and security groups on nova-network's code paths (the
// catalog holds compute only); token auth; refusals with serve's message.
func TestOpenStackCLIThroughIdentityEndpoint(t *testing.T) {
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Skip("openstack CLI not installed (python3-openstackclient; scripts/install-deps.sh installs it)")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	tokens := "admin-token-0123456789 admin\nproj-a-token-0123456789 project proj-a\nagent-token-0123456789 agent host-1\n"
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOVANET_FLAT_NETWORK_BRIDGE", "br100")
	url, _ := startServe(t, bin, dir, "serve", "sqlite://"+filepath.Join(dir, "db"))

	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "OS_IDENTITY_API_VERSION=3",
		"OS_AUTH_URL=" + url + "/identity/v3", "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default"}
	admin := osc{t, append(base, "OS_USERNAME=ops", "OS_PASSWORD=admin-token-0123456789", "OS_PROJECT_NAME=admin")}
	proj := osc{t, append(base, "OS_USERNAME=alice", "OS_PASSWORD=proj-a-token-0123456789", "OS_PROJECT_NAME=proj-a")}

	// Networks (admin).
	var nets []map[string]any
	admin.json(&nets, "network", "list")
	if len(nets) != 0 {
		t.Fatalf("fresh server lists networks: %v", nets)
	}
	var net map[string]any
	admin.json(&net, "network", "create", "--subnet", "10.9.0.0/24", "net1")
	if net["label"] != "net1" || net["cidr"] != "10.9.0.0/24" || net["bridge"] != "br100" {
		t.Fatalf("network create = %v", net)
	}
	admin.json(&net, "network", "show", "net1")
	if net["gateway"] != "10.9.0.1" {
		t.Fatalf("network show = %v", net)
	}
	admin.json(&nets, "network", "list")
	if len(nets) != 1 {
		t.Fatalf("network list = %v", nets)
	}

	// Floating IPs: the range is novanet's (nova-manage floating create),
	// allocation and release the project's own.
	if out, err := exec.Command(bin, "--os-url", url, "--os-token", "admin-token-0123456789",
		"floating-ip", "create-range", "--ip_range", "203.0.113.0/29").CombinedOutput(); err != nil {
		t.Fatalf("create-range: %v\n%s", err, out)
	}
	var pools []map[string]any
	proj.json(&pools, "floating", "ip", "pool", "list")
	if len(pools) != 1 || pools[0]["Name"] != "nova" {
		t.Fatalf("pools = %v", pools)
	}
	var fip map[string]any
	proj.json(&fip, "floating", "ip", "create", "nova")
	addr, _ := fip["ip"].(string)
	if !strings.HasPrefix(addr, "203.0.113.") || fip["project_id"] != "proj-a" {
		t.Fatalf("floating ip create = %v", fip)
	}
	var fips []map[string]any
	proj.json(&fips, "floating", "ip", "list")
	if len(fips) != 1 || fips[0]["Floating IP Address"] != addr {
		t.Fatalf("floating ip list = %v", fips)
	}
	admin.json(&fips, "floating", "ip", "list")
	if len(fips) != 0 {
		t.Fatalf("admin's project sees proj-a's floating IP: %v", fips)
	}
	proj.ok("floating", "ip", "delete", addr)
	proj.json(&fips, "floating", "ip", "list")
	if len(fips) != 0 {
		t.Fatalf("after delete: %v", fips)
	}

	// Security groups and rules.
	var sg map[string]any
	proj.json(&sg, "security", "group", "create", "web", "--description", "web servers")
	if sg["name"] != "web" || sg["project_id"] != "proj-a" {
		t.Fatalf("security group create = %v", sg)
	}
	var rule map[string]any
	proj.json(&rule, "security", "group", "rule", "create", "web", "--protocol", "tcp", "--dst-port", "80", "--remote-ip", "198.51.100.0/24")
	if rule["port_range"] != "80:80" || rule["ip_range"] != "198.51.100.0/24" {
		t.Fatalf("rule create = %v", rule)
	}
	proj.json(&sg, "security", "group", "show", "web")
	if rules, _ := sg["rules"].([]any); len(rules) != 1 {
		t.Fatalf("security group show = %v", sg)
	}
	var groups []map[string]any
	proj.json(&groups, "security", "group", "list")
	if len(groups) != 2 { // default and web
		t.Fatalf("security group list = %v", groups)
	}
	proj.ok("security", "group", "rule", "delete", strings.TrimSuffix(strings.TrimSpace(jsonNumber(rule["id"])), ".0"))
	proj.ok("security", "group", "delete", "web")
	proj.json(&groups, "security", "group", "list")
	if len(groups) != 1 {
		t.Fatalf("after delete: %v", groups)
	}

	// Token auth: the tokens-file token itself.
	tok := osc{t, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "OS_IDENTITY_API_VERSION=3", "OS_AUTH_URL=" + url + "/identity/v3",
		"OS_AUTH_TYPE=v3token", "OS_TOKEN=proj-a-token-0123456789", "OS_PROJECT_NAME=proj-a", "OS_PROJECT_DOMAIN_NAME=Default"}}
	tok.json(&groups, "security", "group", "list")
	if len(groups) != 1 {
		t.Fatalf("token auth: %v", groups)
	}
	var issued map[string]any
	proj.json(&issued, "token", "issue")
	if issued["id"] != "proj-a-token-0123456789" || issued["project_id"] != "proj-a" {
		t.Fatalf("token issue = %v", issued)
	}

	// Refusals say why.
	list := []string{"security", "group", "list"}
	for _, c := range []struct {
		o    osc
		args []string
		want string
	}{
		{osc{t, append(base, "OS_USERNAME=x", "OS_PASSWORD=wrong-token-0123456789", "OS_PROJECT_NAME=proj-a")}, list, "not a token of serve's tokens file"},
		{osc{t, append(base, "OS_USERNAME=x", "OS_PASSWORD=proj-a-token-0123456789", "OS_PROJECT_NAME=proj-b")}, list, "belongs to project proj-a"},
		{osc{t, append(base, "OS_USERNAME=x", "OS_PASSWORD=agent-token-0123456789", "OS_PROJECT_NAME=admin")}, list, "agent tokens do not authenticate here"},
		{proj, []string{"network", "create", "--subnet", "10.10.0.0/24", "net2"}, "needs an admin token"},
	} {
		out, err := c.o.run(c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("openstack %s: err %v, output %q; want a refusal containing %q", strings.Join(c.args, " "), err, out, c.want)
		}
	}
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
