package lab

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeConfigs writes the tokens file and each host's novanet.conf.
func (l *Lab) writeConfigs(o Options) error {
	agentTokens, err := l.writeTokens()
	if err != nil {
		return err
	}
	for _, h := range Hosts {
		dir := l.path(h)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		conf := l.hostConfig(h, o, agentTokens[h])
		if err := os.WriteFile(filepath.Join(dir, "novanet.conf"), []byte(conf), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// writeTokens writes serve's tokens file: the admin, the VMs' project and
// one agent token per host, which it returns.
func (l *Lab) writeTokens() (agentTokens map[string]string, err error) {
	var tokens strings.Builder
	fmt.Fprintf(&tokens, "%s admin\n", l.st.AdminToken)
	fmt.Fprintf(&tokens, "%s project %s\n", l.st.ProjectToken, ProjectID)
	agentTokens = map[string]string{}
	for _, h := range Hosts {
		agentTokens[h] = token()
		fmt.Fprintf(&tokens, "%s agent %s\n", agentTokens[h], h)
	}
	if err := os.WriteFile(l.path("tokens"), []byte(tokens.String()), 0o600); err != nil {
		return nil, err
	}
	return agentTokens, nil
}

// hostConfig renders host h's nova.conf-style file, read by serve on the
// controller and by the agent on every host.
func (l *Lab) hostConfig(h string, o Options, agentToken string) string {
	dir := l.path(h)
	public, routing := "eth1", hostIP[h]
	if h == "controller" {
		public, routing = "eth0", publicIP
	}
	metadata := hostIP["controller"]
	if o.MultiHost {
		metadata = hostIP[h]
	}
	return fmt.Sprintf(`[DEFAULT]
host = %s
my_ip = %s
state_path = %s
flat_interface = eth2
public_interface = %s
routing_source_ip = %s
metadata_host = %s
network_host = controller
multi_host = %t
force_dhcp_release = %t
fixed_ip_disassociate_timeout = %d
dhcp_lease_time = 120
send_arp_for_ha = true
allow_same_net_traffic = %t

[novanet]
listen = %s
database = sqlite://%s/novanet.db
tokens_file = %s
api_url = http://%s
auth_token = %s
agent_socket = %s/agent.sock
resync_interval = %s
firewall_driver = %s
`, h, hostIP[h], dir, public, routing, metadata, o.MultiHost, o.ForceDHCPRelease, o.DisassociateTimeout,
		o.AllowSameNetTraffic == nil || *o.AllowSameNetTraffic,
		apiAddr, dir, l.path("tokens"), apiAddr, agentToken, dir, o.ResyncInterval, cmp.Or(o.FirewallDriver, "iptables"))
}

func token() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
