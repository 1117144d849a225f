package wire

import (
	"net/netip"

	"novanet/internal/model"
)

// IPRange is a rule's source range: {"cidr": ...}, or {} when the rule's
// source is a group.
type IPRange struct {
	CIDR string `json:"cidr,omitempty"`
}

// RuleGroup is a rule's source group: {} when the source is a range; its
// name and tenant_id are left out when the group is not visible.
type RuleGroup struct {
	ID       int64   `json:"id,omitempty"`
	Name     *string `json:"name,omitempty"`
	TenantID *string `json:"tenant_id,omitempty"`
}

// Rule is nova's security group rule dict.
type Rule struct {
	FromPort      *int      `json:"from_port"`
	Group         RuleGroup `json:"group"`
	ID            int64     `json:"id"`
	IPProtocol    *string   `json:"ip_protocol"`
	IPRange       IPRange   `json:"ip_range"`
	ParentGroupID int64     `json:"parent_group_id"`
	ToPort        *int      `json:"to_port"`
}

// NewRule is the view of r; groups names the source groups the caller may
// see (a missing one is shown by id only).
func NewRule(r model.SecurityGroupRule, groups map[int64]model.SecurityGroup) Rule {
	v := Rule{ID: r.ID, ParentGroupID: r.GroupID, IPProtocol: stringOrNull(r.Protocol)}
	if r.Protocol != "" {
		from, to := r.FromPort, r.ToPort
		v.FromPort, v.ToPort = &from, &to
	}
	switch {
	case r.SourceGroupID != 0:
		v.Group.ID = r.SourceGroupID
		if sg, ok := groups[r.SourceGroupID]; ok {
			name, tenant := sg.Name, sg.ProjectID
			v.Group.Name, v.Group.TenantID = &name, &tenant
		}
	case r.CIDR.IsValid():
		v.IPRange.CIDR = r.CIDR.String()
	default:
		v.IPRange.CIDR = "0.0.0.0/0"
	}
	return v
}

// Model reads the view back.
func (r Rule) Model() model.SecurityGroupRule {
	out := model.SecurityGroupRule{ID: r.ID, GroupID: r.ParentGroupID, Protocol: deref(r.IPProtocol),
		SourceGroupID: r.Group.ID}
	if r.FromPort != nil {
		out.FromPort = *r.FromPort
	}
	if r.ToPort != nil {
		out.ToPort = *r.ToPort
	}
	if r.IPRange.CIDR != "" {
		out.CIDR, _ = netip.ParsePrefix(r.IPRange.CIDR)
	}
	return out
}

// DefaultRule is nova's os-security-group-default-rules dict: a rule
// without parent or source group.
type DefaultRule struct {
	FromPort   *int    `json:"from_port"`
	ID         int64   `json:"id"`
	IPProtocol *string `json:"ip_protocol"`
	IPRange    IPRange `json:"ip_range"`
	ToPort     *int    `json:"to_port"`
}

// NewDefaultRule is the view of a default rule.
func NewDefaultRule(r model.SecurityGroupRule) DefaultRule {
	v := NewRule(r, nil)
	return DefaultRule{FromPort: v.FromPort, ID: v.ID, IPProtocol: v.IPProtocol, IPRange: v.IPRange, ToPort: v.ToPort}
}

// SecurityGroup is nova's security group dict; rules is [] when the
// group has none.
type SecurityGroup struct {
	Description string     `json:"description"`
	ID          int64      `json:"id"`
	Name        string     `json:"name"`
	Rules       List[Rule] `json:"rules"`
	TenantID    string     `json:"tenant_id"`
}

// NewSecurityGroup is the view of g; groups as for NewRule.
func NewSecurityGroup(g model.SecurityGroup, groups map[int64]model.SecurityGroup) SecurityGroup {
	v := SecurityGroup{Description: g.Description, ID: g.ID, Name: g.Name, TenantID: g.ProjectID}
	for _, r := range g.Rules {
		v.Rules = append(v.Rules, NewRule(r, groups))
	}
	return v
}

// Model reads the view back.
func (g SecurityGroup) Model() model.SecurityGroup {
	out := model.SecurityGroup{ID: g.ID, Name: g.Name, Description: g.Description, ProjectID: g.TenantID}
	for _, r := range g.Rules {
		out.Rules = append(out.Rules, r.Model())
	}
	return out
}
