package cli

import (
	"context"

	"github.com/spf13/cobra"

	"novanet/internal/client"
	"novanet/internal/model"
)

// `instance`: what nova-compute asked of nova-network for a server: boot
// allocates its networking, delete releases it.

func instanceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "instance", Short: "allocate and release instances' networking"}
	cmd.AddCommand(instanceBootCmd(g), instanceListCmd(g), instanceShowCmd(g), instanceDeleteCmd(g))
	return cmd
}

func instanceBootCmd(g *globals) *cobra.Command {
	var req model.BootRequest
	var fixed string
	cmd := &cobra.Command{
		Use: "boot <hostname>", Short: "allocate networking for an instance on a host", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				req.Hostname = args[0]
			}
			if req.Host == "" {
				return usagef("--host is required: the compute host the instance runs on")
			}
			if fixed != "" {
				a, err := addr(fixed, "--fixed_address")
				if err != nil {
					return err
				}
				req.FixedAddress = a
			}
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				d, err := c.BootInstance(ctx, req)
				if err != nil {
					return err
				}
				return printInstances(g, d, []model.InstanceDetail{d})
			})
		},
	}
	f := cmd.Flags()
	f.SetNormalizeFunc(underscores)
	f.StringVar(&req.Host, "host", "", "compute host")
	f.StringVar(&req.UUID, "uuid", "", "instance uuid (default generated)")
	f.StringVar(&req.ProjectID, "project_id", "", "project (admin only; default the token's)")
	f.StringVar(&req.Network, "network", "", "network id, uuid or label (default the first the project may use)")
	f.StringVar(&fixed, "fixed_address", "", "a specific fixed address")
	f.StringArrayVar(&req.SecurityGroups, "security_group", nil, "security group name (repeatable; default \"default\")")
	f.StringVar(&req.UserData, "user_data", "", "user data for the metadata service")
	f.StringVar(&req.KeyName, "key_name", "", "key pair name")
	f.StringVar(&req.KeyData, "key_data", "", "public key")
	return cmd
}

func instanceListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "list instances", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				ds, err := c.ListInstances(ctx)
				if err != nil {
					return err
				}
				return printInstances(g, ds, ds)
			})
		},
	}
}

func instanceShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "show <instance>", Short: "show an instance's networking (uuid or hostname): per VIF its network, bridge, tap device and MAC", Args: cobra.ExactArgs(1),
		ValidArgsFunction: g.complete(completeInstances),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				uuid, err := resolveInstance(ctx, c, args[0])
				if err != nil {
					return err
				}
				d, err := c.GetInstance(ctx, uuid)
				if err != nil {
					return err
				}
				// The VIF view names each VIF's network and bridge.
				nets, err := c.ListNetworks(ctx)
				if err != nil {
					return err
				}
				return printInstanceVIFs(g, d, nets)
			})
		},
	}
}

func instanceDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "delete <instance>", Short: "release an instance's networking (uuid or hostname)", Args: cobra.ExactArgs(1),
		ValidArgsFunction: g.complete(completeInstances),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				uuid, err := resolveInstance(ctx, c, args[0])
				if err != nil {
					return err
				}
				if err := c.DeleteInstance(ctx, uuid); err != nil {
					return err
				}
				return g.done("deleted instance %s", args[0])
			})
		},
	}
}
