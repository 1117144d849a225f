package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nova.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := Load(Sources{Overrides: map[string][]string{"my_ip": {"192.0.2.10"}, "host": {"ctl"}}})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"state_path", c.StatePath, "/var/lib/novanet"},
		{"networks_path", c.NetworksPath, "/var/lib/novanet/networks"},
		{"routing_source_ip", c.RoutingSourceIP, netip.MustParseAddr("192.0.2.10")},
		{"metadata_host", c.MetadataHost, netip.MustParseAddr("192.0.2.10")},
		{"metadata_port", c.MetadataPort, 8775},
		{"public_interface", c.PublicInterface, "eth0"},
		{"dhcp_lease_time", c.DHCPLeaseTime, 120},
		{"dhcp_domain", c.DHCPDomain, "novalocal"},
		{"force_dhcp_release", c.ForceDHCPRelease, false},
		{"fixed_ip_disassociate_timeout", c.FixedIPDisassociateTimeout, 600},
		{"allow_same_net_traffic", c.AllowSameNetTraffic, true},
		{"default_floating_pool", c.DefaultFloatingPool, "nova"},
		{"quota_floating_ips", c.QuotaFloatingIPs, 10},
		{"create_unique_mac_address_attempts", c.CreateUniqueMACAddressAttempts, 5},
		{"network_host", c.NetworkHost, "ctl"},
		{"listen", c.Listen, "127.0.0.1:8774"},
		{"database", c.Database, "sqlite:///var/lib/novanet/novanet.db"},
		{"api_url", c.APIURL, "http://127.0.0.1:8774"},
		{"agent_socket", c.AgentSocket, "/run/novanet/agent.sock"},
		{"resync_interval", c.ResyncInterval, 60 * time.Second},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLayers(t *testing.T) {
	conf := writeConf(t, `
# nova.conf from seed 003
[DEFAULT]
state_path = /srv/nova
my_ip = 192.0.2.5
networks_path = $state_path/nets
dmz_cidr = 10.128.0.0/24
dmz_cidr = 10.129.0.0/24, 10.130.0.0/24
; comment
dhcp_lease_time = 300
sql_connection = mysql://nova@localhost/nova
force_dhcp_release = True
fixed_ip_disassociate_timeout = 60
[novanet]
listen = 0.0.0.0:9774
resync_interval = 30
tokens_file = ${state_path}/tokens
[keystone_authtoken]
auth_host = 127.0.0.1
`)
	c, err := Load(Sources{
		Files:     []string{conf},
		Env:       []string{"NOVANET_DHCP_LEASE_TIME=600", "NOVANET_URL=http://x", "PATH=/bin"},
		Overrides: map[string][]string{"fixed-ip-disassociate-timeout": {"30"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.NetworksPath != "/srv/nova/nets" || c.TokensFile != "/srv/nova/tokens" {
		t.Errorf("expansion: networks_path=%q tokens_file=%q", c.NetworksPath, c.TokensFile)
	}
	if c.Database != "sqlite:///srv/nova/novanet.db" {
		t.Errorf("database default did not follow state_path: %q", c.Database)
	}
	if len(c.DMZCIDR) != 3 || c.DMZCIDR[2] != netip.MustParsePrefix("10.130.0.0/24") {
		t.Errorf("dmz_cidr = %v", c.DMZCIDR)
	}
	if c.DHCPLeaseTime != 600 {
		t.Errorf("env override: dhcp_lease_time = %d", c.DHCPLeaseTime)
	}
	if c.FixedIPDisassociateTimeout != 30 {
		t.Errorf("flag override: fixed_ip_disassociate_timeout = %d", c.FixedIPDisassociateTimeout)
	}
	if !c.ForceDHCPRelease || c.Listen != "0.0.0.0:9774" || c.ResyncInterval != 30*time.Second {
		t.Errorf("force=%v listen=%q resync=%v", c.ForceDHCPRelease, c.Listen, c.ResyncInterval)
	}
	if c.RoutingSourceIP != netip.MustParseAddr("192.0.2.5") {
		t.Errorf("routing_source_ip = %v", c.RoutingSourceIP)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "sql_connection") {
		t.Errorf("warnings = %v, want one about sql_connection", c.Warnings)
	}
}

func TestInvalid(t *testing.T) {
	cases := []struct {
		name, conf string
		overrides  map[string][]string
		want       string
	}{
		{"bad ip", "my_ip = 10.0.0.300", nil, `my_ip in [DEFAULT]: "10.0.0.300" is not an IP address`},
		{"bad cidr", "dmz_cidr = 10.0.0.0/33", nil, `"10.0.0.0/33" is not a CIDR`},
		{"host bits", "dmz_cidr = 10.0.0.1/24", nil, "did you mean 10.0.0.0/24"},
		{"bad duration", "[novanet]\nresync_interval = soon", nil, `"soon" is not a duration`},
		{"bad int", "metadata_port = eighty", nil, `"eighty" is not an integer`},
		{"bad port", "metadata_port = 70000", nil, "metadata_port 70000 is not a TCP port"},
		{"bad bool", "multi_host = maybe", nil, `"maybe" is not a boolean`},
		{"bad listen", "[novanet]\nlisten = 8774", nil, `listen "8774" is not host:port`},
		{"undefined var", "networks_path = $nowhere/x", nil, "$nowhere"},
		{"self reference", "state_path = $state_path/x", nil, "refers to itself"},
		{"long bridge", "flat_network_bridge = averyveryverylongbridge", nil, "longer than 15 bytes"},
		{"bad header", "[DEFAULT\nx=1", nil, "malformed section header"},
		{"no equals", "just words", nil, "expected 'key = value'"},
		{"unknown flag", "", map[string][]string{"no_such_option": {"1"}}, `unknown option "no_such_option"`},
		{"bad api url", "[novanet]\napi_url = 127.0.0.1:8774", nil, "must start with http://"},
		{"vlan range", "vlan_start = 5000", nil, "vlan_start 5000 is outside 1-4094"},
		{"firewall driver", "[novanet]\nfirewall_driver = nova.virt.libvirt.firewall.IptablesFirewallDriver", nil, `firewall_driver "nova.virt.libvirt.firewall.IptablesFirewallDriver" is unknown; use iptables or nftables`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(Sources{Files: []string{writeConf(t, tc.conf)}, Overrides: tc.overrides})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(Sources{Files: []string{filepath.Join(t.TempDir(), "absent.conf")}})
	if err == nil || !strings.Contains(err.Error(), "absent.conf") {
		t.Fatalf("err = %v", err)
	}
}
