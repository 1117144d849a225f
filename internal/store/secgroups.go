package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"

	"novanet/internal/model"
)

// SecurityGroup returns a group with its rules, or model.ErrNotFound.
func (t *Tx) SecurityGroup(ctx context.Context, id int64) (model.SecurityGroup, error) {
	var g model.SecurityGroup
	err := t.QueryRow(ctx, `SELECT id, project_id, name, description FROM security_groups WHERE id = ?`, id).
		Scan(&g.ID, &g.ProjectID, &g.Name, &g.Description)
	if errors.Is(err, sql.ErrNoRows) {
		return g, model.Errorf(model.ErrNotFound, "security group %d not found", id)
	}
	if err != nil {
		return g, err
	}
	g.Rules, err = t.Rules(ctx, id)
	return g, err
}

// SecurityGroupByName returns a project's group by name, or model.ErrNotFound.
func (t *Tx) SecurityGroupByName(ctx context.Context, projectID, name string) (model.SecurityGroup, error) {
	var id int64
	err := t.QueryRow(ctx, `SELECT id FROM security_groups WHERE project_id = ? AND name = ?`, projectID, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return model.SecurityGroup{}, model.Errorf(model.ErrNotFound, "security group %q not found in project %s", name, projectID)
	}
	if err != nil {
		return model.SecurityGroup{}, err
	}
	return t.SecurityGroup(ctx, id)
}

