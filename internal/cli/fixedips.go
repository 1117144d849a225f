package cli

import (
	"context"
	"net/netip"

	"github.com/spf13/cobra"

	"novanet/internal/client"
)

// `fixed-ip`: nova-manage fixed list, show, reserve and unreserve.

func fixedIPCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "fixed-ip", Short: "show, reserve and unreserve fixed addresses (nova-manage fixed)"}
	cmd.AddCommand(fixedIPListCmd(g), fixedIPShowCmd(g), fixedIPReserveCmd(g, "reserve", true), fixedIPReserveCmd(g, "unreserve", false))
	return cmd
}

// fixedIPListCmd is `fixed-ip list` (nova-manage fixed list).
func fixedIPListCmd(g *globals) *cobra.Command {
	var network string
	var all bool
	cmd := &cobra.Command{
		Use: "list", Short: "list fixed addresses in use (--all: free ones too), as nova-manage fixed list (admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				rows, err := c.ListFixedIPs(ctx, network, all, false)
				if err != nil {
					return err
				}
				return printFixedRows(g, rows)
			})
		},
	}
	cmd.Flags().StringVar(&network, "network", "", "only this network (id, uuid or label)")
	cmd.Flags().BoolVar(&all, "all", false, "free addresses too")
	cmd.RegisterFlagCompletionFunc("network", g.complete(completeNetworks))
	return cmd
}

func fixedIPShowCmd(g *globals) *cobra.Command {
	var address string
	cmd := &cobra.Command{
		Use: "show <address>", Short: "show a fixed address", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := fixedAddress(args, address)
			if err != nil {
				return err
			}
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				f, err := c.GetFixedIP(ctx, a)
				if err != nil {
					return err
				}
				return printFixedIP(g, f)
			})
		},
	}
	addAddressFlag(cmd, &address)
	return cmd
}

// fixedIPReserveCmd is `fixed-ip reserve` (reserve true) or `fixed-ip
// unreserve`, named verb.
func fixedIPReserveCmd(g *globals, verb string, reserve bool) *cobra.Command {
	var address string
	cmd := &cobra.Command{
		Use: verb + " <address>", Short: verb + " a fixed address", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := fixedAddress(args, address)
			if err != nil {
				return err
			}
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.SetFixedIPReserved(ctx, a, reserve); err != nil {
					return err
				}
				return g.done("%sd %s", verb, a)
			})
		},
	}
	addAddressFlag(cmd, &address)
	return cmd
}

func addAddressFlag(cmd *cobra.Command, address *string) {
	cmd.Flags().SetNormalizeFunc(underscores)
	cmd.Flags().StringVar(address, "address", "", "the fixed address")
}

// fixedAddress is the address given as the argument or else --address.
func fixedAddress(args []string, flag string) (netip.Addr, error) {
	s := flag
	if len(args) == 1 {
		s = args[0]
	}
	if s == "" {
		return netip.Addr{}, usagef("give the address as an argument or with --address")
	}
	return addr(s, "fixed address")
}
