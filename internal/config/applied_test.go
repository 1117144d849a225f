package config

import (
	"net/netip"
	"strings"
	"testing"
)

func loadWith(t *testing.T, text string) (*Config, error) {
	t.Helper()
	return Load(Sources{Files: []string{writeConf(t, text)}, Overrides: map[string][]string{"host": {"ctl"}, "my_ip": {"192.0.2.10"}}})
}

// TestConfigNotAppliedDefaults: a configuration at nova's defaults warns
// about nothing.
func TestConfigNotAppliedDefaults(t *testing.T) {
	c, err := loadWith(t, "[DEFAULT]\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.NotApplied(); len(got) != 0 {
		t.Errorf("defaults: %+v, want none", got)
	}
	if c.FlatNetworkDNS.IsValid() {
		t.Errorf("flat_network_dns defaults to %s, want unset (guests use their dnsmasq)", c.FlatNetworkDNS)
	}
}

// TestConfigNotAppliedEach: every option set to a value novanet does not
// act on yet gets exactly one entry naming it; options it acts on get
// none.
func TestConfigNotAppliedEach(t *testing.T) {
	c, err := loadWith(t, `[DEFAULT]
network_manager = nova.network.manager.VlanManager
flat_injected = true
fixed_range = 10.0.0.0/16, 10.1.0.0/16
send_arp_for_ha = false
send_arp_for_ha_count = 5
vlan_start = 200
vlan_interface = eth1
# acted on: no entries
flat_network_bridge = br100
flat_network_dns = 192.0.2.53
multi_host = true
num_networks = 2
network_size = 128
`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"network_manager": "nova.network.manager.VlanManager", "flat_injected": "true",
		"fixed_range": "10.0.0.0/16,10.1.0.0/16", "send_arp_for_ha_count": "5",
		"vlan_start": "200", "vlan_interface": "eth1",
	}
	got := map[string]string{}
	for _, u := range c.NotApplied() {
		if _, dup := got[u.Option]; dup {
			t.Errorf("%s listed twice", u.Option)
		}
		got[u.Option] = u.Value
		if !strings.Contains(u.Why, "not") && !strings.Contains(u.Why, "no ") {
			t.Errorf("%s: %q does not say what is not done", u.Option, u.Why)
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: listed with %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s listed, but novanet applies it", k)
		}
	}
}

// TestConfigNotAppliedFlatManager: FlatManager is accepted with an entry;
// FlatDHCPManager by its short name with none; one range is applied.
func TestConfigNotAppliedFlatManager(t *testing.T) {
	c, err := loadWith(t, "network_manager = FlatManager\nfixed_range = 10.0.0.0/16\nsend_arp_for_ha = true\nsend_arp_for_ha_count = 5\n")
	if err != nil {
		t.Fatal(err)
	}
	if u := c.NotApplied(); len(u) != 1 || u[0].Option != "network_manager" || !strings.Contains(u[0].Why, "FlatDHCPManager") {
		t.Errorf("FlatManager: %+v, want one network_manager entry naming what runs instead", u)
	}
	if c.FixedRange[0] != netip.MustParsePrefix("10.0.0.0/16") {
		t.Errorf("fixed_range %v", c.FixedRange)
	}
	c, err = loadWith(t, "network_manager =\n")
	if err != nil || len(c.NotApplied()) != 0 {
		t.Errorf("empty network_manager (FlatDHCPManager): %v, %+v", err, c.NotApplied())
	}
	c, err = loadWith(t, "network_manager = FlatDHCPManager\n")
	if err != nil {
		t.Fatal(err)
	}
	if u := c.NotApplied(); len(u) != 0 {
		t.Errorf("FlatDHCPManager: %+v, want none", u)
	}
}

// TestConfigInvalidNetworkOptions: the network create defaults are
// checked at load, with what to do.
func TestConfigInvalidNetworkOptions(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"network_manager = nova.network.manager.NeutronManager", "network_manager \"nova.network.manager.NeutronManager\" is unknown; use nova.network.manager.FlatDHCPManager"},
		{"fixed_range = 2001:db8::/64", "fixed_range 2001:db8::/64 is not IPv4"},
		{"flat_network_dns = 2001:db8::53", "flat_network_dns 2001:db8::53 is not IPv4"},
		{"network_size = 100", "network_size 100 is not a power of two"},
		{"network_size = 131072", "network_size 131072 is not a power of two from 4 to 65536"},
		{"num_networks = 1000", "num_networks 1000 is more than 256"},
	} {
		_, err := loadWith(t, "[DEFAULT]\n"+tc.text+"\n")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.text, err, tc.want)
		}
	}
}
