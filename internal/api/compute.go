package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"novanet/internal/model"
)

// novaTime is nova's timestamp format (no zone, microseconds), which
// gophercloud parses as JSONRFC3339MilliNoZ.
const novaTime = "2006-01-02T15:04:05.000000"

func tstr(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(novaTime)
}

func astr(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	return a.String()
}

func sstr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// networkView is nova's os-networks network dict (admin fields included).
// It sends dns1/dns2 as nova does and dns_1/dns_2 as gophercloud v1
// expects, so both clients read them.
func networkView(n model.Network) map[string]any {
	vlan := any(nil)
	if n.VLAN != 0 {
		vlan = n.VLAN
	}
	mtu := any(nil)
	if n.MTU != 0 {
		mtu = n.MTU
	}
	return map[string]any{
		"id": n.UUID, "label": n.Label, "cidr": n.CIDR.String(), "netmask": n.Netmask().String(),
		"gateway": astr(n.Gateway), "broadcast": astr(n.Broadcast),
		"dns1": astr(n.DNS1), "dns2": astr(n.DNS2), "dns_1": astr(n.DNS1), "dns_2": astr(n.DNS2),
		"cidr_v6": nil, "gateway_v6": nil, "netmask_v6": nil,
		"created_at": tstr(n.CreatedAt), "updated_at": nil, "deleted_at": nil, "deleted": false,
		"injected": n.Kind == model.KindFlat, "bridge": sstr(n.Bridge), "vlan": vlan,
		"vpn_public_address": nil, "vpn_public_port": nil, "vpn_private_address": nil,
		"dhcp_start": astr(n.DHCPStart), "project_id": sstr(n.ProjectID), "host": sstr(n.Host),
		"bridge_interface": sstr(n.BridgeInterface), "multi_host": n.MultiHost,
		"priority": nil, "rxtx_base": nil, "mtu": mtu, "dhcp_server": astr(n.Gateway),
		"enable_dhcp": n.Kind != model.KindFlat, "share_address": false,
		"kind": string(n.Kind), "numeric_id": n.ID,
	}
}

// networkUserFields are the os-networks fields nova showed a project
// (network_dict's fields); the rest (host, bridge, vlan, dhcp_start,
// project_id, multi_host, ...) describe the datapath and are admin-only.
var networkUserFields = []string{"id", "cidr", "netmask", "gateway", "broadcast", "dns1", "dns2",
	"cidr_v6", "gateway_v6", "label", "netmask_v6", "dns_1", "dns_2"}

// networkViewFor is networkView with the admin-only fields dropped for a
// project's token.
func networkViewFor(p Principal, n model.Network) map[string]any {
	v := networkView(n)
	if p.Role == RoleAdmin {
		return v
	}
	out := make(map[string]any, len(networkUserFields))
	for _, k := range networkUserFields {
		out[k] = v[k]
	}
	return out
}

func tenantNetworkView(n model.Network) map[string]any {
	return map[string]any{"id": n.UUID, "label": n.Label, "cidr": n.CIDR.String()}
}

func floatingView(f model.FloatingIP) map[string]any {
	return map[string]any{
		"id": f.ID, "ip": f.Address.String(), "fixed_ip": astr(f.FixedAddress),
		"instance_id": sstr(f.InstanceUUID), "pool": f.Pool,
		"project_id": sstr(f.ProjectID), "host": sstr(f.Host), "interface": sstr(f.Interface),
		"auto_assigned": f.AutoAssigned,
	}
}

func bulkView(f model.FloatingIP) map[string]any {
	return map[string]any{
		"id": f.ID, "address": f.Address.String(), "fixed_ip": astr(f.FixedAddress),
		"instance_uuid": sstr(f.InstanceUUID), "interface": f.Interface, "pool": f.Pool,
		"project_id": sstr(f.ProjectID), "host": sstr(f.Host),
	}
}

