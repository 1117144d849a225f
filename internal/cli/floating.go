package cli

import (
	"context"
	"errors"
	"net/netip"

	"github.com/spf13/cobra"

	"novanet/internal/client"
	"novanet/internal/model"
)

// `floating-ip`: ranges (nova-manage floating), allocation and NAT
// association (nova floating-ip-*).

func floatingIPCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "floating-ip", Short: "floating address ranges, allocation and association"}
	for _, c := range []*cobra.Command{floatingCreateRangeCmd(g), floatingDeleteRangeCmd(g), floatingListCmd(g), floatingPoolsCmd(g),
		floatingAllocateCmd(g), floatingAssociateCmd(g), floatingDisassociateCmd(g), floatingReleaseCmd(g)} {
		c.Flags().SetNormalizeFunc(underscores)
		cmd.AddCommand(c)
	}
	return cmd
}

func floatingCreateRangeCmd(g *globals) *cobra.Command {
	var req model.FloatingRangeRequest
	cmd := &cobra.Command{
		Use: "create-range", Short: "add a range of floating addresses to a pool", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.IPRange == "" {
				return usagef("--ip_range is required (a CIDR such as 203.0.113.0/28 or one address)")
			}
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				ips, err := c.CreateFloatingRange(ctx, req)
				if err != nil {
					return err
				}
				return printFloating(g, ips)
			})
		},
	}
	cmd.Flags().StringVar(&req.IPRange, "ip_range", "", "CIDR or single address")
	cmd.Flags().StringVar(&req.Pool, "pool", "", "pool name (default the server's default_floating_pool)")
	cmd.Flags().StringVar(&req.Interface, "interface", "", "public interface (default public_interface)")
	return cmd
}

func floatingDeleteRangeCmd(g *globals) *cobra.Command {
	var ipRange string
	cmd := &cobra.Command{
		Use: "delete-range [<ip_range>]", Short: "remove a range of unallocated floating addresses", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := ipRange
			if len(args) == 1 {
				r = args[0]
			}
			if r == "" {
				return usagef("give the range as an argument or with --ip_range")
			}
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.DeleteFloatingRange(ctx, r); err != nil {
					return err
				}
				return g.done("deleted floating range %s", r)
			})
		},
	}
	cmd.Flags().StringVar(&ipRange, "ip_range", "", "CIDR or single address")
	return cmd
}

func floatingListCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use: "list", Short: "list the project's floating addresses (--all: every one, admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				list := c.ListFloatingIPs
				if all {
					list = c.ListAllFloatingIPs
				}
				ips, err := list(ctx)
				if err != nil {
					return err
				}
				return printFloating(g, ips)
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every floating address (admin)")
	return cmd
}

func floatingPoolsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "pools", Short: "list floating pools", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				names, err := c.ListFloatingPools(ctx)
				if err != nil {
					return err
				}
				return printPools(g, names)
			})
		},
	}
}

func floatingAllocateCmd(g *globals) *cobra.Command {
	var pool, project string
	cmd := &cobra.Command{
		Use: "allocate", Short: "allocate a floating address to the project (admins: --project_id for another)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				var f model.FloatingIP
				var err error
				if project != "" {
					f, err = c.AllocateFloatingIPFor(ctx, project, pool)
				} else {
					f, err = c.AllocateFloatingIP(ctx, pool)
				}
				if err != nil {
					return err
				}
				return printFloatingAs(g, f, []model.FloatingIP{f})
			})
		},
	}
	cmd.Flags().StringVar(&pool, "pool", "", "pool (default the server's default_floating_pool)")
	cmd.Flags().StringVar(&project, "project_id", "", "allocate to this project (admin; its quota applies)")
	return cmd
}

func floatingAssociateCmd(g *globals) *cobra.Command {
	var fixed string
	cmd := &cobra.Command{
		Use: "associate <floating> <instance>", Short: "NAT a floating address to an instance (uuid or hostname; nova's order <instance> <floating> works too)", Args: cobra.ExactArgs(2),
		ValidArgsFunction: g.complete(completeFloatingOrInstance),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl, inst, err := floatingAndInstance(args)
			if err != nil {
				return err
			}
			var fx netip.Addr
			if fixed != "" {
				if fx, err = addr(fixed, "--fixed_address"); err != nil {
					return err
				}
			}
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				uuid, err := resolveInstance(ctx, c, inst)
				if err != nil {
					return err
				}
				if err := c.AssociateFloatingIP(ctx, fl, uuid, fx); err != nil {
					return err
				}
				return g.done("associated %s with %s", fl, inst)
			})
		},
	}
	cmd.Flags().StringVar(&fixed, "fixed_address", "", "which fixed address of the instance (default its first)")
	return cmd
}

func floatingDisassociateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "disassociate <floating> <instance>", Short: "remove a floating address's NAT (either order, as associate)", Args: cobra.ExactArgs(2),
		ValidArgsFunction: g.complete(completeFloatingOrInstance),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl, inst, err := floatingAndInstance(args)
			if err != nil {
				return err
			}
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				uuid, err := resolveInstance(ctx, c, inst)
				if err != nil {
					return err
				}
				if err := c.DisassociateFloatingIP(ctx, fl, uuid); err != nil {
					return err
				}
				return g.done("disassociated %s from %s", fl, inst)
			})
		},
	}
}

func floatingReleaseCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "release <floating|id>", Short: "return a floating address to its pool", Args: cobra.ExactArgs(1),
		ValidArgsFunction: g.complete(completeFloating),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.ReleaseFloatingIP(ctx, args[0]); err != nil {
					return err
				}
				return g.done("released %s", args[0])
			})
		},
	}
}

// completeFloatingOrInstance offers either argument of associate and
// disassociate, which take them in either order.
func completeFloatingOrInstance(ctx context.Context, c *client.Client) ([]string, error) {
	fs, err := completeFloating(ctx, c)
	is, err2 := completeInstances(ctx, c)
	return append(fs, is...), errors.Join(err, err2)
}
