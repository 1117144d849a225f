package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"novanet/internal/client"
	"novanet/internal/model"
)

func addr(s, what string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%s %q is not an IPv4 address", what, s)
	}
	return a, nil
}

func id64(s, what string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%s %q is not a positive integer id", what, s)
	}
	return v, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func addrStr(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}

// ---- network ----

func networkCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "create, list, show and delete networks (nova-manage network)"}
	var req model.NetworkCreateRequest
	var kind, multiHost string
	create := &cobra.Command{
		Use:   "create",
		Short: "carve networks from a fixed range",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := g.json(); err != nil {
				return err
			}
			if req.FixedRangeV4 == "" {
				return usagef("--fixed_range_v4 is required (e.g. 10.0.0.0/24)")
			}
			if p, err := netip.ParsePrefix(req.FixedRangeV4); err != nil || !p.Addr().Is4() {
				return fmt.Errorf("--fixed_range_v4 %q is not an IPv4 CIDR such as 10.0.0.0/24", req.FixedRangeV4)
			}
			if multiHost != "" {
				b, err := strconv.ParseBool(strings.ToLower(multiHost))
				if err != nil {
					return fmt.Errorf("--multi_host %q is not true/false (T/F)", multiHost)
				}
				req.MultiHost = b
			}
			req.Kind = model.ManagerKind(kind)
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			nets, err := c.CreateNetworks(cmd.Context(), req)
			if err != nil {
				return err
			}
			return printNetworks(g, nets)
		},
	}
	f := create.Flags()
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

	list := &cobra.Command{
		Use: "list", Short: "list networks", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			nets, err := c.ListNetworks(cmd.Context())
			if err != nil {
				return err
			}
			return printNetworks(g, nets)
		},
	}
	show := &cobra.Command{
		Use: "show <id|uuid|label>", Short: "show one network", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			n, err := c.GetNetwork(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printNetworksAs(g, n, []model.Network{n})
		},
	}
	del := &cobra.Command{
		Use: "delete <id|uuid|label>", Short: "delete a network without instances", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteNetwork(cmd.Context(), args[0]); err != nil {
				return err
			}
			return g.done("deleted network %s", args[0])
		},
	}
	show.ValidArgsFunction = g.complete(completeNetworks)
	del.ValidArgsFunction = g.complete(completeNetworks)
	cmd.AddCommand(create, list, show, del)
	return cmd
}

func printNetworks(g *globals, nets []model.Network) error { return printNetworksAs(g, nets, nets) }

// printNetworksAs prints nets as a table, or v (a list or one network) as
// JSON.
func printNetworksAs(g *globals, v any, nets []model.Network) error {
	rows := make([][]string, 0, len(nets))
	for _, n := range nets {
		rows = append(rows, []string{strconv.FormatInt(n.ID, 10), n.Label, string(n.Kind), n.CIDR.String(),
			addrStr(n.Gateway), addrStr(n.DHCPStart), n.Bridge, strconv.FormatBool(n.MultiHost), orDash(n.Host), orDash(n.ProjectID), n.UUID})
	}
	return g.print(v, []string{"ID", "LABEL", "KIND", "CIDR", "GATEWAY", "DHCP_START", "BRIDGE", "MULTI_HOST", "HOST", "PROJECT", "UUID"}, rows)
}

// ---- fixed-ip ----

func fixedIPCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "fixed-ip", Short: "show, reserve and unreserve fixed addresses (nova-manage fixed)"}
	var address string
	target := func(args []string) (netip.Addr, error) {
		s := address
		if len(args) == 1 {
			s = args[0]
		}
		if s == "" {
			return netip.Addr{}, usagef("give the address as an argument or with --address")
		}
		return addr(s, "fixed address")
	}
	show := &cobra.Command{
		Use: "show <address>", Short: "show a fixed address", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := target(args)
			if err != nil {
				return err
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			f, err := c.GetFixedIP(cmd.Context(), a)
			if err != nil {
				return err
			}
			return g.print(f, []string{"ADDRESS", "CIDR", "HOSTNAME", "HOST", "RESERVED"},
				[][]string{{f.Address, f.CIDR, orDash(f.Hostname), orDash(f.Host), strconv.FormatBool(f.Reserved)}})
		},
	}
	mk := func(name string, reserve bool) *cobra.Command {
		return &cobra.Command{
			Use: name + " <address>", Short: name + " a fixed address", Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				a, err := target(args)
				if err != nil {
					return err
				}
				c, err := g.client(cmd)
				if err != nil {
					return err
				}
				if err := c.SetFixedIPReserved(cmd.Context(), a, reserve); err != nil {
					return err
				}
				return g.done("%sd %s", name, a)
			},
		}
	}
	cmd.AddCommand(fixedIPListCmd(g))
	for _, c := range []*cobra.Command{show, mk("reserve", true), mk("unreserve", false)} {
		c.Flags().SetNormalizeFunc(underscores)
		c.Flags().StringVar(&address, "address", "", "the fixed address")
		cmd.AddCommand(c)
	}
	return cmd
}

