package cli

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"novanet/internal/client"
	"novanet/internal/model"
)

// `secgroup`: security groups and their rules (nova secgroup-*).

func secgroupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "secgroup", Short: "security groups and their rules"}
	cmd.AddCommand(secgroupListCmd(g), secgroupShowCmd(g), secgroupCreateCmd(g), secgroupDeleteCmd(g), secgroupRuleAddCmd(g), secgroupRuleDeleteCmd(g))
	return cmd
}

func secgroupListCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use: "list", Short: "list security groups", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				gs, err := c.ListSecurityGroups(ctx, all)
				if err != nil {
					return err
				}
				return printGroups(g, gs)
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every project's groups (admin)")
	return cmd
}

func secgroupShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "show <group>", Short: "show a group (id or name) and its rules", Args: cobra.ExactArgs(1),
		ValidArgsFunction: g.complete(completeGroups),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				id, err := resolveGroup(ctx, c, args[0])
				if err != nil {
					return err
				}
				sg, err := c.GetSecurityGroup(ctx, id)
				if err != nil {
					return err
				}
				return printRules(g, sg, sg.Rules)
			})
		},
	}
}

func secgroupCreateCmd(g *globals) *cobra.Command {
	var desc string
	cmd := &cobra.Command{
		Use: "create <name>", Short: "create a security group", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				sg, err := c.CreateSecurityGroup(ctx, args[0], desc)
				if err != nil {
					return err
				}
				return printGroup(g, sg)
			})
		},
	}
	cmd.Flags().StringVar(&desc, "description", "", "description")
	return cmd
}

func secgroupDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "delete <group>", Short: "delete a security group (id or name)", Args: cobra.ExactArgs(1),
		ValidArgsFunction: g.complete(completeGroups),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				id, err := resolveGroup(ctx, c, args[0])
				if err != nil {
					return err
				}
				if err := c.DeleteSecurityGroup(ctx, id); err != nil {
					return err
				}
				return g.done("deleted security group %d", id)
			})
		},
	}
}

func secgroupRuleAddCmd(g *globals) *cobra.Command {
	var proto, cidr, source string
	var from, to int
	cmd := &cobra.Command{
		Use: "rule-add <group>", Short: "admit traffic to a group's members (group by id or name)", Args: cobra.ExactArgs(1),
		ValidArgsFunction: g.complete(completeGroups),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				rule := model.SecurityGroupRule{Protocol: proto, FromPort: from, ToPort: to}
				if err := resolveRuleGroups(ctx, c, &rule, args[0], source); err != nil {
					return err
				}
				if cidr != "" {
					p, err := netip.ParsePrefix(cidr)
					if err != nil || !p.Addr().Is4() {
						return fmt.Errorf("--cidr %q is not an IPv4 CIDR such as 192.0.2.0/24", cidr)
					}
					rule.CIDR = p
				}
				r, err := c.CreateSecurityGroupRule(ctx, rule)
				if err != nil {
					return err
				}
				return printRules(g, r, []model.SecurityGroupRule{r})
			})
		},
	}
	f := cmd.Flags()
	f.SetNormalizeFunc(underscores)
	f.StringVar(&proto, "protocol", "", "tcp, udp or icmp")
	f.IntVar(&from, "from_port", -1, "first port (icmp: type)")
	f.IntVar(&to, "to_port", -1, "last port (icmp: code)")
	f.StringVar(&cidr, "cidr", "", "source CIDR (default 0.0.0.0/0)")
	f.StringVar(&source, "source_group", "", "source group (id or name) instead of a CIDR")
	return cmd
}

// resolveRuleGroups sets the rule's group and, when given, its source
// group, each by id or name.
func resolveRuleGroups(ctx context.Context, c *client.Client, rule *model.SecurityGroupRule, group, source string) error {
	id, err := resolveGroup(ctx, c, group)
	if err != nil {
		return err
	}
	rule.GroupID = id
	if source != "" {
		if rule.SourceGroupID, err = resolveGroup(ctx, c, source); err != nil {
			return fmt.Errorf("--source_group: %w", err)
		}
	}
	return nil
}

func secgroupRuleDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "rule-delete <rule-id>", Short: "delete a rule", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := id64(args[0], "rule")
			if err != nil {
				return err
			}
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.DeleteSecurityGroupRule(ctx, id); err != nil {
					return err
				}
				return g.done("deleted rule %d", id)
			})
		},
	}
}
