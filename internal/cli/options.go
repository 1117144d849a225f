package cli

import (
	"log/slog"
	"time"

	"novanet/internal/config"
	"novanet/internal/manager"
	"novanet/internal/plan"
)

// The configuration reaches the manager and the planner only through
// ManagerOptions and PlanOptions. They live here, not in config, because
// only cli may import the manager (internal/archtest).

// ManagerOptions maps the configuration onto the manager's options.
func ManagerOptions(cfg *config.Config) manager.Options {
	o := manager.DefaultOptions()
	o.NetworkHost = cfg.NetworkHost
	o.DHCPDomain = cfg.DHCPDomain
	o.DHCPLeaseTime = cfg.DHCPLeaseTime
	o.ForceDHCPRelease = cfg.ForceDHCPRelease
	o.FixedIPDisassociateTimeout = time.Duration(cfg.FixedIPDisassociateTimeout) * time.Second
	o.AllowSameNetTraffic = cfg.AllowSameNetTraffic
	o.AutoAssignFloatingIP = cfg.AutoAssignFloatingIP
	o.DefaultFloatingPool = cfg.DefaultFloatingPool
	o.PublicInterface = cfg.PublicInterface
	o.QuotaFloatingIPs = cfg.QuotaFloatingIPs
	o.QuotaSecurityGroups, o.QuotaSecurityGroupRules = cfg.QuotaSecurityGroups, cfg.QuotaSecurityGroupRules
	o.CreateUniqueMACAttempts = cfg.CreateUniqueMACAddressAttempts
	o.DefaultAvailabilityZone = cfg.DefaultAvailabilityZone
	// The defaults of network create.
	o.FlatNetworkBridge = cfg.FlatNetworkBridge
	if len(cfg.FixedRange) == 1 { // several: NotApplied says none is the default
		o.FixedRange = cfg.FixedRange[0]
	}
	o.NumNetworks = cfg.NumNetworks
	o.NetworkSize = cfg.NetworkSize
	o.MultiHost = cfg.MultiHost
	o.FlatNetworkDNS = cfg.FlatNetworkDNS
	return o
}

// PlanOptions maps the configuration onto the planner's host-local
// options; dhcpScript is dnsmasq's --dhcp-script (dhcpScriptPath).
func PlanOptions(cfg *config.Config, dhcpScript string) plan.Options {
	o := plan.Options{
		Host:              cfg.Host,
		FlatInterface:     cfg.FlatInterface,
		PublicInterface:   cfg.PublicInterface,
		RoutingSourceIP:   cfg.RoutingSourceIP,
		MetadataHost:      cfg.MetadataHost,
		MetadataPort:      cfg.MetadataPort,
		DMZCIDRs:          cfg.DMZCIDR,
		NetworksPath:      cfg.NetworksPath,
		DHCPBridge:        dhcpScript,
		DnsmasqConfigFile: cfg.DnsmasqConfigFile,
	}
	// nova-api's metadata chains live where the metadata API runs: the
	// host whose own address is metadata_host.
	o.MetadataAPI = cfg.MetadataHost.IsValid() && cfg.MetadataHost == cfg.MyIP
	return o
}

// logNotApplied warns once per option whose value novanet accepts but
// does not act on yet.
func logNotApplied(log *slog.Logger, cfg *config.Config) {
	for _, u := range cfg.NotApplied() {
		log.Warn("option "+u.Option+" "+u.Why, "option", u.Option, "value", u.Value)
	}
}
