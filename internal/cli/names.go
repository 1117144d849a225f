package cli

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"novanet/internal/client"
	"novanet/internal/model"
)

// Names wherever nova accepted them: instances by hostname (when unique),
// security groups by name; networks by label are resolved by the server.
// An ambiguous name is an error listing the candidates.

// resolveInstance returns the uuid of an instance given by uuid or
// hostname.
func resolveInstance(ctx context.Context, c *client.Client, ref string) (string, error) {
	if _, err := uuid.Parse(ref); err == nil {
		return ref, nil
	}
	ds, err := c.ListInstances(ctx)
	if err != nil {
		return "", err
	}
	var hits []string
	for _, d := range ds {
		if d.Hostname == ref {
			hits = append(hits, fmt.Sprintf("%s (on %s)", d.UUID, d.Host))
		}
	}
	switch len(hits) {
	case 0:
		return "", fmt.Errorf("no instance has uuid or hostname %q; see `novanet instance list`", ref)
	case 1:
		u, _, _ := strings.Cut(hits[0], " ")
		return u, nil
	}
	return "", fmt.Errorf("hostname %q is ambiguous: instances %s; give the uuid", ref, strings.Join(hits, ", "))
}

// resolveGroup returns the id of a security group given by id or name
// (the caller's project's groups).
func resolveGroup(ctx context.Context, c *client.Client, ref string) (int64, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil && id > 0 {
		return id, nil
	}
	gs, err := c.ListSecurityGroups(ctx, false)
	if err != nil {
		return 0, err
	}
	var hits []model.SecurityGroup
	for _, g := range gs {
		if g.Name == ref {
			hits = append(hits, g)
		}
	}
	switch len(hits) {
	case 0:
		return 0, fmt.Errorf("no security group has id or name %q; see `novanet secgroup list`", ref)
	case 1:
		return hits[0].ID, nil
	}
	var ids []string
	for _, g := range hits {
		ids = append(ids, fmt.Sprintf("%d (project %s)", g.ID, g.ProjectID))
	}
	return 0, fmt.Errorf("security group name %q is ambiguous: ids %s; give the id", ref, strings.Join(ids, ", "))
}

// floatingAndInstance sorts `floating-ip associate` arguments: novanet's
// order (<floating> <instance>) or nova's (<instance> <floating>).
func floatingAndInstance(args []string) (netip.Addr, string, error) {
	if a, err := netip.ParseAddr(args[0]); err == nil && a.Is4() {
		return a, args[1], nil
	}
	if a, err := netip.ParseAddr(args[1]); err == nil && a.Is4() {
		return a, args[0], nil
	}
	return netip.Addr{}, "", usagef("neither %q nor %q is an IPv4 floating address; give <floating-address> <instance> (nova's order <instance> <floating-address> works too)", args[0], args[1])
}

// ---- shell completion from the API ----

type completer func(ctx context.Context, c *client.Client) ([]string, error)

// complete builds a cobra completion that asks the API (with the usual
// --os-url/--os-token/config); nothing is offered when it cannot.
func (g *globals) complete(f completer) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		c, err := g.client(cmd)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		words, err := f(cmd.Context(), c)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, w := range words {
			if w != "" && strings.HasPrefix(w, prefix) {
				out = append(out, w)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func completeInstances(ctx context.Context, c *client.Client) ([]string, error) {
	ds, err := c.ListInstances(ctx)
	var out []string
	for _, d := range ds {
		out = append(out, d.UUID, d.Hostname)
	}
	return out, err
}

func completeNetworks(ctx context.Context, c *client.Client) ([]string, error) {
	ns, err := c.ListNetworks(ctx)
	var out []string
	for _, n := range ns {
		out = append(out, n.Label, n.UUID, strconv.FormatInt(n.ID, 10))
	}
	return out, err
}

func completeGroups(ctx context.Context, c *client.Client) ([]string, error) {
	gs, err := c.ListSecurityGroups(ctx, false)
	var out []string
	for _, sg := range gs {
		out = append(out, sg.Name, strconv.FormatInt(sg.ID, 10))
	}
	return out, err
}

func completeFloating(ctx context.Context, c *client.Client) ([]string, error) {
	fs, err := c.ListFloatingIPs(ctx)
	var out []string
	for _, f := range fs {
		out = append(out, f.Address.String())
	}
	return out, err
}

// ---- arguments ----

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
