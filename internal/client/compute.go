package client

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"

	"novanet/internal/model"
)

// novaFloating is nova's os-floating-ips view plus novanet's extensions
// (project_id, host, interface, auto_assigned).
type novaFloating struct {
	ID           int64   `json:"id"`
	IP           string  `json:"ip"`
	FixedIP      *string `json:"fixed_ip"`
	InstanceID   *string `json:"instance_id"`
	Pool         string  `json:"pool"`
	ProjectID    string  `json:"project_id"`
	Host         string  `json:"host"`
	Interface    string  `json:"interface"`
	AutoAssigned bool    `json:"auto_assigned"`
}

func (f novaFloating) model() model.FloatingIP {
	out := model.FloatingIP{ID: f.ID, Pool: f.Pool, ProjectID: f.ProjectID, Host: f.Host, Interface: f.Interface, AutoAssigned: f.AutoAssigned}
	out.Address, _ = netip.ParseAddr(f.IP)
	if f.FixedIP != nil {
		out.FixedAddress, _ = netip.ParseAddr(*f.FixedIP)
	}
	if f.InstanceID != nil {
		out.InstanceUUID = *f.InstanceID
	}
	return out
}

// bulkFloating is nova's os-floating-ips-bulk view.
type bulkFloating struct {
	Address      string  `json:"address"`
	FixedIP      *string `json:"fixed_ip"`
	InstanceUUID *string `json:"instance_uuid"`
	Interface    string  `json:"interface"`
	Pool         string  `json:"pool"`
	ProjectID    *string `json:"project_id"`
	ID           int64   `json:"id"`
	Host         string  `json:"host"`
}

func (f bulkFloating) model() model.FloatingIP {
	out := model.FloatingIP{ID: f.ID, Pool: f.Pool, Interface: f.Interface, Host: f.Host}
	out.Address, _ = netip.ParseAddr(f.Address)
	if f.FixedIP != nil {
		out.FixedAddress, _ = netip.ParseAddr(*f.FixedIP)
	}
	if f.InstanceUUID != nil {
		out.InstanceUUID = *f.InstanceUUID
	}
	if f.ProjectID != nil {
		out.ProjectID = *f.ProjectID
	}
	return out
}

// CreateFloatingRange adds a range of floating addresses to a pool
// (nova-manage floating create) and returns the created addresses.
func (c *Client) CreateFloatingRange(ctx context.Context, req model.FloatingRangeRequest) ([]model.FloatingIP, error) {
	in := map[string]any{"floating_ips_bulk_create": map[string]string{
		"ip_range": req.IPRange, "pool": req.Pool, "interface": req.Interface,
	}}
	var out struct {
		Created []bulkFloating `json:"floating_ip_info"`
	}
	if err := c.do(ctx, http.MethodPost, "/v2.1/os-floating-ips-bulk", in, &out); err != nil {
		return nil, err
	}
	ips := make([]model.FloatingIP, len(out.Created))
	for i, f := range out.Created {
		ips[i] = f.model()
	}
	return ips, nil
}

// DeleteFloatingRange removes a range of unallocated floating addresses.
func (c *Client) DeleteFloatingRange(ctx context.Context, ipRange string) error {
	return c.do(ctx, http.MethodPut, "/v2.1/os-floating-ips-bulk/delete", map[string]string{"ip_range": ipRange}, nil)
}

// ListAllFloatingIPs lists every floating address (admin).
func (c *Client) ListAllFloatingIPs(ctx context.Context) ([]model.FloatingIP, error) {
	var out struct {
		Info []bulkFloating `json:"floating_ip_info"`
	}
	if err := c.do(ctx, http.MethodGet, "/v2.1/os-floating-ips-bulk", nil, &out); err != nil {
		return nil, err
	}
	ips := make([]model.FloatingIP, len(out.Info))
	for i, f := range out.Info {
		ips[i] = f.model()
	}
	return ips, nil
}

// ListFloatingIPs lists the token's project's floating addresses.
func (c *Client) ListFloatingIPs(ctx context.Context) ([]model.FloatingIP, error) {
	var out struct {
		IPs []novaFloating `json:"floating_ips"`
	}
	if err := c.do(ctx, http.MethodGet, "/v2.1/os-floating-ips", nil, &out); err != nil {
		return nil, err
	}
	ips := make([]model.FloatingIP, len(out.IPs))
	for i, f := range out.IPs {
		ips[i] = f.model()
	}
	return ips, nil
}