func ruleView(r model.SecurityGroupRule, groups map[int64]model.SecurityGroup) map[string]any {
	v := map[string]any{
		"id": r.ID, "parent_group_id": r.GroupID, "ip_protocol": sstr(r.Protocol),
		"from_port": nil, "to_port": nil, "ip_range": map[string]any{}, "group": map[string]any{},
	}
	if r.Protocol != "" {
		v["from_port"], v["to_port"] = r.FromPort, r.ToPort
	}
	switch {
	case r.SourceGroupID != 0:
		g := map[string]any{"id": r.SourceGroupID}
		if sg, ok := groups[r.SourceGroupID]; ok {
			g["name"], g["tenant_id"] = sg.Name, sg.ProjectID
		}
		v["group"] = g
	case r.CIDR.IsValid():
		v["ip_range"] = map[string]any{"cidr": r.CIDR.String()}
	default:
		v["ip_range"] = map[string]any{"cidr": "0.0.0.0/0"}
	}
	return v
}

func defaultRuleView(r model.SecurityGroupRule) map[string]any {
	v := ruleView(r, nil)
	delete(v, "parent_group_id")
	delete(v, "group")
	return v
}

func groupView(g model.SecurityGroup, groups map[int64]model.SecurityGroup) map[string]any {
	rules := make([]any, 0, len(g.Rules))
	for _, r := range g.Rules {
		rules = append(rules, ruleView(r, groups))
	}
	return map[string]any{"id": g.ID, "name": g.Name, "description": g.Description, "tenant_id": g.ProjectID, "rules": rules}
}

// ---- flexible JSON scalars: nova clients send ids and ports as numbers
// or as numeric strings ----

type flexInt struct {
	set bool
	v   int64
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*f = flexInt{}
		return nil
	}
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*f = flexInt{}
			return nil
		}
	} else {
		s = string(b)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// A type error gets the field's name added by the decoder.
		return &json.UnmarshalTypeError{Value: fmt.Sprintf("value %q", s), Type: reflect.TypeFor[int64]()}
	}
	*f = flexInt{set: true, v: v}
	return nil
}

func invalid(format string, args ...any) error {
	return model.Errorf(model.ErrInvalid, format, args...)
}

func parseAddr(s, what string) (netip.Addr, error) { return model.ParseAddr4(what, s) }

func parseID(s, what string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, model.Errorf(model.ErrNotFound, "%s %q not found: ids are positive integers", what, s)
	}
	return v, nil
}

