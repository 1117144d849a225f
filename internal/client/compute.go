package client

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"

	"novanet/internal/model"
	"novanet/internal/wire"
)

// CreateFloatingRange adds a range of floating addresses to a pool
// (nova-manage floating create) and returns the created addresses.
func (c *Client) CreateFloatingRange(ctx context.Context, req model.FloatingRangeRequest) ([]model.FloatingIP, error) {
	in := map[string]any{"floating_ips_bulk_create": map[string]string{
		"ip_range": req.IPRange, "pool": req.Pool, "interface": req.Interface,
	}}
	var out wire.BulkCreateResult
	if err := c.do(ctx, http.MethodPost, "/v2.1/os-floating-ips-bulk", in, &out); err != nil {
		return nil, err
	}
	ips := make([]model.FloatingIP, len(out.Info))
	for i, f := range out.Info {
		ips[i] = f.Model()
	}
	return ips, nil
}

// DeleteFloatingRange removes a range of unallocated floating addresses.
func (c *Client) DeleteFloatingRange(ctx context.Context, ipRange string) error {
	return c.do(ctx, http.MethodPut, "/v2.1/os-floating-ips-bulk/delete", map[string]string{"ip_range": ipRange}, nil)
}

// ListAllFloatingIPs lists every floating address (admin).
func (c *Client) ListAllFloatingIPs(ctx context.Context) ([]model.FloatingIP, error) {
	var out wire.BulkFloatingIPList
	if err := c.do(ctx, http.MethodGet, "/v2.1/os-floating-ips-bulk", nil, &out); err != nil {
		return nil, err
	}
	ips := make([]model.FloatingIP, len(out.Info))
	for i, f := range out.Info {
		ips[i] = f.Model()
	}
	return ips, nil
}

// ListFloatingIPs lists the token's project's floating addresses.
func (c *Client) ListFloatingIPs(ctx context.Context) ([]model.FloatingIP, error) {
	var out wire.FloatingIPList
	if err := c.do(ctx, http.MethodGet, "/v2.1/os-floating-ips", nil, &out); err != nil {
		return nil, err
	}
	ips := make([]model.FloatingIP, len(out.FloatingIPs))
	for i, f := range out.FloatingIPs {
		ips[i] = f.Model()
	}
	return ips, nil
}

// GetFloatingIP returns one floating address by id or address.
func (c *Client) GetFloatingIP(ctx context.Context, ref string) (model.FloatingIP, error) {
	var out wire.FloatingIPOne
	err := c.do(ctx, http.MethodGet, "/v2.1/os-floating-ips/"+url.PathEscape(ref), nil, &out)
	return out.FloatingIP.Model(), err
}

// AllocateFloatingIP takes a floating address from pool ("" for the
// default pool) for the token's project.
func (c *Client) AllocateFloatingIP(ctx context.Context, pool string) (model.FloatingIP, error) {
	var in any = struct{}{}
	if pool != "" {
		in = map[string]string{"pool": pool}
	}
	var out wire.FloatingIPOne
	err := c.do(ctx, http.MethodPost, "/v2.1/os-floating-ips", in, &out)
	return out.FloatingIP.Model(), err
}

// ReleaseFloatingIP returns a floating address (id or address) to its pool.
func (c *Client) ReleaseFloatingIP(ctx context.Context, ref string) error {
	return c.do(ctx, http.MethodDelete, "/v2.1/os-floating-ips/"+url.PathEscape(ref), nil, nil)
}

// AssociateFloatingIP binds floating to the instance (fixed may be zero:
// the instance's first fixed address).
func (c *Client) AssociateFloatingIP(ctx context.Context, floating netip.Addr, instanceUUID string, fixed netip.Addr) error {
	body := map[string]string{"address": floating.String()}
	if fixed.IsValid() {
		body["fixed_address"] = fixed.String()
	}
	return c.serverAction(ctx, instanceUUID, map[string]any{"addFloatingIp": body})
}

// DisassociateFloatingIP unbinds floating from the instance.
func (c *Client) DisassociateFloatingIP(ctx context.Context, floating netip.Addr, instanceUUID string) error {
	return c.serverAction(ctx, instanceUUID, map[string]any{"removeFloatingIp": map[string]string{"address": floating.String()}})
}