// ---- floating-ip ----

func floatingIPCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "floating-ip", Short: "floating address ranges, allocation and association"}
	var ipRange, pool, iface, fixed, project string
	var all bool

	createRange := &cobra.Command{
		Use: "create-range", Short: "add a range of floating addresses to a pool", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ipRange == "" {
				return usagef("--ip_range is required (a CIDR such as 203.0.113.0/28 or one address)")
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			ips, err := c.CreateFloatingRange(cmd.Context(), model.FloatingRangeRequest{IPRange: ipRange, Pool: pool, Interface: iface})
			if err != nil {
				return err
			}
			return printFloating(g, ips)
		},
	}
	deleteRange := &cobra.Command{
		Use: "delete-range [<ip_range>]", Short: "remove a range of unallocated floating addresses", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := ipRange
			if len(args) == 1 {
				r = args[0]
			}
			if r == "" {
				return usagef("give the range as an argument or with --ip_range")
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteFloatingRange(cmd.Context(), r); err != nil {
				return err
			}
			return g.done("deleted floating range %s", r)
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "list the project's floating addresses (--all: every one, admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			var ips []model.FloatingIP
			if all {
				ips, err = c.ListAllFloatingIPs(cmd.Context())
			} else {
				ips, err = c.ListFloatingIPs(cmd.Context())
			}
			if err != nil {
				return err
			}
			return printFloating(g, ips)
		},
	}
	pools := &cobra.Command{
		Use: "pools", Short: "list floating pools", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			names, err := c.ListFloatingPools(cmd.Context())
			if err != nil {
				return err
			}
			rows := make([][]string, len(names))
			for i, n := range names {
				rows[i] = []string{n}
			}
			return g.print(names, []string{"POOL"}, rows)
		},
	}
	allocate := &cobra.Command{
		Use: "allocate", Short: "allocate a floating address to the project (admins: --project_id for another)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			var f model.FloatingIP
			if project != "" {
				f, err = c.AllocateFloatingIPFor(cmd.Context(), project, pool)
			} else {
				f, err = c.AllocateFloatingIP(cmd.Context(), pool)
			}
			if err != nil {
				return err
			}
			return printFloatingAs(g, f, []model.FloatingIP{f})
		},
	}
	associate := &cobra.Command{
		Use: "associate <floating> <instance>", Short: "NAT a floating address to an instance (uuid or hostname; nova's order <instance> <floating> works too)", Args: cobra.ExactArgs(2),
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
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			uuid, err := resolveInstance(cmd.Context(), c, inst)
			if err != nil {
				return err
			}
			if err := c.AssociateFloatingIP(cmd.Context(), fl, uuid, fx); err != nil {
				return err
			}
			return g.done("associated %s with %s", fl, inst)
		},
	}
	disassociate := &cobra.Command{
		Use: "disassociate <floating> <instance>", Short: "remove a floating address's NAT (either order, as associate)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl, inst, err := floatingAndInstance(args)
			if err != nil {
				return err
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			uuid, err := resolveInstance(cmd.Context(), c, inst)
			if err != nil {
				return err
			}
			if err := c.DisassociateFloatingIP(cmd.Context(), fl, uuid); err != nil {
				return err
			}
			return g.done("disassociated %s from %s", fl, inst)
		},
	}
	release := &cobra.Command{
		Use: "release <floating|id>", Short: "return a floating address to its pool", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if err := c.ReleaseFloatingIP(cmd.Context(), args[0]); err != nil {
				return err
			}
			return g.done("released %s", args[0])
		},
	}
	createRange.Flags().StringVar(&ipRange, "ip_range", "", "CIDR or single address")
	createRange.Flags().StringVar(&pool, "pool", "", "pool name (default the server's default_floating_pool)")
	createRange.Flags().StringVar(&iface, "interface", "", "public interface (default public_interface)")
	deleteRange.Flags().StringVar(&ipRange, "ip_range", "", "CIDR or single address")
	list.Flags().BoolVar(&all, "all", false, "every floating address (admin)")
	allocate.Flags().StringVar(&pool, "pool", "", "pool (default the server's default_floating_pool)")
	allocate.Flags().StringVar(&project, "project_id", "", "allocate to this project (admin; its quota applies)")
	release.ValidArgsFunction = g.complete(completeFloating)
	associate.ValidArgsFunction = g.complete(func(ctx context.Context, c *client.Client) ([]string, error) {
		fs, err := completeFloating(ctx, c)
		is, err2 := completeInstances(ctx, c)
		return append(fs, is...), errors.Join(err, err2)
	})
	disassociate.ValidArgsFunction = associate.ValidArgsFunction
	associate.Flags().StringVar(&fixed, "fixed_address", "", "which fixed address of the instance (default its first)")
	for _, c := range []*cobra.Command{createRange, deleteRange, list, pools, allocate, associate, disassociate, release} {
		c.Flags().SetNormalizeFunc(underscores)
		cmd.AddCommand(c)
	}
	return cmd
}

