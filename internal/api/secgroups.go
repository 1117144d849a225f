package api

import (
	"net/http"
	"novanet/internal/model"
	"novanet/internal/wire"
	"strings"
)

// os-security-groups, os-security-group-rules and
// os-security-group-default-rules.

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
	out := make(wire.List[wire.SecurityGroup], 0, len(gs))
	for _, g := range gs {
		out = append(out, wire.NewSecurityGroup(g, idx))
	}
	writeJSON(w, 200, wire.SecurityGroupList{Groups: out})
	return nil
}

type groupBody struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) error {
	const missing = `missing "security_group" object with a "name"`
	body, err := decodeObject[groupBody](w, r, "security_group", missing)
	if err != nil {
		return err
	}
	if body.Name == nil {
		return invalid(missing)
	}
	desc := ""
	if body.Description != nil {
		desc = *body.Description
	}
	g, err := s.b.CreateSecurityGroup(r.Context(), principal(r).Scope(), *body.Name, desc)
	if err != nil {
		return err
	}
	writeJSON(w, 200, wire.SecurityGroupOne{Group: wire.NewSecurityGroup(g, s.groupIndex(r, g))})
	return nil
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "security group")
	if err != nil {
		return err
	}
	g, err := s.b.GetSecurityGroup(r.Context(), principal(r).Scope(), id)
	if err != nil {
		return err
	}
	writeJSON(w, 200, wire.SecurityGroupOne{Group: wire.NewSecurityGroup(g, s.groupIndex(r, g))})
	return nil
}

func (s *Server) updateGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "security group")
	if err != nil {
		return err
	}
	body, err := decodeObject[groupBody](w, r, "security_group", `missing "security_group" object`)
	if err != nil {
		return err
	}
	cur, err := s.b.GetSecurityGroup(r.Context(), principal(r).Scope(), id)
	if err != nil {
		return err
	}
	name, desc := cur.Name, cur.Description
	if body.Name != nil {
		name = *body.Name
	}
	if body.Description != nil {
		desc = *body.Description
	}
	g, err := s.b.UpdateSecurityGroup(r.Context(), principal(r).Scope(), id, name, desc)
	if err != nil {
		return err
	}
	writeJSON(w, 200, wire.SecurityGroupOne{Group: wire.NewSecurityGroup(g, s.groupIndex(r, g))})
	return nil
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "security group")
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

// toRule turns the JSON shape into a rule: required fields, unset ports
// and the cidr's text. Ranges per protocol are the model's
// (SecurityGroupRule.Normalize, called by the manager), so a rule is
// judged the same whichever API sent it.
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
	if rule.Protocol == "icmp" {
		// An absent type or code is any (-1); 0 is echo reply.
		if !b.FromPort.set {
			b.FromPort.v = -1
		}
		if !b.ToPort.set {
			b.ToPort.v = -1
		}
	}
	rule.FromPort, rule.ToPort = int(b.FromPort.v), int(b.ToPort.v)
	if b.CIDR != "" {
		p, err := model.ParseCIDR4("cidr", b.CIDR)
		if err != nil {
			return rule, err
		}
		rule.CIDR = p
	}
	if b.GroupID.set {
		if b.GroupID.v <= 0 {
			return rule, invalid("group_id must be a positive group id: give the id of the source group, or leave it out")
		}
		rule.SourceGroupID = b.GroupID.v
	}
	return rule, nil
}

func (s *Server) createRule(w http.ResponseWriter, r *http.Request) error {
	body, err := decodeObject[ruleBody](w, r, "security_group_rule", `missing "security_group_rule" object`)
	if err != nil {
		return err
	}
	rule, err := body.toRule(true)
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
	writeJSON(w, 200, wire.RuleOne{Rule: wire.NewRule(out, idx)})
	return nil
}

func (s *Server) deleteRule(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "security group rule")
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
	out := make(wire.List[wire.DefaultRule], 0, len(rules))
	for _, rule := range rules {
		out = append(out, wire.NewDefaultRule(rule))
	}
	writeJSON(w, 200, wire.DefaultRuleList{Rules: out})
	return nil
}

func (s *Server) createDefaultRule(w http.ResponseWriter, r *http.Request) error {
	body, err := decodeObject[ruleBody](w, r, "security_group_default_rule", `missing "security_group_default_rule" object`)
	if err != nil {
		return err
	}
	if body.GroupID.set || body.ParentGroupID.set {
		return invalid("default rules take a cidr, not a group")
	}
	rule, err := body.toRule(false)
	if err != nil {
		return err
	}
	out, err := s.b.CreateDefaultRule(r.Context(), rule)
	if err != nil {
		return err
	}
	writeJSON(w, 200, wire.DefaultRuleOne{Rule: wire.NewDefaultRule(out)})
	return nil
}

func (s *Server) getDefaultRule(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "default rule")
	if err != nil {
		return err
	}
	rule, err := s.b.GetDefaultRule(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, 200, wire.DefaultRuleOne{Rule: wire.NewDefaultRule(rule)})
	return nil
}

func (s *Server) deleteDefaultRule(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "default rule")
	if err != nil {
		return err
	}
	if err := s.b.DeleteDefaultRule(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
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
	out := make(wire.List[wire.SecurityGroup], 0, len(gs))
	for _, g := range gs {
		out = append(out, wire.NewSecurityGroup(g, idx))
	}
	writeJSON(w, 200, wire.SecurityGroupList{Groups: out})
	return nil
}
