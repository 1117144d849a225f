package cli

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"novanet/internal/config"
	"novanet/internal/model"
	"novanet/internal/plan"
)

func loadTestConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "nova.conf")
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Sources{Files: []string{conf}, Overrides: map[string][]string{"host": {"ctl"}, "my_ip": {"192.0.2.10"}}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestServeConfigNetworkCreateDefaults: the network create options reach
// the manager's options by their nova names.
func TestServeConfigNetworkCreateDefaults(t *testing.T) {
	o := ManagerOptions(loadTestConfig(t, `[DEFAULT]
fixed_range = 10.20.0.0/16
flat_network_bridge = br7
flat_network_dns = 192.0.2.53
multi_host = true
num_networks = 4
network_size = 64
`))
	if o.FixedRange != netip.MustParsePrefix("10.20.0.0/16") || o.FlatNetworkBridge != "br7" ||
		o.FlatNetworkDNS != netip.MustParseAddr("192.0.2.53") || !o.MultiHost || o.NumNetworks != 4 || o.NetworkSize != 64 {
		t.Errorf("options from config: %+v", o)
	}
	o = ManagerOptions(loadTestConfig(t, "fixed_range = 10.20.0.0/16, 10.30.0.0/16\n"))
	if o.FixedRange.IsValid() {
		t.Errorf("two fixed ranges made %s the default; want none", o.FixedRange)
	}
	o = ManagerOptions(loadTestConfig(t, ""))
	if o.FixedRange.IsValid() || o.FlatNetworkDNS.IsValid() || o.MultiHost || o.NumNetworks != 1 || o.NetworkSize != 256 {
		t.Errorf("nova's defaults: %+v", o)
	}
}

// TestServeConfigFlatNetworkDNSReachesDnsmasq: a network created without
// dns1 or a range gets flat_network_dns and fixed_range (nova's
// create_networks), and the network host's planned dnsmasq hands that
// resolver to the guests.
func TestServeConfigFlatNetworkDNSReachesDnsmasq(t *testing.T) {
	cfg := loadTestConfig(t, `[DEFAULT]
fixed_range = 10.20.0.0/23
flat_network_bridge = br7
flat_network_dns = 192.0.2.53
num_networks = 2
network_size = 128
`)
	m := newServeManager(openTestStore(t), cfg, nil)
	ctx := context.Background()
	nets, err := m.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "private"})
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) != 2 {
		t.Fatalf("num_networks 2: got %d networks", len(nets))
	}
	for i, n := range nets {
		if want := netip.MustParsePrefix([]string{"10.20.0.0/25", "10.20.0.128/25"}[i]); n.CIDR != want {
			t.Errorf("network %d: cidr %s, want %s (fixed_range cut by network_size)", i, n.CIDR, want)
		}
		if n.DNS1 != netip.MustParseAddr("192.0.2.53") || n.DNS2.IsValid() || n.Bridge != "br7" || n.Host != "ctl" || n.MultiHost {
			t.Errorf("network %d: %+v, want dns1 192.0.2.53 only, bridge br7, single-host on ctl", i, n)
		}
	}
	// A request's own dns1 wins.
	own, err := m.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "own", FixedRangeV4: "10.30.0.0/24", NumNetworks: 1, DNS1: "198.51.100.53"})
	if err != nil {
		t.Fatal(err)
	}
	if own[0].DNS1 != netip.MustParseAddr("198.51.100.53") {
		t.Errorf("request's dns1 replaced by %s", own[0].DNS1)
	}

	st, err := m.HostState(ctx, "ctl")
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(st, PlanOptions(cfg, "/usr/bin/novanet-dhcpbridge"))
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, d := range p.Dnsmasq {
		args = append(args, d.Args...)
	}
	for _, n := range append(nets, own...) {
		want := "option:dns-server," + n.DNS1.String()
		if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--dhcp-option=tag:") && strings.HasSuffix(a, want) }) {
			t.Errorf("network %s: no %q in dnsmasq's arguments:\n%s", n.Label, want, strings.Join(args, "\n"))
		}
	}
}

// TestServeConfigMultiHostDefault: multi_host = true makes a network
// created without a host multi-host; naming a host keeps it single-host.
func TestServeConfigMultiHostDefault(t *testing.T) {
	m := newServeManager(openTestStore(t), loadTestConfig(t, "multi_host = true\nflat_network_bridge = br100\n"), nil)
	ctx := context.Background()
	multi, err := m.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "multi", FixedRangeV4: "10.0.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	single, err := m.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "single", FixedRangeV4: "10.1.0.0/24", Host: "ctl"})
	if err != nil {
		t.Fatal(err)
	}
	if !multi[0].MultiHost || multi[0].Host != "" || single[0].MultiHost || single[0].Host != "ctl" {
		t.Errorf("multi %+v, single %+v", multi[0], single[0])
	}
	// An explicit multi_host false is kept: single-host on network_host.
	m = newServeManager(openTestStore(t), loadTestConfig(t, "multi_host = true\nflat_network_bridge = br100\nnetwork_host = ctl\n"), nil)
	explicit, err := m.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "explicit", FixedRangeV4: "10.2.0.0/24", MultiHost: new(false)})
	if err != nil || explicit[0].MultiHost || explicit[0].Host != "ctl" {
		t.Errorf("multi_host false with multi_host = true in serve: %+v (%v), want single-host on ctl", explicit, err)
	}
}

// TestServeConfigNoRangeNoDefault: without fixed_range a request
// without a range is refused as before, saying what to give.
func TestServeConfigNoRangeNoDefault(t *testing.T) {
	m := newServeManager(openTestStore(t), loadTestConfig(t, "flat_network_bridge = br100\n"), nil)
	_, err := m.CreateNetworks(context.Background(), model.NetworkCreateRequest{Label: "private"})
	if err == nil || !strings.Contains(err.Error(), "fixed_range_v4 is required") {
		t.Errorf("err %v, want fixed_range_v4 is required", err)
	}
}

// TestServeConfigLogsNotApplied: serve and the agent warn once per option
// they do not act on, naming it.
func TestServeConfigLogsNotApplied(t *testing.T) {
	cfg := loadTestConfig(t, "flat_injected = true\nvlan_interface = eth1\nnetwork_manager = nova.network.manager.VlanManager\n")
	var out syncBuffer
	log, err := newLogger(&out, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	logNotApplied(log, cfg)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), out.String())
	}
	for i, opt := range []string{"network_manager", "flat_injected", "vlan_interface"} {
		if !strings.Contains(lines[i], "level=WARN") || !strings.Contains(lines[i], "option="+opt) || !strings.Contains(lines[i], "not built yet") && !strings.Contains(lines[i], "not applied yet") {
			t.Errorf("line %d: %q, want a warning naming %s as not applied", i, lines[i], opt)
		}
	}
}