// ---- routes ----

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{"status": "ok"})
	})
	s.versionRoutes()
	s.identityRoutes()
	s.metricsRoutes()
	s.mux.HandleFunc("/", s.noRoute)
	c := "/v2.1"
	s.handle("GET "+c+"/os-networks", anyUser, s.listNetworks)
	s.handle("POST "+c+"/os-networks", adminOnly, s.createNetwork)
	s.handle("GET "+c+"/os-networks/{id}", anyUser, s.getNetwork)
	s.handle("DELETE "+c+"/os-networks/{id}", adminOnly, s.deleteNetwork)
	s.handle("GET "+c+"/os-tenant-networks", anyUser, s.listTenantNetworks)
	s.handle("GET "+c+"/os-tenant-networks/{id}", anyUser, s.getTenantNetwork)

	s.handle("GET "+c+"/os-floating-ips", anyUser, s.listFloating)
	s.handle("POST "+c+"/os-floating-ips", anyUser, s.allocateFloating)
	s.handle("GET "+c+"/os-floating-ips/{id}", anyUser, s.getFloating)
	s.handle("DELETE "+c+"/os-floating-ips/{id}", anyUser, s.releaseFloating)
	s.handle("GET "+c+"/os-floating-ip-pools", anyUser, s.listPools)
	s.handle("GET "+c+"/os-floating-ips-bulk", adminOnly, s.listBulk)
	s.handle("GET "+c+"/os-floating-ips-bulk/{host}", adminOnly, s.listBulk)
	s.handle("POST "+c+"/os-floating-ips-bulk", adminOnly, s.createBulk)
	s.handle("PUT "+c+"/os-floating-ips-bulk/delete", adminOnly, s.deleteBulk)

	s.handle("GET "+c+"/os-fixed-ips/{address}", adminOnly, s.getFixed)
	s.handle("POST "+c+"/os-fixed-ips/{address}/action", adminOnly, s.fixedAction)

	s.handle("GET "+c+"/os-security-groups", anyUser, s.listGroups)
	s.handle("POST "+c+"/os-security-groups", anyUser, s.createGroup)
	s.handle("GET "+c+"/os-security-groups/{id}", anyUser, s.getGroup)
	s.handle("PUT "+c+"/os-security-groups/{id}", anyUser, s.updateGroup)
	s.handle("DELETE "+c+"/os-security-groups/{id}", anyUser, s.deleteGroup)
	s.handle("POST "+c+"/os-security-group-rules", anyUser, s.createRule)
	s.handle("DELETE "+c+"/os-security-group-rules/{id}", anyUser, s.deleteRule)
	s.handle("GET "+c+"/os-security-group-default-rules", adminOnly, s.listDefaultRules)
	s.handle("POST "+c+"/os-security-group-default-rules", adminOnly, s.createDefaultRule)
	s.handle("GET "+c+"/os-security-group-default-rules/{id}", adminOnly, s.getDefaultRule)
	s.handle("DELETE "+c+"/os-security-group-default-rules/{id}", adminOnly, s.deleteDefaultRule)

	s.handle("POST "+c+"/servers/{id}/action", anyUser, s.serverAction)
	s.handle("GET "+c+"/servers/{id}/os-security-groups", anyUser, s.serverGroups)

	s.nativeRoutes()
}

// ---- os-networks, os-tenant-networks ----

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) error {
	nets, err := s.b.ListNetworks(r.Context(), principal(r).Scope())
	if err != nil {
		return err
	}
	out := make([]any, 0, len(nets))
	for _, n := range nets {
		out = append(out, networkViewFor(principal(r), n))
	}
	writeJSON(w, 200, map[string]any{"networks": out})
	return nil
}

func (s *Server) getNetwork(w http.ResponseWriter, r *http.Request) error {
	n, err := s.b.GetNetwork(r.Context(), principal(r).Scope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, map[string]any{"network": networkViewFor(principal(r), n)})
	return nil
}

