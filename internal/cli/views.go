package cli

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"novanet/internal/client"
	"novanet/internal/model"
)

// The operator's views: hosts (what `openstack network agent list` gave).

func hostCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "the hosts agents run on"}
	list := &cobra.Command{
		Use: "list", Short: "every host: roles, applied revision, last seen, agent version, last problem (admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			hs, err := c.ListHosts(cmd.Context())
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(hs))
			for _, h := range hs {
				seen := "never"
				if !h.LastSeen.IsZero() {
					seen = h.LastSeen.UTC().Format(time.RFC3339)
				}
				applied := strconv.FormatInt(h.AppliedRevision, 10) + "/" + strconv.FormatInt(h.Revision, 10)
				rows = append(rows, []string{h.Host, orDash(strings.Join(h.Roles, ",")), applied, seen, orDash(h.Version), orDash(h.Problem)})
			}
			return g.print(hs, []string{"HOST", "ROLES", "APPLIED", "LAST_SEEN", "VERSION", "PROBLEM"}, rows)
		},
	}
	cmd.AddCommand(list)
	return cmd
}

// printInstanceVIFs shows one instance per VIF: the network, bridge, tap
// device and MAC a hypervisor needs to plug it (JSON: the instance with
// its VIFs, each with its bridge).
func printInstanceVIFs(ctx context.Context, g *globals, c *client.Client, d model.InstanceDetail) error {
	nets, err := c.ListNetworks(ctx)
	if err != nil {
		return err
	}
	byID := map[int64]model.Network{}
	for _, n := range nets {
		byID[n.ID] = n
	}
	type vifView struct {
		model.VIF
		Network string   `json:"network"`
		Bridge  string   `json:"bridge"`
		Fixed   []string `json:"fixed_addresses"`
	}
	out := struct {
		model.InstanceDetail
		VIFs []vifView `json:"vifs"`
	}{InstanceDetail: d, VIFs: []vifView{}}
	var floats []string
	for _, f := range d.FloatingIPs {
		floats = append(floats, f.Address.String())
	}
	rows := [][]string{}
	for _, v := range d.VIFs {
		vv := vifView{VIF: v, Network: byID[v.NetworkID].Label, Bridge: byID[v.NetworkID].Bridge, Fixed: []string{}}
		for _, f := range d.FixedIPs {
			if f.VIFID == v.ID {
				vv.Fixed = append(vv.Fixed, f.Address.String())
			}
		}
		out.VIFs = append(out.VIFs, vv)
		rows = append(rows, []string{d.UUID, orDash(d.Hostname), d.Host, orDash(vv.Network), orDash(vv.Bridge), orDash(v.Device), v.MAC,
			orDash(strings.Join(vv.Fixed, ",")), orDash(strings.Join(floats, ","))})
	}
	return g.print(out, []string{"UUID", "HOSTNAME", "HOST", "NETWORK", "BRIDGE", "TAP", "MAC", "FIXED", "FLOATING"}, rows)
}

// fixedIPListCmd is `fixed-ip list` (nova-manage fixed list).
func fixedIPListCmd(g *globals) *cobra.Command {
	var network string
	var all bool
	cmd := &cobra.Command{
		Use: "list", Short: "list fixed addresses in use (--all: free ones too), as nova-manage fixed list (admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			rows, err := c.ListFixedIPs(cmd.Context(), network, all, false)
			if err != nil {
				return err
			}
			return printFixedRows(g, rows)
		},
	}
	cmd.Flags().StringVar(&network, "network", "", "only this network (id, uuid or label)")
	cmd.Flags().BoolVar(&all, "all", false, "free addresses too")
	cmd.RegisterFlagCompletionFunc("network", g.complete(completeNetworks))
	return cmd
}

func printFixedRows(g *globals, rs []model.FixedIPRow) error {
	rows := make([][]string, 0, len(rs))
	for _, r := range rs {
		rows = append(rows, []string{r.Network, r.Address.String(), orDash(r.MAC), orDash(r.Hostname), orDash(r.Host),
			orDash(r.DHCPHost), strconv.FormatBool(r.Allocated), strconv.FormatBool(r.Leased), strconv.FormatBool(r.Reserved)})
	}
	return g.print(rs, []string{"NETWORK", "ADDRESS", "MAC", "HOSTNAME", "HOST", "DHCP_HOST", "ALLOCATED", "LEASED", "RESERVED"}, rows)
}

// leaseCmd is `lease list`: what dnsmasq leased (the store's view,
// updated by every host's dhcpbridge events), per DHCP host.
func leaseCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "lease", Short: "DHCP leases as dnsmasq reported them"}
	var host, network string
	list := &cobra.Command{
		Use: "list", Short: "leased addresses per DHCP host (admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			rs, err := c.ListFixedIPs(cmd.Context(), network, false, true)
			if err != nil {
				return err
			}
			kept := []model.FixedIPRow{}
			for _, r := range rs {
				if host == "" || r.DHCPHost == host {
					kept = append(kept, r)
				}
			}
			rows := make([][]string, 0, len(kept))
			for _, r := range kept {
				rows = append(rows, []string{orDash(r.DHCPHost), r.Network, r.Bridge, r.Address.String(), orDash(r.MAC), orDash(r.Hostname), orDash(r.InstanceUUID)})
			}
			return g.print(kept, []string{"DHCP_HOST", "NETWORK", "BRIDGE", "ADDRESS", "MAC", "HOSTNAME", "INSTANCE"}, rows)
		},
	}
	list.Flags().StringVar(&host, "host", "", "only leases this host's dnsmasq gave")
	list.Flags().StringVar(&network, "network", "", "only this network (id, uuid or label)")
	cmd.AddCommand(list)
	return cmd
}