func printFloating(g *globals, ips []model.FloatingIP) error { return printFloatingAs(g, ips, ips) }

func printFloatingAs(g *globals, v any, ips []model.FloatingIP) error {
	rows := make([][]string, 0, len(ips))
	for _, f := range ips {
		rows = append(rows, []string{strconv.FormatInt(f.ID, 10), f.Address.String(), f.Pool, orDash(f.ProjectID),
			addrStr(f.FixedAddress), orDash(f.InstanceUUID), orDash(f.Interface)})
	}
	return g.print(v, []string{"ID", "ADDRESS", "POOL", "PROJECT", "FIXED", "INSTANCE", "INTERFACE"}, rows)
}

// ---- secgroup ----

func secgroupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "secgroup", Short: "security groups and their rules"}
	var all bool
	var desc, proto, cidr string
	var from, to int
	var source string
	list := &cobra.Command{
		Use: "list", Short: "list security groups", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			gs, err := c.ListSecurityGroups(cmd.Context(), all)
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(gs))
			for _, sg := range gs {
				rows = append(rows, []string{strconv.FormatInt(sg.ID, 10), sg.Name, sg.ProjectID, strconv.Itoa(len(sg.Rules)), sg.Description})
			}
			return g.print(gs, []string{"ID", "NAME", "PROJECT", "RULES", "DESCRIPTION"}, rows)
		},
	}
	list.Flags().BoolVar(&all, "all", false, "every project's groups (admin)")
	show := &cobra.Command{
		Use: "show <group>", Short: "show a group (id or name) and its rules", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			id, err := resolveGroup(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			sg, err := c.GetSecurityGroup(cmd.Context(), id)
			if err != nil {
				return err
			}
			return printRules(g, sg, sg.Rules)
		},
	}
	create := &cobra.Command{
		Use: "create <name>", Short: "create a security group", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			sg, err := c.CreateSecurityGroup(cmd.Context(), args[0], desc)
			if err != nil {
				return err
			}
			return g.print(sg, []string{"ID", "NAME", "PROJECT", "DESCRIPTION"},
				[][]string{{strconv.FormatInt(sg.ID, 10), sg.Name, sg.ProjectID, sg.Description}})
		},
	}
	create.Flags().StringVar(&desc, "description", "", "description")
	del := &cobra.Command{
		Use: "delete <group>", Short: "delete a security group (id or name)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			id, err := resolveGroup(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			if err := c.DeleteSecurityGroup(cmd.Context(), id); err != nil {
				return err
			}
			return g.done("deleted security group %d", id)
		},
	}
	ruleAdd := &cobra.Command{
		Use: "rule-add <group>", Short: "admit traffic to a group's members (group by id or name)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			id, err := resolveGroup(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			var sourceID int64
			if source != "" {
				if sourceID, err = resolveGroup(cmd.Context(), c, source); err != nil {
					return fmt.Errorf("--source_group: %w", err)
				}
			}
			rule := model.SecurityGroupRule{GroupID: id, Protocol: proto, FromPort: from, ToPort: to, SourceGroupID: sourceID}
			if cidr != "" {
				p, err := netip.ParsePrefix(cidr)
				if err != nil || !p.Addr().Is4() {
					return fmt.Errorf("--cidr %q is not an IPv4 CIDR such as 192.0.2.0/24", cidr)
				}
				rule.CIDR = p
			}
			r, err := c.CreateSecurityGroupRule(cmd.Context(), rule)
			if err != nil {
				return err
			}
			return printRules(g, r, []model.SecurityGroupRule{r})
		},
	}
	rf := ruleAdd.Flags()
	rf.SetNormalizeFunc(underscores)
	rf.StringVar(&proto, "protocol", "", "tcp, udp or icmp")
	rf.IntVar(&from, "from_port", -1, "first port (icmp: type)")
	rf.IntVar(&to, "to_port", -1, "last port (icmp: code)")
	rf.StringVar(&cidr, "cidr", "", "source CIDR (default 0.0.0.0/0)")
	rf.StringVar(&source, "source_group", "", "source group (id or name) instead of a CIDR")
	ruleDel := &cobra.Command{
		Use: "rule-delete <rule-id>", Short: "delete a rule", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := id64(args[0], "rule")
			if err != nil {
				return err
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteSecurityGroupRule(cmd.Context(), id); err != nil {
				return err
			}
			return g.done("deleted rule %d", id)
		},
	}
	for _, c := range []*cobra.Command{show, del, ruleAdd} {
		c.ValidArgsFunction = g.complete(completeGroups)
	}
	cmd.AddCommand(list, show, create, del, ruleAdd, ruleDel)
	return cmd
}