func (s *Server) deleteNetwork(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.DeleteNetwork(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// novaNetworkCreate is nova's os-networks create body plus novanet's
// kind, host, num_networks and network_size.
type novaNetworkCreate struct {
	Label           string  `json:"label"`
	CIDR            string  `json:"cidr"`
	CIDRv6          string  `json:"cidr_v6"`
	Bridge          string  `json:"bridge"`
	BridgeInterface string  `json:"bridge_interface"`
	MultiHost       bool    `json:"multi_host"`
	DNS1            string  `json:"dns1"`
	DNS2            string  `json:"dns2"`
	Gateway         string  `json:"gateway"`
	DHCPStart       string  `json:"dhcp_start"`
	VLAN            flexInt `json:"vlan"`
	VLANStart       flexInt `json:"vlan_start"`
	ProjectID       string  `json:"project_id"`
	NumNetworks     flexInt `json:"num_networks"`
	NetworkSize     flexInt `json:"network_size"`
	Kind            string  `json:"kind"`
	Host            string  `json:"host"`
	MTU             flexInt `json:"mtu"`
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Network *novaNetworkCreate `json:"network"`
	}
	if err := decode(w, r, &body, true); err != nil {
		return err
	}
	n := body.Network
	if n == nil {
		return invalid(`missing "network" object in the request body`)
	}
	if n.CIDRv6 != "" {
		return invalid("cidr_v6 is not supported: novanet networks are IPv4 only")
	}
	if n.CIDR == "" {
		return invalid(`"cidr" is required (an IPv4 CIDR such as 10.0.0.0/24)`)
	}
	req := model.NetworkCreateRequest{
		Label: n.Label, Kind: model.ManagerKind(n.Kind), FixedRangeV4: n.CIDR,
		NumNetworks: int(n.NumNetworks.v), NetworkSize: int(n.NetworkSize.v),
		Bridge: n.Bridge, BridgeInterface: n.BridgeInterface, MultiHost: n.MultiHost,
		DNS1: n.DNS1, DNS2: n.DNS2, Gateway: n.Gateway, DHCPStart: n.DHCPStart,
		VLAN: int(n.VLAN.v), ProjectID: n.ProjectID, Host: n.Host, MTU: int(n.MTU.v),
	}
	if req.VLAN == 0 {
		req.VLAN = int(n.VLANStart.v)
	}
	nets, err := s.b.CreateNetworks(r.Context(), req)
	if err != nil {
		return err
	}
	if len(nets) == 0 {
		return fmt.Errorf("create network %q: backend created no network", req.Label)
	}
	writeJSON(w, 200, map[string]any{"network": networkView(nets[0])})
	return nil
}

func (s *Server) listTenantNetworks(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	scope := p.Scope()
	// os-tenant-networks is the project's view even for admins.
	scope.Admin = false
	nets, err := s.b.ListNetworks(r.Context(), scope)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(nets))
	for _, n := range nets {
		out = append(out, tenantNetworkView(n))
	}
	writeJSON(w, 200, map[string]any{"networks": out})
	return nil
}

func (s *Server) getTenantNetwork(w http.ResponseWriter, r *http.Request) error {
	n, err := s.b.GetNetwork(r.Context(), principal(r).Scope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, map[string]any{"network": tenantNetworkView(n)})
	return nil
}

// ---- floating IPs ----

func (s *Server) listFloating(w http.ResponseWriter, r *http.Request) error {
	ips, err := s.b.ListFloatingIPs(r.Context(), principal(r).Scope(), false)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(ips))
	for _, f := range ips {
		out = append(out, floatingView(f))
	}
	writeJSON(w, 200, map[string]any{"floating_ips": out})
	return nil
}

func (s *Server) allocateFloating(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Pool *string `json:"pool"`
	}
	// nova accepts an empty body (default pool).
	if err := decode(w, r, &body, true); err != nil && !errors.Is(err, errEmptyBody) {
		return err
	}
	pool := ""
	if body.Pool != nil {
		pool = *body.Pool
	}
	f, err := s.b.AllocateFloatingIP(r.Context(), principal(r).Scope(), pool)
	if err != nil {
		return err
	}
	writeJSON(w, 200, map[string]any{"floating_ip": floatingView(f)})
	return nil
}

func (s *Server) getFloating(w http.ResponseWriter, r *http.Request) error {
	f, err := s.b.GetFloatingIP(r.Context(), principal(r).Scope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, 200, map[string]any{"floating_ip": floatingView(f)})
	return nil
}

