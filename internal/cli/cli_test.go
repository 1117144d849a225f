package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"novanet/internal/api"
	"novanet/internal/client"
	"novanet/internal/manager"
	"novanet/internal/model"
	"novanet/internal/store"
)

const (
	adminTok = "cli-admin-token-0123456789"
	projTok  = "cli-proj-token-0123456789"
)

func newServer(t *testing.T) (*httptest.Server, *store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "novanet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	tokens := api.StaticTokens(map[string]api.Principal{
		adminTok: {Role: api.RoleAdmin, ProjectID: "admin"},
		projTok:  {Role: api.RoleProject, ProjectID: "proj-a"},
	})
	srv := httptest.NewServer(api.New(manager.New(st, manager.DefaultOptions()), api.Options{
		Tokens: tokens, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	t.Cleanup(srv.Close)
	return srv, st
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLIHappyPath(t *testing.T) {
	srv, _ := newServer(t)
	a := []string{"--os-url", srv.URL, "--os-token", adminTok}
	p := []string{"--os-url", srv.URL, "--os-token", projTok}
	steps := []struct {
		args []string
		want string
	}{
		{append(a, "network", "create", "--label", "private", "--fixed_range_v4", "10.0.0.0/24", "--bridge", "br100", "--host", "ctl", "--multi-host", "F"), "10.0.0.0/24"},
		{append(a, "network", "list"), "private"},
		{append(a, "network", "show", "private", "-o", "json"), `"bridge": "br100"`},
		{append(a, "floating-ip", "create-range", "--ip_range", "203.0.113.0/30", "--pool", "nova"), "203.0.113."},
		{append(a, "floating-ip", "pools"), "nova"},
		{append(p, "instance", "boot", "vm1", "--host", "compute-1"), "vm1"},
		{append(p, "instance", "list"), "10.0.0."},
		{append(p, "floating-ip", "allocate"), "203.0.113."},
		{append(p, "floating-ip", "list"), "nova"},
		{append(p, "secgroup", "create", "web", "--description", "web"), "web"},
		{append(p, "secgroup", "list"), "default"},
		{append(a, "fixed-ip", "show", "10.0.0.20"), "10.0.0.0/24"},
		{append(a, "fixed-ip", "reserve", "--address", "10.0.0.20"), "reserved 10.0.0.20"},
		{append(a, "fixed-ip", "unreserve", "10.0.0.20"), "unreserved 10.0.0.20"},
	}
	for _, s := range steps {
		code, out, errs := runCLI(t, s.args...)
		if code != 0 || !strings.Contains(out, s.want) {
			t.Fatalf("novanet %s: exit %d, stdout %q, stderr %q; want %q", strings.Join(s.args[4:], " "), code, out, errs, s.want)
		}
	}
	// The instance's floating association through the CLI.
	c := client.New(srv.URL, projTok)
	insts, err := c.ListInstances(context.Background())
	if err != nil || len(insts) != 1 {
		t.Fatalf("instances: %v %v", insts, err)
	}
	fips, _ := c.ListFloatingIPs(context.Background())
	code, out, errs := runCLI(t, append(p, "floating-ip", "associate", fips[0].Address.String(), insts[0].UUID)...)
	if code != 0 {
		t.Fatalf("associate: %d %q %q", code, out, errs)
	}
	code, out, errs = runCLI(t, append(p, "instance", "show", insts[0].UUID)...)
	if code != 0 || !strings.Contains(out, fips[0].Address.String()) {
		t.Fatalf("instance show after associate: %d %q %q", code, out, errs)
	}
}

// TestCLIBadInput: every bad input is one line on stderr, exit 1 (2 for
// usage errors), and the store is untouched.
func TestCLIBadInput(t *testing.T) {
	srv, st := newServer(t)
	ctx := context.Background()
	admin := client.New(srv.URL, adminTok)
	if _, err := admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100", Host: "ctl"}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(srv.URL, projTok).ListSecurityGroups(ctx, false); err != nil {
		t.Fatal(err)
	}
	// Exhausted pools: a /30 network holds one instance, a /32 floating
	// range one address; both are taken before the table runs.
	if _, err := admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "tiny", FixedRangeV4: "10.5.0.0/30", Bridge: "br5", Host: "ctl"}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(srv.URL, projTok).BootInstance(ctx, model.BootRequest{Hostname: "only", Host: "c1", Network: "tiny"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateFloatingRange(ctx, model.FloatingRangeRequest{IPRange: "198.51.100.9/32", Pool: "one"}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(srv.URL, projTok).AllocateFloatingIP(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	a := []string{"--os-url", srv.URL, "--os-token", adminTok}
	p := []string{"--os-url", srv.URL, "--os-token", projTok}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{append(a, "network", "create", "--fixed_range_v4", "10.0.0.0/33"), 1, "not an IPv4 CIDR"},
		{append(a, "network", "create", "--label", "other", "--bridge", "br9", "--host", "h1", "--fixed_range_v4", "10.0.0.0/25"), 1, "10.0.0"},
		{append(a, "network", "create", "--fixed_range_v4", "10.1.0.0/24", "--bridge", "averyveryverylongbridge"), 1, "longer than 15 bytes"},
		{append(a, "network", "create", "--fixed_range_v4", "10.1.0.0/24", "--num_networks", "x"), 2, "invalid argument"},
		{append(a, "network", "create", "--fixed_range_v4", "10.1.0.0/24", "--multi_host", "perhaps"), 1, "not true/false"},
		{append(a, "network", "create"), 2, "--fixed_range_v4 is required"},
		{append(a, "network", "create", "--no-such-flag"), 2, "unknown flag"},
		{append(a, "network", "show"), 2, "missing <id|uuid|label>"},
		{append(a, "network", "show", "nope"), 1, "nope"},
		{append(p, "network", "create", "--fixed_range_v4", "10.1.0.0/24"), 1, "needs an admin token"},
		{append(a, "fixed-ip", "show", "10.0.0.300"), 1, "not an IPv4 address"},
		{append(a, "fixed-ip", "reserve"), 2, "give the address"},
		{append(a, "floating-ip", "create-range", "--ip_range", "203.0.113.0/40"), 1, "203.0.113.0/40"},
		{append(p, "floating-ip", "allocate", "--pool", "nope"), 1, "nope"},
		{append(p, "floating-ip", "associate", "203.0.113.1", "00000000-0000-0000-0000-000000000000"), 1, "203.0.113.1"},
		{append(p, "secgroup", "show", "abc"), 1, `no security group has id or name "abc"`},
		{append(p, "secgroup", "rule-add", "1", "--protocol", "tcp", "--from_port", "80", "--to_port", "22"), 1, "greater than to_port"},
		{append(p, "instance", "boot", "vm1"), 2, "--host is required"},
		{append(p, "instance", "boot", "vm1", "--host", "c1", "--fixed_address", "10.9.0.1"), 1, "10.9.0.1"},
		{append(p, "instance", "delete", "00000000-0000-0000-0000-000000000000"), 1, "00000000-0000-0000-0000-000000000000"},
		{append(p, "instance", "boot", "vm2", "--host", "c1", "--network", "tiny"), 1, "no free address"},
		{append(p, "floating-ip", "allocate", "--pool", "one"), 1, "one"},
		{append(a, "network", "delete", "tiny"), 1, "tiny"},
		{append(a, "network", "create", "--label", "x", "--fixed_range_v4", "10.6.0.0/31", "--bridge", "br6", "--host", "h"), 1, "too small"},
		{[]string{"--os-url", srv.URL, "network", "list"}, 2, "no API token"},
		{[]string{"--os-url", srv.URL, "--os-token", "wrong-token-0123456789", "network", "list"}, 1, "unknown token"},
		{append(a, "network", "list", "-o", "yaml"), 2, "--output \"yaml\" is unknown"},
		{append(a, "frobnicate"), 2, "unknown command"},
	}
	t.Setenv("NOVANET_URL", "")
	t.Setenv("NOVANET_TOKEN", "")
	for _, tc := range cases {
		before, err := st.Dump(ctx)
		if err != nil {
			t.Fatal(err)
		}
		code, _, errs := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("novanet %s: exit %d, stderr %q; want exit %d and one line containing %q", strings.Join(tc.args, " "), code, errs, tc.code, tc.want)
		}
		after, _ := st.Dump(ctx)
		if before != after {
			t.Errorf("novanet %s changed the store", strings.Join(tc.args, " "))
		}
	}
}

// TestNetworkCreateRangeFromConfig: without --fixed_range_v4 the range is
// the config file's fixed_range, as nova-manage read it from nova.conf.
func TestNetworkCreateRangeFromConfig(t *testing.T) {
	srv, _ := newServer(t)
	conf := filepath.Join(t.TempDir(), "novanet.conf")
	if err := os.WriteFile(conf, []byte("[DEFAULT]\nfixed_range = 10.9.0.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := []string{"--os-url", srv.URL, "--os-token", adminTok, "--config-file", conf}
	code, out, errb := runCLI(t, append(a, "network", "create", "--label", "private", "--bridge", "br100", "--host", "ctl")...)
	if code != 0 || !strings.Contains(out, "10.9.0.0/24") {
		t.Fatalf("network create without --fixed_range_v4 = %d %q %q, want the config's 10.9.0.0/24", code, out, errb)
	}
	// Without a config file it is still required.
	code, _, errb = runCLI(t, "--os-url", srv.URL, "--os-token", adminTok, "network", "create", "--label", "other", "--bridge", "br101", "--host", "ctl")
	if code != 2 || !strings.Contains(errb, "--fixed_range_v4 is required") {
		t.Errorf("without a range anywhere = %d %q, want the usage error", code, errb)
	}
}
