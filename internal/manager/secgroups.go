package manager

import (
	"context"
	"time"

	"novanet/internal/model"
	"novanet/internal/store"
)

func nowUTC() time.Time { return time.Now().UTC() }

// ensureDefaultGroup creates the project's default group on first use,
// with the default rules copied in.
func (m *Manager) ensureDefaultGroup(ctx context.Context, tx *store.Tx, project string) (model.SecurityGroup, error) {
	g, created, err := tx.InsertSecurityGroup(ctx, model.SecurityGroup{ProjectID: project, Name: "default", Description: "default"})
	if err != nil || !created {
		return g, err
	}
	rules, err := tx.DefaultRules(ctx)
	if err != nil {
		return g, err
	}
	for _, r := range rules {
		r.ID, r.GroupID = 0, g.ID
		if _, err := tx.InsertRule(ctx, r); err != nil {
			return g, err
		}
	}
	return tx.SecurityGroup(ctx, g.ID)
}

func validGroup(name, description string) error {
	if err := model.CheckGroupName("name", name); err != nil {
		return err
	}
	return model.CheckGroupDescription("description", description)
}

// quota returns the project's limit for resource: its override in the
// store, else the option's value def (negative: unlimited).
func quota(ctx context.Context, tx *store.Tx, project, resource string, def int) (int, error) {
	l, ok, err := tx.QuotaLimit(ctx, project, resource)
	if err != nil || !ok {
		return def, err
	}
	return l, nil
}

func sameRule(a, b model.SecurityGroupRule) bool {
	return a.Protocol == b.Protocol && a.FromPort == b.FromPort && a.ToPort == b.ToPort &&
		a.CIDR == b.CIDR && a.SourceGroupID == b.SourceGroupID
}

// groupFor loads a group the scope may change.
func groupFor(ctx context.Context, tx *store.Tx, scope model.Scope, id int64) (model.SecurityGroup, error) {
	g, err := tx.SecurityGroup(ctx, id)
	if err != nil {
		return g, err
	}
	if !scope.Sees(g.ProjectID) {
		return g, model.Errorf(model.ErrNotFound, "security group %d not found", id)
	}
	return g, nil
}

// groupHosts are the hosts whose state includes group g: hosts of its
// members, and hosts of members of groups that name g as a source.
func groupHosts(ctx context.Context, tx *store.Tx, g int64) ([]string, error) {
	hs, err := tx.GroupMemberHosts(ctx, g)
	if err != nil {
		return nil, err
	}
	others, err := sourceGroupHosts(ctx, tx, []int64{g})
	return append(hs, others...), err
}

// ListSecurityGroups lists the scope's groups (all=true for an admin: every group).
func (m *Manager) ListSecurityGroups(ctx context.Context, scope model.Scope, all bool) ([]model.SecurityGroup, error) {
	out := []model.SecurityGroup{}
	err := m.update(ctx, func(tx *store.Tx, c *change) error {
		if scope.ProjectID != "" {
			if _, err := m.ensureDefaultGroup(ctx, tx, scope.ProjectID); err != nil {
				return err
			}
		}
		project := scope.ProjectID
		if all && scope.Admin {
			project = ""
		} else if project == "" {
			out = []model.SecurityGroup{}
			return nil
		}
		gs, err := tx.ListSecurityGroups(ctx, project)
		out = append(out[:0], gs...)
		return err
	})
	return out, err
}

// GetSecurityGroup returns one group.
func (m *Manager) GetSecurityGroup(ctx context.Context, scope model.Scope, id int64) (model.SecurityGroup, error) {
	var g model.SecurityGroup
	err := m.view(ctx, func(tx *store.Tx) error {
		var err error
		g, err = groupFor(ctx, tx, scope, id)
		return err
	})
	return g, err
}