func printRules(g *globals, v any, rules []model.SecurityGroupRule) error {
	rows := make([][]string, 0, len(rules))
	for _, r := range rules {
		src := "0.0.0.0/0"
		if r.CIDR.IsValid() {
			src = r.CIDR.String()
		} else if r.SourceGroupID != 0 {
			src = "group " + strconv.FormatInt(r.SourceGroupID, 10)
		}
		rows = append(rows, []string{strconv.FormatInt(r.ID, 10), strconv.FormatInt(r.GroupID, 10), orDash(r.Protocol),
			strconv.Itoa(r.FromPort), strconv.Itoa(r.ToPort), src})
	}
	return g.print(v, []string{"RULE", "GROUP", "PROTOCOL", "FROM", "TO", "SOURCE"}, rows)
}

// ---- instance ----

func instanceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "instance", Short: "allocate and release instances' networking"}
	var req model.BootRequest
	var fixed string
	boot := &cobra.Command{
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
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			d, err := c.BootInstance(cmd.Context(), req)
			if err != nil {
				return err
			}
			return printInstances(g, d, []model.InstanceDetail{d})
		},
	}
	bf := boot.Flags()
	bf.SetNormalizeFunc(underscores)
	bf.StringVar(&req.Host, "host", "", "compute host")
	bf.StringVar(&req.UUID, "uuid", "", "instance uuid (default generated)")
	bf.StringVar(&req.ProjectID, "project_id", "", "project (admin only; default the token's)")
	bf.StringVar(&req.Network, "network", "", "network id, uuid or label (default the first the project may use)")
	bf.StringVar(&fixed, "fixed_address", "", "a specific fixed address")
	bf.StringArrayVar(&req.SecurityGroups, "security_group", nil, "security group name (repeatable; default \"default\")")
	bf.StringVar(&req.UserData, "user_data", "", "user data for the metadata service")
	bf.StringVar(&req.KeyName, "key_name", "", "key pair name")
	bf.StringVar(&req.KeyData, "key_data", "", "public key")

	list := &cobra.Command{
		Use: "list", Short: "list instances", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			ds, err := c.ListInstances(cmd.Context())
			if err != nil {
				return err
			}
			return printInstances(g, ds, ds)
		},
	}
	show := &cobra.Command{
		Use: "show <instance>", Short: "show an instance's networking (uuid or hostname): per VIF its network, bridge, tap device and MAC", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			uuid, err := resolveInstance(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			d, err := c.GetInstance(cmd.Context(), uuid)
			if err != nil {
				return err
			}
			return printInstanceVIFs(cmd.Context(), g, c, d)
		},
	}
	del := &cobra.Command{
		Use: "delete <instance>", Short: "release an instance's networking (uuid or hostname)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			uuid, err := resolveInstance(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			if err := c.DeleteInstance(cmd.Context(), uuid); err != nil {
				return err
			}
			return g.done("deleted instance %s", args[0])
		},
	}
	show.ValidArgsFunction = g.complete(completeInstances)
	del.ValidArgsFunction = g.complete(completeInstances)
	cmd.AddCommand(boot, list, show, del)
	return cmd
}

func printInstances(g *globals, v any, ds []model.InstanceDetail) error {
	rows := make([][]string, 0, len(ds))
	for _, d := range ds {
		var fixed, macs, floats []string
		for _, f := range d.FixedIPs {
			fixed = append(fixed, f.Address.String())
		}
		for _, vif := range d.VIFs {
			macs = append(macs, vif.MAC)
		}
		for _, f := range d.FloatingIPs {
			floats = append(floats, f.Address.String())
		}
		rows = append(rows, []string{d.UUID, orDash(d.Hostname), d.ProjectID, d.Host,
			orDash(strings.Join(fixed, ",")), orDash(strings.Join(macs, ",")), orDash(strings.Join(floats, ","))})
	}
	return g.print(v, []string{"UUID", "HOSTNAME", "PROJECT", "HOST", "FIXED", "MAC", "FLOATING"}, rows)
}
