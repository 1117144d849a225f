package cli

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"novanet/internal/client"
	"novanet/internal/config"
	"novanet/internal/model"
)

// `network`: nova-manage network create, list, show and delete.

func networkCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "create, list, show and delete networks (nova-manage network)"}
	cmd.AddCommand(networkCreateCmd(g), networkListCmd(g), networkShowCmd(g), networkDeleteCmd(g))
	return cmd
}

func networkCreateCmd(g *globals) *cobra.Command {
	var req model.NetworkCreateRequest
	var kind, multiHost string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "carve networks from a fixed range",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.FixedRangeV4 == "" {
				// As nova-manage did: the range defaults to fixed_range
				// of the config file the operator points at.
				def, err := g.defaultFixedRange()
				if err != nil {
					return err
				}
				req.FixedRangeV4 = def
			}
			if err := checkNetworkCreate(&req, multiHost); err != nil {
				return err
			}
			req.Kind = model.ManagerKind(kind)
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				nets, err := c.CreateNetworks(ctx, req)
				if err != nil {
					return err
				}
				return printNetworks(g, nets)
			})
		},
	}
	f := cmd.Flags()
	f.SetNormalizeFunc(underscores)
	f.StringVar(&req.Label, "label", "", "network label")
	f.StringVar(&req.FixedRangeV4, "fixed_range_v4", "", "IPv4 CIDR to carve networks from")
	f.IntVar(&req.NumNetworks, "num_networks", 0, "number of networks (default 1)")
	f.IntVar(&req.NetworkSize, "network_size", 0, "addresses per network (default 256 or the whole range)")
	f.StringVar(&req.Bridge, "bridge", "", "bridge name (at most 15 bytes)")
	f.StringVar(&req.BridgeInterface, "bridge_interface", "", "interface enslaved to the bridge")
	f.StringVar(&multiHost, "multi_host", "", "T/F: every compute host is gateway and DHCP server")
	f.StringVar(&req.DNS1, "dns1", "", "first DNS server")
	f.StringVar(&req.DNS2, "dns2", "", "second DNS server")
	f.StringVar(&req.Gateway, "gateway", "", "gateway address (default the first host address)")
	f.StringVar(&req.DHCPStart, "dhcp_start", "", "first address handed to instances")
	f.IntVar(&req.VLAN, "vlan", 0, "VLAN id (vlan kind)")
	f.IntVar(&req.VLAN, "vlan_start", 0, "alias of --vlan")
	f.StringVar(&req.ProjectID, "project_id", "", "owning project")
	f.StringVar(&kind, "kind", "", "flat, flatdhcp (default) or vlan")
	f.StringVar(&req.Host, "host", "", "network host (default the server's network_host)")
	f.IntVar(&req.MTU, "mtu", 0, "MTU")
	return cmd
}

// defaultFixedRange is the one fixed_range of the --config-file files
// ("" without files, or when they give none or several).
func (g *globals) defaultFixedRange() (string, error) {
	if len(g.configFiles) == 0 {
		return "", nil
	}
	c, err := config.Load(config.Sources{Files: g.configFiles, Env: os.Environ()})
	if err != nil {
		return "", err
	}
	if len(c.FixedRange) != 1 {
		return "", nil
	}
	return c.FixedRange[0].String(), nil
}

// checkNetworkCreate refuses what the server would refuse anyway, before
// a token is needed, and reads --multi_host as nova-manage's T/F.
func checkNetworkCreate(req *model.NetworkCreateRequest, multiHost string) error {
	if req.FixedRangeV4 == "" {
		return usagef("--fixed_range_v4 is required (e.g. 10.0.0.0/24), or set fixed_range in the --config-file")
	}
	if p, err := netip.ParsePrefix(req.FixedRangeV4); err != nil || !p.Addr().Is4() {
		return fmt.Errorf("--fixed_range_v4 %q is not an IPv4 CIDR such as 10.0.0.0/24", req.FixedRangeV4)
	}
	if multiHost != "" {
		b, err := strconv.ParseBool(strings.ToLower(multiHost))
		if err != nil {
			return fmt.Errorf("--multi_host %q is not true/false (T/F)", multiHost)
		}
		req.MultiHost = &b
	}
	return nil
}

func networkListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "list networks", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				nets, err := c.ListNetworks(ctx)
				if err != nil {
					return err
				}
				return printNetworks(g, nets)
			})
		},
	}
}

func networkShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "show <id|uuid|label>", Short: "show one network", Args: cobra.ExactArgs(1),
		ValidArgsFunction: g.complete(completeNetworks),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				n, err := c.GetNetwork(ctx, args[0])
				if err != nil {
					return err
				}
				return printNetworksAs(g, n, []model.Network{n})
			})
		},
	}
}

func networkDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "delete <id|uuid|label>", Short: "delete a network without instances", Args: cobra.ExactArgs(1),
		ValidArgsFunction: g.complete(completeNetworks),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.call(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.DeleteNetwork(ctx, args[0]); err != nil {
					return err
				}
				return g.done("deleted network %s", args[0])
			})
		},
	}
}
