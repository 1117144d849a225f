package model

// DHCPScriptBridgeEnv names the environment variable through which the
// dnsmasq supervisor (internal/datapath/dnsmasq) tells its --dhcp-script
// (internal/dhcpbridge) which bridge that dnsmasq serves, so `init` knows
// whose leases to print. It lives here because both sides need it and an
// applier must not import the script's package.
const DHCPScriptBridgeEnv = "NOVANET_BRIDGE"