// CreateSecurityGroup creates a group in the scope's project.
func (m *Manager) CreateSecurityGroup(ctx context.Context, scope model.Scope, name, description string) (model.SecurityGroup, error) {
	if err := validGroup(name, description); err != nil {
		return model.SecurityGroup{}, err
	}
	if scope.ProjectID == "" {
		return model.SecurityGroup{}, model.Errorf(model.ErrInvalid, "no project in the caller's scope to own the group")
	}
	var g model.SecurityGroup
	err := m.update(ctx, func(tx *store.Tx, c *change) error {
		// Count under the project's lock, as floating IPs.
		if err := tx.LockName(ctx, "project:"+scope.ProjectID); err != nil {
			return err
		}
		if _, err := m.ensureDefaultGroup(ctx, tx, scope.ProjectID); err != nil {
			return err
		}
		limit, err := quota(ctx, tx, scope.ProjectID, "security_groups", m.opts.QuotaSecurityGroups)
		if err != nil {
			return err
		}
		if limit >= 0 {
			n, err := tx.CountSecurityGroups(ctx, scope.ProjectID)
			if err != nil {
				return err
			}
			if n >= limit {
				return model.Errorf(model.ErrQuota, "project %s has %d security groups, its quota (security_groups) is %d: delete one first", scope.ProjectID, n, limit)
			}
		}
		var created bool
		g, created, err = tx.InsertSecurityGroup(ctx, model.SecurityGroup{ProjectID: scope.ProjectID, Name: name, Description: description})
		if err != nil {
			return err
		}
		if !created {
			return model.Errorf(model.ErrConflict, "security group %q exists in project %s: choose another name", name, scope.ProjectID)
		}
		g.Rules = []model.SecurityGroupRule{}
		return nil
	})
	return g, err
}