func (s *Server) releaseFloating(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.ReleaseFloatingIP(r.Context(), principal(r).Scope(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Server) listPools(w http.ResponseWriter, r *http.Request) error {
	pools, err := s.b.ListFloatingPools(r.Context())
	if err != nil {
		return err
	}
	out := make([]any, 0, len(pools))
	for _, p := range pools {
		out = append(out, map[string]string{"name": p})
	}
	writeJSON(w, 200, map[string]any{"floating_ip_pools": out})
	return nil
}

func (s *Server) listBulk(w http.ResponseWriter, r *http.Request) error {
	ips, err := s.b.ListFloatingIPs(r.Context(), principal(r).Scope(), true)
	if err != nil {
		return err
	}
	host := r.PathValue("host")
	out := make([]any, 0, len(ips))
	for _, f := range ips {
		if host == "" || f.Host == host {
			out = append(out, bulkView(f))
		}
	}
	writeJSON(w, 200, map[string]any{"floating_ip_info": out})
	return nil
}

func (s *Server) createBulk(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Create *model.FloatingRangeRequest `json:"floating_ips_bulk_create"`
	}
	if err := decode(w, r, &body, true); err != nil {
		return err
	}
	if body.Create == nil || body.Create.IPRange == "" {
		return invalid(`missing "floating_ips_bulk_create" object with an "ip_range" (a CIDR or one address)`)
	}
	ips, err := s.b.CreateFloatingRange(r.Context(), *body.Create)
	if err != nil {
		return err
	}
	created := make([]any, 0, len(ips))
	pool, iface := body.Create.Pool, body.Create.Interface
	for _, f := range ips {
		created = append(created, bulkView(f))
		pool, iface = f.Pool, f.Interface
	}
	writeJSON(w, 200, map[string]any{
		"floating_ips_bulk_create": map[string]string{"ip_range": body.Create.IPRange, "pool": pool, "interface": iface},
		"floating_ip_info":         created,
	})
	return nil
}

func (s *Server) deleteBulk(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		IPRange string `json:"ip_range"`
	}
	if err := decode(w, r, &body, true); err != nil {
		return err
	}
	if body.IPRange == "" {
		return invalid(`missing "ip_range" (a CIDR or one address)`)
	}
	n, err := s.b.DeleteFloatingRange(r.Context(), body.IPRange)
	if err != nil {
		return err
	}
	writeJSON(w, 200, map[string]any{"floating_ips_bulk_delete": body.IPRange, "deleted": n})
	return nil
}

// ---- os-fixed-ips ----

func (s *Server) getFixed(w http.ResponseWriter, r *http.Request) error {
	a, err := parseAddr(r.PathValue("address"), "fixed address")
	if err != nil {
		return err
	}
	f, err := s.b.GetFixedIP(r.Context(), a)
	if err != nil {
		return err
	}
	writeJSON(w, 200, map[string]any{"fixed_ip": map[string]any{
		"address": f.Address.String(), "cidr": f.CIDR.String(), "host": sstr(f.Host),
		"hostname": sstr(f.Hostname), "reserved": f.Reserved,
		"allocated": f.Allocated, "leased": f.Leased, "instance_uuid": sstr(f.InstanceUUID),
	}})
	return nil
}