// ListFloatingPools returns the pool names.
func (c *Client) ListFloatingPools(ctx context.Context) ([]string, error) {
	var out wire.PoolList
	if err := c.do(ctx, http.MethodGet, "/v2.1/os-floating-ip-pools", nil, &out); err != nil {
		return nil, err
	}
	names := make([]string, len(out.Pools))
	for i, p := range out.Pools {
		names[i] = p.Name
	}
	return names, nil
}

func (c *Client) serverAction(ctx context.Context, uuid string, body any) error {
	return c.do(ctx, http.MethodPost, "/v2.1/servers/"+url.PathEscape(uuid)+"/action", body, nil)
}

// ---- security groups ----

// ListSecurityGroups lists the token's project's groups (all projects'
// with all=true, admin only).
func (c *Client) ListSecurityGroups(ctx context.Context, all bool) ([]model.SecurityGroup, error) {
	path := "/v2.1/os-security-groups"
	if all {
		path += "?all_tenants=1"
	}
	var out wire.SecurityGroupList
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	gs := make([]model.SecurityGroup, len(out.Groups))
	for i, g := range out.Groups {
		gs[i] = g.Model()
	}
	return gs, nil
}

// GetSecurityGroup returns one group.
func (c *Client) GetSecurityGroup(ctx context.Context, id int64) (model.SecurityGroup, error) {
	var out wire.SecurityGroupOne
	err := c.do(ctx, http.MethodGet, "/v2.1/os-security-groups/"+strconv.FormatInt(id, 10), nil, &out)
	return out.Group.Model(), err
}

// CreateSecurityGroup creates a group in the token's project.
func (c *Client) CreateSecurityGroup(ctx context.Context, name, description string) (model.SecurityGroup, error) {
	in := map[string]any{"security_group": map[string]string{"name": name, "description": description}}
	var out wire.SecurityGroupOne
	err := c.do(ctx, http.MethodPost, "/v2.1/os-security-groups", in, &out)
	return out.Group.Model(), err
}

// DeleteSecurityGroup deletes a group.
func (c *Client) DeleteSecurityGroup(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodDelete, "/v2.1/os-security-groups/"+strconv.FormatInt(id, 10), nil, nil)
}

// CreateSecurityGroupRule adds a rule to rule.GroupID.
func (c *Client) CreateSecurityGroupRule(ctx context.Context, rule model.SecurityGroupRule) (model.SecurityGroupRule, error) {
	body := map[string]any{
		"parent_group_id": rule.GroupID,
		"ip_protocol":     rule.Protocol,
		"from_port":       rule.FromPort,
		"to_port":         rule.ToPort,
	}
	if rule.Protocol == "" {
		body["ip_protocol"] = nil
	}
	if rule.CIDR.IsValid() {
		body["cidr"] = rule.CIDR.String()
	}
	if rule.SourceGroupID != 0 {
		body["group_id"] = rule.SourceGroupID
	}
	var out wire.RuleOne
	if err := c.do(ctx, http.MethodPost, "/v2.1/os-security-group-rules", map[string]any{"security_group_rule": body}, &out); err != nil {
		return model.SecurityGroupRule{}, err
	}
	return out.Rule.Model(), nil
}

// DeleteSecurityGroupRule deletes a rule.
func (c *Client) DeleteSecurityGroupRule(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodDelete, "/v2.1/os-security-group-rules/"+strconv.FormatInt(id, 10), nil, nil)
}

// AddInstanceSecurityGroup puts an instance in the named group.
func (c *Client) AddInstanceSecurityGroup(ctx context.Context, uuid, group string) error {
	return c.serverAction(ctx, uuid, map[string]any{"addSecurityGroup": map[string]string{"name": group}})
}

// RemoveInstanceSecurityGroup takes an instance out of the named group.
func (c *Client) RemoveInstanceSecurityGroup(ctx context.Context, uuid, group string) error {
	return c.serverAction(ctx, uuid, map[string]any{"removeSecurityGroup": map[string]string{"name": group}})
}

// Health checks /healthz.
func (c *Client) Health(ctx context.Context) error {
	if err := c.do(ctx, http.MethodGet, "/healthz", nil, nil); err != nil {
		return fmt.Errorf("health check of %s: %w", c.base, err)
	}
	return nil
}
