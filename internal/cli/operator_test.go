package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"novanet/internal/client"
	"novanet/internal/model"
)

// cliJSON runs a command with -o json and decodes its output.
func cliJSON(t *testing.T, v any, args ...string) string {
	t.Helper()
	code, out, errs := runCLI(t, append(args, "-o", "json")...)
	if code != 0 {
		t.Fatalf("novanet %s: exit %d %q", strings.Join(args[4:], " "), code, errs)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("novanet %s -o json: %v\n%s", strings.Join(args[4:], " "), err, out)
	}
	return out
}

// TestCLIOperatorViews: names where nova took them (instances by
// hostname, groups by name, ambiguity listed), nova's associate order,
// admin allocation for a project, the fixed-ip/lease/host views, instance
// show with tap and bridge, JSON shapes (objects, arrays, []) and
// -o value with -c.
func TestCLIOperatorViews(t *testing.T) {
	srv, _ := newServer(t)
	ctx := context.Background()
	a := []string{"--os-url", srv.URL, "--os-token", adminTok}
	p := []string{"--os-url", srv.URL, "--os-token", projTok}
	mustRun := func(args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("novanet %s: exit %d %q", strings.Join(args[4:], " "), code, errs)
		}
		return out
	}
	var empty []any
	if out := cliJSON(t, &empty, append(a, "network", "list")...); strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty list JSON = %q, want []", out)
	}
	mustRun(append(a, "network", "create", "--label", "private", "--fixed_range_v4", "10.0.0.0/24", "--bridge", "br100", "--host", "ctl")...)
	var net map[string]any
	cliJSON(t, &net, append(a, "network", "show", "private")...)
	if net["label"] != "private" {
		t.Fatalf("network show -o json is not one object: %v", net)
	}
	mustRun(append(a, "floating-ip", "create-range", "--ip_range", "203.0.113.0/29")...)
	mustRun(append(p, "instance", "boot", "web1", "--host", "compute-1")...)
	mustRun(append(p, "instance", "boot", "dup", "--host", "compute-1")...)
	mustRun(append(p, "instance", "boot", "dup", "--host", "compute-2")...)

	// instance show by hostname, with the tap device and bridge.
	var inst struct {
		UUID string `json:"uuid"`
		VIFs []struct {
			Device, Bridge, Network, MAC string
			Fixed                        []string `json:"fixed_addresses"`
		} `json:"vifs"`
	}
	cliJSON(t, &inst, append(p, "instance", "show", "web1")...)
	if len(inst.VIFs) != 1 || !strings.HasPrefix(inst.VIFs[0].Device, "tap") || inst.VIFs[0].Bridge != "br100" ||
		inst.VIFs[0].Network != "private" || len(inst.VIFs[0].Fixed) != 1 {
		t.Fatalf("instance show web1 = %+v", inst)
	}
	if out := mustRun(append(p, "instance", "show", "web1", "-c", "tap", "-c", "bridge", "-o", "value")...); strings.TrimSpace(out) != inst.VIFs[0].Device+" br100" {
		t.Fatalf("-o value -c tap -c bridge = %q", out)
	}
	code, _, errs := runCLI(t, append(p, "instance", "show", "dup")...)
	if code != 1 || !strings.Contains(errs, `hostname "dup" is ambiguous`) || !strings.Contains(errs, "on compute-1") || !strings.Contains(errs, "on compute-2") {
		t.Fatalf("ambiguous hostname: %d %q", code, errs)
	}
	code, _, errs = runCLI(t, append(p, "instance", "show", "nosuch")...)
	if code != 1 || !strings.Contains(errs, `no instance has uuid or hostname "nosuch"`) {
		t.Fatalf("unknown hostname: %d %q", code, errs)
	}

	// Floating IPs: nova's order, admin allocation for a project.
	var fip model.FloatingIP
	cliJSON(t, &fip, append(p, "floating-ip", "allocate")...)
	if !fip.Address.IsValid() {
		t.Fatalf("allocate -o json is not one object: %+v", fip)
	}
	mustRun(append(p, "floating-ip", "associate", "web1", fip.Address.String())...) // nova's <server> <address>
	c := client.New(srv.URL, projTok)
	d, err := c.GetInstance(ctx, inst.UUID)
	if err != nil || len(d.FloatingIPs) != 1 || d.FloatingIPs[0].Address != fip.Address {
		t.Fatalf("after associate web1 %s: %+v %v", fip.Address, d.FloatingIPs, err)
	}
	mustRun(append(p, "floating-ip", "disassociate", fip.Address.String(), "web1")...)
	var forB model.FloatingIP
	cliJSON(t, &forB, append(a, "floating-ip", "allocate", "--project_id", "proj-b")...)
	if forB.ProjectID != "proj-b" {
		t.Fatalf("allocate --project_id proj-b = %+v", forB)
	}
	code, _, errs = runCLI(t, append(p, "floating-ip", "allocate", "--project_id", "proj-b")...)
	if code != 1 || !strings.Contains(errs, "needs an admin token") {
		t.Fatalf("project token allocating for another project: %d %q", code, errs)
	}

	// Security groups by name.
	mustRun(append(p, "secgroup", "create", "web")...)
	mustRun(append(p, "secgroup", "rule-add", "web", "--protocol", "tcp", "--from_port", "80", "--to_port", "80", "--source_group", "default")...)
	var sg model.SecurityGroup
	cliJSON(t, &sg, append(p, "secgroup", "show", "web")...)
	if sg.Name != "web" || len(sg.Rules) != 1 || sg.Rules[0].SourceGroupID == 0 {
		t.Fatalf("secgroup show web = %+v", sg)
	}
	mustRun(append(p, "secgroup", "delete", "web")...)

	// Views.
	var fixed []model.FixedIPRow
	cliJSON(t, &fixed, append(a, "fixed-ip", "list")...)
	hosts := map[string]bool{}
	for _, f := range fixed {
		if f.Hostname != "" {
			hosts[f.Hostname+"@"+f.Host] = true
			if f.MAC == "" || f.Network != "private" || f.DHCPHost != "ctl" {
				t.Errorf("fixed-ip row %+v", f)
			}
		}
	}
	if !hosts["web1@compute-1"] || !hosts["dup@compute-1"] || !hosts["dup@compute-2"] {
		t.Fatalf("fixed-ip list = %+v", fixed)
	}
	var leases []model.FixedIPRow
	if out := cliJSON(t, &leases, append(a, "lease", "list")...); strings.TrimSpace(out) != "[]" {
		t.Fatalf("lease list before any lease = %q, want []", out)
	}
	adminC := client.New(srv.URL, adminTok)
	d, _ = c.GetInstance(ctx, inst.UUID)
	if err := adminC.RecordLease(ctx, model.LeaseEvent{Action: model.LeaseAdd, MAC: d.VIFs[0].MAC, Address: d.FixedIPs[0].Address, Host: "ctl"}); err != nil {
		t.Fatal(err)
	}
	cliJSON(t, &leases, append(a, "lease", "list", "--host", "ctl")...)
	if len(leases) != 1 || leases[0].Address != d.FixedIPs[0].Address || leases[0].Hostname != "web1" || !leases[0].Leased {
		t.Fatalf("lease list --host ctl = %+v", leases)
	}
	cliJSON(t, &leases, append(a, "lease", "list", "--host", "compute-1")...)
	if len(leases) != 0 {
		t.Fatalf("lease list --host compute-1 (not a DHCP host here) = %+v", leases)
	}
	var hs []model.HostReport
	cliJSON(t, &hs, append(a, "host", "list")...)
	roles := map[string]string{}
	for _, h := range hs {
		roles[h.Host] = strings.Join(h.Roles, ",")
	}
	if roles["ctl"] != "network" || roles["compute-1"] != "compute" {
		t.Fatalf("host list roles = %v", roles)
	}
	if out := mustRun(append(a, "host", "list", "-c", "host", "-o", "value")...); !strings.Contains(out, "compute-1\n") {
		t.Fatalf("host list -c host -o value = %q", out)
	}

	// Completion offers names and ids from the API.
	out := mustRun(append(p, "__complete", "instance", "show", "we")...)
	if !strings.Contains(out, "web1\n") {
		t.Fatalf("completion of instance show we = %q", out)
	}
	out = mustRun(append(a, "__complete", "network", "show", "")...)
	if uuid, _ := net["uuid"].(string); uuid == "" || !strings.Contains(out, "private\n") || !strings.Contains(out, uuid+"\n") {
		t.Fatalf("completion of network show = %q", out)
	}
}