func (s *Server) fixedAction(w http.ResponseWriter, r *http.Request) error {
	a, err := parseAddr(r.PathValue("address"), "fixed address")
	if err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := decode(w, r, &body, false); err != nil {
		return err
	}
	if len(body) != 1 {
		return invalid(`the body must hold exactly one action: {"reserve": null} or {"unreserve": null}`)
	}
	var reserve bool
	switch {
	case body["reserve"] != nil:
		reserve = true
	case body["unreserve"] != nil:
	default:
		return invalid(`unknown fixed IP action; use {"reserve": null} or {"unreserve": null}`)
	}
	if err := s.b.SetFixedIPReserved(r.Context(), a, reserve); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// ---- security groups ----

// groupIndex resolves source-group names for rule views.
func (s *Server) groupIndex(r *http.Request, gs ...model.SecurityGroup) map[int64]model.SecurityGroup {
	idx := map[int64]model.SecurityGroup{}
	for _, g := range gs {
		idx[g.ID] = g
	}
	for _, g := range gs {
		for _, rule := range g.Rules {
			if id := rule.SourceGroupID; id != 0 {
				if _, ok := idx[id]; !ok {
					if sg, err := s.b.GetSecurityGroup(r.Context(), principal(r).Scope(), id); err == nil {
						idx[id] = sg
					}
				}
			}
		}
	}
	return idx
}

func allTenants(r *http.Request) bool {
	v := r.URL.Query().Get("all_tenants")
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	all := allTenants(r)
	if all && p.Role != RoleAdmin {
		return model.Errorf(model.ErrForbidden, "all_tenants needs an admin token")
	}
	gs, err := s.b.ListSecurityGroups(r.Context(), p.Scope(), all)
	if err != nil {
		return err
	}
	idx := s.groupIndex(r, gs...)
	out := make([]any, 0, len(gs))
	for _, g := range gs {
		out = append(out, groupView(g, idx))
	}
	writeJSON(w, 200, map[string]any{"security_groups": out})
	return nil
}

type groupBody struct {
	Group *struct {
		Name        *string `json:"name"`
		Description *string `json:"description"`
	} `json:"security_group"`
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) error {
	var body groupBody
	if err := decode(w, r, &body, true); err != nil {
		return err
	}
	if body.Group == nil || body.Group.Name == nil {
		return invalid(`missing "security_group" object with a "name"`)
	}
	desc := ""
	if body.Group.Description != nil {
		desc = *body.Group.Description
	}
	g, err := s.b.CreateSecurityGroup(r.Context(), principal(r).Scope(), *body.Group.Name, desc)
	if err != nil {
		return err
	}
	writeJSON(w, 200, map[string]any{"security_group": groupView(g, s.groupIndex(r, g))})
	return nil
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID(r.PathValue("id"), "security group")
	if err != nil {
		return err
	}
	g, err := s.b.GetSecurityGroup(r.Context(), principal(r).Scope(), id)
	if err != nil {
		return err
	}
	writeJSON(w, 200, map[string]any{"security_group": groupView(g, s.groupIndex(r, g))})
	return nil
}

func (s *Server) updateGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID(r.PathValue("id"), "security group")
	if err != nil {
		return err
	}
	var body groupBody
	if err := decode(w, r, &body, true); err != nil {
		return err
	}
	if body.Group == nil {
		return invalid(`missing "security_group" object`)
	}
	cur, err := s.b.GetSecurityGroup(r.Context(), principal(r).Scope(), id)
	if err != nil {
		return err
	}
	name, desc := cur.Name, cur.Description
	if body.Group.Name != nil {
		name = *body.Group.Name
	}
	if body.Group.Description != nil {
		desc = *body.Group.Description
	}
	g, err := s.b.UpdateSecurityGroup(r.Context(), principal(r).Scope(), id, name, desc)
	if err != nil {
		return err
	}
	writeJSON(w, 200, map[string]any{"security_group": groupView(g, s.groupIndex(r, g))})
	return nil
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID(r.PathValue("id"), "security group")
	if err != nil {
		return err
	}
	if err := s.b.DeleteSecurityGroup(r.Context(), principal(r).Scope(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

type ruleBody struct {
	ParentGroupID flexInt `json:"parent_group_id"`
	IPProtocol    *string `json:"ip_protocol"`
	FromPort      flexInt `json:"from_port"`
	ToPort        flexInt `json:"to_port"`
	CIDR          string  `json:"cidr"`
	GroupID       flexInt `json:"group_id"`
}

// toRule checks the shape of a rule; ranges per protocol are checked here
// too since they need no state.
func (b ruleBody) toRule(needParent bool) (model.SecurityGroupRule, error) {
	var rule model.SecurityGroupRule
	if needParent {
		if !b.ParentGroupID.set || b.ParentGroupID.v <= 0 {
			return rule, invalid(`"parent_group_id" is required: the id of the group the rule belongs to`)
		}
		rule.GroupID = b.ParentGroupID.v
	}
	if b.IPProtocol != nil {
		rule.Protocol = strings.ToLower(*b.IPProtocol)
	}
	switch rule.Protocol {
	case "tcp", "udp":
		if !b.FromPort.set || !b.ToPort.set {
			return rule, invalid("from_port and to_port are required for %s rules", rule.Protocol)
		}
		if b.FromPort.v < 1 || b.FromPort.v > 65535 || b.ToPort.v < 1 || b.ToPort.v > 65535 {
			return rule, invalid("ports must be between 1 and 65535, got %d-%d", b.FromPort.v, b.ToPort.v)
		}
		if b.FromPort.v > b.ToPort.v {
			return rule, invalid("from_port %d is greater than to_port %d", b.FromPort.v, b.ToPort.v)
		}
	case "icmp":
		if !b.FromPort.set {
			b.FromPort.v = -1
		}
		if !b.ToPort.set {
			b.ToPort.v = -1
		}
		if b.FromPort.v < -1 || b.FromPort.v > 255 || b.ToPort.v < -1 || b.ToPort.v > 255 {
			return rule, invalid("icmp type and code must be between -1 and 255, got %d and %d", b.FromPort.v, b.ToPort.v)
		}
	case "":
	default:
		return rule, invalid("ip_protocol %q is not supported; use tcp, udp or icmp", rule.Protocol)
	}
	rule.FromPort, rule.ToPort = int(b.FromPort.v), int(b.ToPort.v)
	if b.CIDR != "" && b.GroupID.set {
		return rule, invalid("give either cidr or group_id, not both")
	}
	if b.CIDR != "" {
		p, err := netip.ParsePrefix(strings.TrimSpace(b.CIDR))
		if err != nil || !p.Addr().Is4() {
			return rule, invalid("cidr %q is not an IPv4 CIDR such as 192.0.2.0/24", b.CIDR)
		}
		if p.Masked() != p {
			return rule, invalid("cidr %q has host bits set; did you mean %s?", b.CIDR, p.Masked())
		}
		rule.CIDR = p
	}
	if b.GroupID.set {
		if b.GroupID.v <= 0 {
			return rule, invalid("group_id must be a positive group id")
		}
		rule.SourceGroupID = b.GroupID.v
	}
	return rule, nil
}

func (s *Server) createRule(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Rule *ruleBody `json:"security_group_rule"`
	}
	if err := decode(w, r, &body, true); err != nil {
		return err
	}
	if body.Rule == nil {
		return invalid(`missing "security_group_rule" object`)
	}
	rule, err := body.Rule.toRule(true)
	if err != nil {
		return err
	}
	out, err := s.b.CreateSecurityGroupRule(r.Context(), principal(r).Scope(), rule)
	if err != nil {
		return err
	}
	var idx map[int64]model.SecurityGroup
	if out.SourceGroupID != 0 {
		idx = s.groupIndex(r, model.SecurityGroup{Rules: []model.SecurityGroupRule{out}})
	}
	writeJSON(w, 200, map[string]any{"security_group_rule": ruleView(out, idx)})
	return nil
}

func (s *Server) deleteRule(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID(r.PathValue("id"), "security group rule")
	if err != nil {
		return err
	}
	if err := s.b.DeleteSecurityGroupRule(r.Context(), principal(r).Scope(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Server) listDefaultRules(w http.ResponseWriter, r *http.Request) error {
	rules, err := s.b.ListDefaultRules(r.Context())
	if err != nil {
		return err
	}
	out := make([]any, 0, len(rules))
	for _, rule := range rules {
		out = append(out, defaultRuleView(rule))
	}
	writeJSON(w, 200, map[string]any{"security_group_default_rules": out})
	return nil
}

func (s *Server) createDefaultRule(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Rule *ruleBody `json:"security_group_default_rule"`
	}
	if err := decode(w, r, &body, true); err != nil {
		return err
	}
	if body.Rule == nil {
		return invalid(`missing "security_group_default_rule" object`)
	}
	if body.Rule.GroupID.set || body.Rule.ParentGroupID.set {
		return invalid("default rules take a cidr, not a group")
	}
	rule, err := body.Rule.toRule(false)
	if err != nil {
		return err
	}
	out, err := s.b.CreateDefaultRule(r.Context(), rule)
	if err != nil {
		return err
	}
	writeJSON(w, 200, map[string]any{"security_group_default_rule": defaultRuleView(out)})
	return nil
}

func (s *Server) getDefaultRule(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID(r.PathValue("id"), "default rule")
	if err != nil {
		return err
	}
	rule, err := s.b.GetDefaultRule(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, 200, map[string]any{"security_group_default_rule": defaultRuleView(rule)})
	return nil
}

func (s *Server) deleteDefaultRule(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID(r.PathValue("id"), "default rule")
	if err != nil {
		return err
	}
	if err := s.b.DeleteDefaultRule(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- servers ----

func (s *Server) serverAction(w http.ResponseWriter, r *http.Request) error {
	uuid := r.PathValue("id")
	var body map[string]json.RawMessage
	if err := decode(w, r, &body, false); err != nil {
		return err
	}
	if len(body) != 1 {
		return invalid("the body must hold exactly one action: addFloatingIp, removeFloatingIp, addSecurityGroup or removeSecurityGroup")
	}
	scope := principal(r).Scope()
	for action, raw := range body {
		switch action {
		case "addFloatingIp", "removeFloatingIp":
			var a struct {
				Address      string `json:"address"`
				FixedAddress string `json:"fixed_address"`
			}
			if err := strictInto(raw, &a, action); err != nil {
				return err
			}
			floating, err := parseAddr(a.Address, "floating address")
			if err != nil {
				return err
			}
			if action == "removeFloatingIp" {
				if a.FixedAddress != "" {
					return invalid("removeFloatingIp takes only an address")
				}
				err = s.b.DisassociateFloatingIP(r.Context(), scope, floating, uuid)
			} else {
				var fixed netip.Addr
				if a.FixedAddress != "" {
					if fixed, err = parseAddr(a.FixedAddress, "fixed_address"); err != nil {
						return err
					}
				}
				err = s.b.AssociateFloatingIP(r.Context(), scope, floating, uuid, fixed)
			}
			if err != nil {
				return err
			}
		case "addSecurityGroup", "removeSecurityGroup":
			var a struct {
				Name string `json:"name"`
			}
			if err := strictInto(raw, &a, action); err != nil {
				return err
			}
			if a.Name == "" {
				return invalid("%s needs a group name", action)
			}
			var err error
			if action == "addSecurityGroup" {
				err = s.b.AddInstanceSecurityGroup(r.Context(), scope, uuid, a.Name)
			} else {
				err = s.b.RemoveInstanceSecurityGroup(r.Context(), scope, uuid, a.Name)
			}
			if err != nil {
				return err
			}
		default:
			return invalid("server action %q is not handled by novanet; it handles addFloatingIp, removeFloatingIp, addSecurityGroup and removeSecurityGroup", action)
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func strictInto(raw json.RawMessage, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("malformed %s: %s", what, jsonProblem(err))
	}
	if err := checkNoNUL(v); err != nil {
		return invalid("%s: %v", what, err)
	}
	return nil
}

func (s *Server) serverGroups(w http.ResponseWriter, r *http.Request) error {
	scope := principal(r).Scope()
	inst, err := s.b.GetInstance(r.Context(), scope, r.PathValue("id"))
	if err != nil {
		return err
	}
	var gs []model.SecurityGroup
	for _, id := range inst.SecurityGroups {
		g, err := s.b.GetSecurityGroup(r.Context(), scope, id)
		if err != nil {
			return err
		}
		gs = append(gs, g)
	}
	idx := s.groupIndex(r, gs...)
	out := make([]any, 0, len(gs))
	for _, g := range gs {
		out = append(out, groupView(g, idx))
	}
	writeJSON(w, 200, map[string]any{"security_groups": out})
	return nil
}
