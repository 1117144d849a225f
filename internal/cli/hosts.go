package cli

import (
	"context"

	"github.com/spf13/cobra"

	"novanet/internal/client"
	"novanet/internal/model"
)

// `host` and `lease`: the operator's views of the hosts agents run on
// (what `openstack network agent list` gave) and of what their dnsmasq
// leased.

func hostCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "the hosts agents run on"}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "every host: roles, applied revision, last seen, agent version, last problem (admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				hs, err := c.ListHosts(ctx)
				if err != nil {
					return err
				}
				return printHosts(g, hs)
			})
		},
	})
	return cmd
}

// leaseCmd is `lease list`: what dnsmasq leased (the store's view,
// updated by every host's dhcpbridge events), per DHCP host.
func leaseCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "lease", Short: "DHCP leases as dnsmasq reported them"}
	cmd.AddCommand(leaseListCmd(g))
	return cmd
}

func leaseListCmd(g *globals) *cobra.Command {
	var host, network string
	cmd := &cobra.Command{
		Use: "list", Short: "leased addresses per DHCP host (admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				rs, err := c.ListFixedIPs(ctx, network, false, true)
				if err != nil {
					return err
				}
				kept := []model.FixedIPRow{}
				for _, r := range rs {
					if host == "" || r.DHCPHost == host {
						kept = append(kept, r)
					}
				}
				return printLeases(g, kept)
			})
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "only leases this host's dnsmasq gave")
	cmd.Flags().StringVar(&network, "network", "", "only this network (id, uuid or label)")
	return cmd
}
