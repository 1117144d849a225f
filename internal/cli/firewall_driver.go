package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"

	"novanet/internal/agent"
	"novanet/internal/datapath/ipset"
	"novanet/internal/datapath/iptables"
	"novanet/internal/datapath/l2guard"
	"novanet/internal/datapath/nftables"
	"novanet/internal/plan"
)

// firewallDriver is the agent's firewall as firewall_driver chooses it:
// the applier, the kernel watch that triggers its repairs, and its count
// of kernel writes (metrics).
type firewallDriver struct {
	fw     *agent.InstanceFirewall
	watch  func(context.Context, func(string)) error
	writes func() int64
}

// newFirewallDriver wires the chosen driver; the other driver's leftovers
// are removed by the first apply that can (a host switched between them).
func newFirewallDriver(name string, log *slog.Logger) (firewallDriver, error) {
	switch name {
	case "iptables":
		rules := iptables.New()
		fw := agent.NewInstanceFirewall(rules, ipset.New(), l2guard.New(), log)
		fw.RetireOther(retireNFTables)
		return firewallDriver{fw: fw, watch: rules.Watch, writes: rules.Restores}, nil
	case "nftables":
		rules := nftables.New()
		fw := agent.NewInstanceFirewall(rules, nil, l2guard.New(), log)
		fw.RetireOther(retireIptables)
		return firewallDriver{fw: fw, watch: rules.Watch, writes: rules.Transactions}, nil
	}
	return firewallDriver{}, usagef("firewall_driver %q is unknown: use iptables or nftables", name)
}

// retireNFTables deletes novanet's nft tables ip novanet-filter and ip
// novanet-nat (a host without nf_tables has none).
func retireNFTables(ctx context.Context) error {
	return nftables.New().Apply(ctx, plan.Firewall{}, true)
}

// retireIptables removes novanet's nova-* chains and the jumps into them,
// then the nova-sg-* ipsets they matched (a host without iptables or
// ipset has none).
func retireIptables(ctx context.Context) error {
	if _, err := exec.LookPath("iptables-save"); err == nil {
		if err := iptables.New().Apply(ctx, plan.Firewall{}, true); err != nil {
			return fmt.Errorf("iptables: %w", err)
		}
	}
	return ipset.New().Prune(ctx, nil)
}