// ListSecurityGroups returns groups of a project ("" = all) by id.
func (t *Tx) ListSecurityGroups(ctx context.Context, projectID string) ([]model.SecurityGroup, error) {
	var ids []int64
	var err error
	if projectID == "" {
		ids, err = t.int64s(ctx, `SELECT id FROM security_groups ORDER BY id`)
	} else {
		ids, err = t.int64s(ctx, `SELECT id FROM security_groups WHERE project_id = ? ORDER BY id`, projectID)
	}
	if err != nil {
		return nil, err
	}
	out := make([]model.SecurityGroup, 0, len(ids))
	for _, id := range ids {
		g, err := t.SecurityGroup(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// InsertSecurityGroup creates a group; created is false (and g the
// existing group) when the project already has one of that name.
func (t *Tx) InsertSecurityGroup(ctx context.Context, g model.SecurityGroup) (model.SecurityGroup, bool, error) {
	err := t.QueryRow(ctx, `INSERT INTO security_groups (project_id, name, description) VALUES (?, ?, ?)
		ON CONFLICT (project_id, name) DO NOTHING RETURNING id`, g.ProjectID, g.Name, g.Description).Scan(&g.ID)
	if errors.Is(err, sql.ErrNoRows) {
		existing, err := t.SecurityGroupByName(ctx, g.ProjectID, g.Name)
		return existing, false, err
	}
	if err != nil {
		return g, false, fmt.Errorf("insert security group %q: %w", g.Name, err)
	}
	return g, true, nil
}

// CountSecurityGroups counts a project's groups (its default one included).
func (t *Tx) CountSecurityGroups(ctx context.Context, projectID string) (int, error) {
	var n int
	err := t.QueryRow(ctx, `SELECT COUNT(*) FROM security_groups WHERE project_id = ?`, projectID).Scan(&n)
	return n, err
}

// UpdateSecurityGroup renames or re-describes a group.
func (t *Tx) UpdateSecurityGroup(ctx context.Context, id int64, name, description string) error {
	_, err := t.Exec(ctx, `UPDATE security_groups SET name = ?, description = ? WHERE id = ?`, name, description, id)
	return err
}

// DeleteSecurityGroup removes a group, its rules and rules naming it.
func (t *Tx) DeleteSecurityGroup(ctx context.Context, id int64) error {
	if _, err := t.Exec(ctx, `DELETE FROM security_group_rules WHERE group_id = ? OR source_group_id = ?`, id, id); err != nil {
		return err
	}
	_, err := t.Exec(ctx, `DELETE FROM security_groups WHERE id = ?`, id)
	return err
}

// GroupMembers returns the uuids of the group's instances.
func (t *Tx) GroupMembers(ctx context.Context, groupID int64) ([]string, error) {
	return t.strings(ctx, `SELECT instance_uuid FROM instance_security_groups WHERE group_id = ? ORDER BY instance_uuid`, groupID)
}

// GroupMemberHosts returns the distinct hosts of the group's instances.
func (t *Tx) GroupMemberHosts(ctx context.Context, groupID int64) ([]string, error) {
	return t.strings(ctx, `SELECT DISTINCT i.host FROM instance_security_groups g JOIN instances i ON i.uuid = g.instance_uuid
		WHERE g.group_id = ? ORDER BY i.host`, groupID)
}

// GroupsReferencing returns ids of groups with a rule whose source is groupID.
func (t *Tx) GroupsReferencing(ctx context.Context, groupID int64) ([]int64, error) {
	return t.int64s(ctx, `SELECT DISTINCT group_id FROM security_group_rules WHERE source_group_id = ? ORDER BY group_id`, groupID)
}

// GroupMemberAddresses returns the allocated fixed addresses of a group's
// members, in address-row order.
func (t *Tx) GroupMemberAddresses(ctx context.Context, groupID int64) ([]netip.Addr, error) {
	ss, err := t.strings(ctx, `SELECT f.address FROM instance_security_groups g JOIN fixed_ips f ON f.instance_uuid = g.instance_uuid
		WHERE g.group_id = ? AND f.allocated ORDER BY f.id`, groupID)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		out = append(out, parseAddr(s))
	}
	return out, nil
}

const ruleCols = `id, group_id, protocol, from_port, to_port, cidr, source_group_id`

func scanRule(r scanner) (model.SecurityGroupRule, error) {
	var x model.SecurityGroupRule
	var cidr string
	var src sql.NullInt64
	err := r.Scan(&x.ID, &x.GroupID, &x.Protocol, &x.FromPort, &x.ToPort, &cidr, &src)
	if cidr != "" {
		x.CIDR, _ = netip.ParsePrefix(cidr)
	}
	x.SourceGroupID = src.Int64
	return x, err
}

func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

// Rules returns a group's rules by id.
func (t *Tx) Rules(ctx context.Context, groupID int64) ([]model.SecurityGroupRule, error) {
	rows, err := t.Query(ctx, `SELECT `+ruleCols+` FROM security_group_rules WHERE group_id = ? ORDER BY id`, groupID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []model.SecurityGroupRule{}
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Rule returns one rule, or model.ErrNotFound.
func (t *Tx) Rule(ctx context.Context, id int64) (model.SecurityGroupRule, error) {
	r, err := scanRule(t.QueryRow(ctx, `SELECT `+ruleCols+` FROM security_group_rules WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, model.Errorf(model.ErrNotFound, "security group rule %d not found", id)
	}
	return r, err
}

// InsertRule stores a rule of r.GroupID.
func (t *Tx) InsertRule(ctx context.Context, r model.SecurityGroupRule) (model.SecurityGroupRule, error) {
	var src any
	if r.SourceGroupID != 0 {
		src = r.SourceGroupID
	}
	err := t.QueryRow(ctx, `INSERT INTO security_group_rules (group_id, protocol, from_port, to_port, cidr, source_group_id)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, r.GroupID, r.Protocol, r.FromPort, r.ToPort, prefixString(r.CIDR), src).Scan(&r.ID)
	return r, err
}

// DeleteRule removes one rule.
func (t *Tx) DeleteRule(ctx context.Context, id int64) error {
	_, err := t.Exec(ctx, `DELETE FROM security_group_rules WHERE id = ?`, id)
	return err
}

// DefaultRules returns the rules copied into new default groups.
func (t *Tx) DefaultRules(ctx context.Context) ([]model.SecurityGroupRule, error) {
	rows, err := t.Query(ctx, `SELECT id, protocol, from_port, to_port, cidr FROM default_security_group_rules ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []model.SecurityGroupRule{}
	for rows.Next() {
		var r model.SecurityGroupRule
		var cidr string
		if err := rows.Scan(&r.ID, &r.Protocol, &r.FromPort, &r.ToPort, &cidr); err != nil {
			return nil, err
		}
		if cidr != "" {
			r.CIDR, _ = netip.ParsePrefix(cidr)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// InsertDefaultRule stores a default rule.
func (t *Tx) InsertDefaultRule(ctx context.Context, r model.SecurityGroupRule) (model.SecurityGroupRule, error) {
	err := t.QueryRow(ctx, `INSERT INTO default_security_group_rules (protocol, from_port, to_port, cidr)
		VALUES (?, ?, ?, ?) RETURNING id`, r.Protocol, r.FromPort, r.ToPort, prefixString(r.CIDR)).Scan(&r.ID)
	return r, err
}

// DeleteDefaultRule removes a default rule; ok is false if none existed.
func (t *Tx) DeleteDefaultRule(ctx context.Context, id int64) (bool, error) {
	res, err := t.Exec(ctx, `DELETE FROM default_security_group_rules WHERE id = ?`, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