// UpdateSecurityGroup renames or re-describes a group (not the default one's name).
func (m *Manager) UpdateSecurityGroup(ctx context.Context, scope model.Scope, id int64, name, description string) (model.SecurityGroup, error) {
	if err := validGroup(name, description); err != nil {
		return model.SecurityGroup{}, err
	}
	var g model.SecurityGroup
	err := m.update(ctx, func(tx *store.Tx, c *change) error {
		var err error
		g, err = groupFor(ctx, tx, scope, id)
		if err != nil {
			return err
		}
		if g.Name == "default" && name != "default" {
			return model.Errorf(model.ErrInvalid, "the default security group cannot be renamed")
		}
		if name != g.Name {
			if _, err := tx.SecurityGroupByName(ctx, g.ProjectID, name); err == nil {
				return model.Errorf(model.ErrConflict, "security group %q exists in project %s", name, g.ProjectID)
			}
		}
		hosts, err := groupHosts(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := c.bump(ctx, tx, hosts...); err != nil {
			return err
		}
		if err := tx.UpdateSecurityGroup(ctx, id, name, description); err != nil {
			return err
		}
		g, err = tx.SecurityGroup(ctx, id)
		return err
	})
	return g, err
}

// DeleteSecurityGroup deletes an unused, non-default group.
func (m *Manager) DeleteSecurityGroup(ctx context.Context, scope model.Scope, id int64) error {
	return m.update(ctx, func(tx *store.Tx, c *change) error {
		// Exclusive before counting members: a boot or membership change
		// holding the group shared finishes first and is counted.
		if err := tx.LockSecurityGroup(ctx, id, true); err != nil {
			return err
		}
		g, err := groupFor(ctx, tx, scope, id)
		if err != nil {
			return err
		}
		if g.Name == "default" {
			return model.Errorf(model.ErrInvalid, "the default security group of project %s cannot be deleted", g.ProjectID)
		}
		members, err := tx.GroupMembers(ctx, id)
		if err != nil {
			return err
		}
		if len(members) > 0 {
			return model.Errorf(model.ErrConflict, "security group %q is used by %d instances (e.g. %s): remove them from it first", g.Name, len(members), members[0])
		}
		hosts, err := groupHosts(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := c.bump(ctx, tx, hosts...); err != nil {
			return err
		}
		return tx.DeleteSecurityGroup(ctx, id)
	})
}

// CreateSecurityGroupRule adds a rule to a group of the scope.
func (m *Manager) CreateSecurityGroupRule(ctx context.Context, scope model.Scope, rule model.SecurityGroupRule) (model.SecurityGroupRule, error) {
	r, err := rule.Normalize(true)
	if err != nil {
		return r, err
	}
	err = m.update(ctx, func(tx *store.Tx, c *change) error {
		// Exclusive: the rule count and the duplicate check below decide.
		if err := tx.LockSecurityGroup(ctx, r.GroupID, true); err != nil {
			return err
		}
		g, err := groupFor(ctx, tx, scope, r.GroupID)
		if err != nil {
			return err
		}
		limit, err := quota(ctx, tx, g.ProjectID, "security_group_rules", m.opts.QuotaSecurityGroupRules)
		if err != nil {
			return err
		}
		if limit >= 0 && len(g.Rules) >= limit {
			return model.Errorf(model.ErrQuota, "security group %q has %d rules, its quota (security_group_rules) is %d: delete one first", g.Name, len(g.Rules), limit)
		}
		if r.SourceGroupID != 0 {
			src, err := tx.SecurityGroup(ctx, r.SourceGroupID)
			if err != nil || src.ProjectID != g.ProjectID {
				return model.Errorf(model.ErrInvalid, "source group %d is not a group of project %s", r.SourceGroupID, g.ProjectID)
			}
		}
		for _, x := range g.Rules {
			if sameRule(x, r) {
				return model.Errorf(model.ErrConflict, "security group %q already has this rule (id %d)", g.Name, x.ID)
			}
		}
		hosts, err := c.groupRulesChanged(ctx, tx, g.ID, r.SourceGroupID)
		if err != nil {
			return err
		}
		if err := c.bump(ctx, tx, hosts...); err != nil {
			return err
		}
		r, err = tx.InsertRule(ctx, r)
		return err
	})
	return r, err
}

// DeleteSecurityGroupRule removes a rule of a group of the scope.
func (m *Manager) DeleteSecurityGroupRule(ctx context.Context, scope model.Scope, id int64) error {
	return m.update(ctx, func(tx *store.Tx, c *change) error {
		r, err := tx.Rule(ctx, id)
		if err != nil {
			return err
		}
		if _, err := groupFor(ctx, tx, scope, r.GroupID); err != nil {
			return model.Errorf(model.ErrNotFound, "security group rule %d not found", id)
		}
		hosts, err := c.groupRulesChanged(ctx, tx, r.GroupID, r.SourceGroupID)
		if err != nil {
			return err
		}
		if err := c.bump(ctx, tx, hosts...); err != nil {
			return err
		}
		return tx.DeleteRule(ctx, id)
	})
}

// ListDefaultRules lists the rules copied into new default groups.
func (m *Manager) ListDefaultRules(ctx context.Context) ([]model.SecurityGroupRule, error) {
	var out []model.SecurityGroupRule
	err := m.view(ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.DefaultRules(ctx)
		return err
	})
	return out, err
}

// CreateDefaultRule adds a default rule.
func (m *Manager) CreateDefaultRule(ctx context.Context, rule model.SecurityGroupRule) (model.SecurityGroupRule, error) {
	r, err := rule.Normalize(false)
	if err != nil {
		return r, err
	}
	r.GroupID = 0
	err = m.update(ctx, func(tx *store.Tx, c *change) error {
		existing, err := tx.DefaultRules(ctx)
		if err != nil {
			return err
		}
		for _, x := range existing {
			if sameRule(x, r) {
				return model.Errorf(model.ErrConflict, "this default rule exists (id %d)", x.ID)
			}
		}
		r, err = tx.InsertDefaultRule(ctx, r)
		return err
	})
	return r, err
}

// GetDefaultRule returns one default rule.
func (m *Manager) GetDefaultRule(ctx context.Context, id int64) (model.SecurityGroupRule, error) {
	rules, err := m.ListDefaultRules(ctx)
	if err != nil {
		return model.SecurityGroupRule{}, err
	}
	for _, r := range rules {
		if r.ID == id {
			return r, nil
		}
	}
	return model.SecurityGroupRule{}, model.Errorf(model.ErrNotFound, "default security group rule %d not found", id)
}

// DeleteDefaultRule removes a default rule (existing groups keep their copies).
func (m *Manager) DeleteDefaultRule(ctx context.Context, id int64) error {
	return m.update(ctx, func(tx *store.Tx, c *change) error {
		ok, err := tx.DeleteDefaultRule(ctx, id)
		if err == nil && !ok {
			return model.Errorf(model.ErrNotFound, "default security group rule %d not found", id)
		}
		return err
	})
}