// GetFloatingIP returns one floating address by id or address.
func (c *Client) GetFloatingIP(ctx context.Context, ref string) (model.FloatingIP, error) {
	var out struct {
		IP novaFloating `json:"floating_ip"`
	}
	err := c.do(ctx, http.MethodGet, "/v2.1/os-floating-ips/"+url.PathEscape(ref), nil, &out)
	return out.IP.model(), err
}

// AllocateFloatingIP takes a floating address from pool ("" for the
// default pool) for the token's project.
func (c *Client) AllocateFloatingIP(ctx context.Context, pool string) (model.FloatingIP, error) {
	var in any = struct{}{}
	if pool != "" {
		in = map[string]string{"pool": pool}
	}
	var out struct {
		IP novaFloating `json:"floating_ip"`
	}
	err := c.do(ctx, http.MethodPost, "/v2.1/os-floating-ips", in, &out)
	return out.IP.model(), err
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
	var out struct {
		Pools []struct {
			Name string `json:"name"`
		} `json:"floating_ip_pools"`
	}
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

type novaRule struct {
	ID            int64  `json:"id"`
	ParentGroupID int64  `json:"parent_group_id"`
	IPProtocol    string `json:"ip_protocol"`
	FromPort      int    `json:"from_port"`
	ToPort        int    `json:"to_port"`
	IPRange       struct {
		CIDR string `json:"cidr"`
	} `json:"ip_range"`
	Group struct {
		ID       int64  `json:"id"`
		Name     string `json:"name"`
		TenantID string `json:"tenant_id"`
	} `json:"group"`
}

func (r novaRule) model() model.SecurityGroupRule {
	out := model.SecurityGroupRule{ID: r.ID, GroupID: r.ParentGroupID, Protocol: r.IPProtocol,
		FromPort: r.FromPort, ToPort: r.ToPort, SourceGroupID: r.Group.ID}
	if r.IPRange.CIDR != "" {
		out.CIDR, _ = netip.ParsePrefix(r.IPRange.CIDR)
	}
	return out
}

type novaGroup struct {
	ID          int64      `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	TenantID    string     `json:"tenant_id"`
	Rules       []novaRule `json:"rules"`
}

func (g novaGroup) model() model.SecurityGroup {
	out := model.SecurityGroup{ID: g.ID, Name: g.Name, Description: g.Description, ProjectID: g.TenantID}
	for _, r := range g.Rules {
		out.Rules = append(out.Rules, r.model())
	}
	return out
}

// ListSecurityGroups lists the token's project's groups (all projects'
// with all=true, admin only).
func (c *Client) ListSecurityGroups(ctx context.Context, all bool) ([]model.SecurityGroup, error) {
	path := "/v2.1/os-security-groups"
	if all {
		path += "?all_tenants=1"
	}
	var out struct {
		Groups []novaGroup `json:"security_groups"`
	}
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	gs := make([]model.SecurityGroup, len(out.Groups))
	for i, g := range out.Groups {
		gs[i] = g.model()
	}
	return gs, nil
}

// GetSecurityGroup returns one group.
func (c *Client) GetSecurityGroup(ctx context.Context, id int64) (model.SecurityGroup, error) {
	var out struct {
		Group novaGroup `json:"security_group"`
	}
	err := c.do(ctx, http.MethodGet, "/v2.1/os-security-groups/"+strconv.FormatInt(id, 10), nil, &out)
	return out.Group.model(), err
}

// CreateSecurityGroup creates a group in the token's project.
func (c *Client) CreateSecurityGroup(ctx context.Context, name, description string) (model.SecurityGroup, error) {
	in := map[string]any{"security_group": map[string]string{"name": name, "description": description}}
	var out struct {
		Group novaGroup `json:"security_group"`
	}
	err := c.do(ctx, http.MethodPost, "/v2.1/os-security-groups", in, &out)
	return out.Group.model(), err
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
	var out struct {
		Rule novaRule `json:"security_group_rule"`
	}
	if err := c.do(ctx, http.MethodPost, "/v2.1/os-security-group-rules", map[string]any{"security_group_rule": body}, &out); err != nil {
		return model.SecurityGroupRule{}, err
	}
	return out.Rule.model(), nil
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
