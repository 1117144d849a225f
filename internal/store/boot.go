package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"novanet/internal/model"
)

// The boot's fast paths. On PostgreSQL every statement is a round trip,
// and a boot used to be about twenty-five of them; these queries each do
// in one what took two to eight: look up and lock in one statement,
// choose and claim in one, and name several rows at once.

// FindNetworkShared is FindNetwork that also takes the network's row lock
// shared (a boot into it: its delete waits, then sees the address in use).
func (t *Tx) FindNetworkShared(ctx context.Context, ref string) (model.Network, error) {
	ref = strings.TrimSpace(ref)
	lock := t.lockClause("KEY SHARE")
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		n, err := scanNetwork(t.QueryRow(ctx, `SELECT `+networkCols+` FROM networks WHERE id = ?`+lock, id))
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return n, err
		}
	}
	n, err := scanNetwork(t.QueryRow(ctx, `SELECT `+networkCols+` FROM networks WHERE uuid = ? OR label = ? ORDER BY id LIMIT 1`+lock, ref, ref))
	if errors.Is(err, sql.ErrNoRows) {
		return n, model.Errorf(model.ErrNotFound, "network %q not found: give its id, uuid or label (see 'novanet network list')", ref)
	}
	return n, err
}

// GroupIDsShared returns the ids of the project's groups of the given
// names, each row locked shared; names not found are missing from the map.
func (t *Tx) GroupIDsShared(ctx context.Context, projectID string, names []string) (map[string]int64, error) {
	if len(names) == 0 {
		return map[string]int64{}, nil
	}
	args := []any{projectID}
	marks := make([]string, len(names))
	for i, n := range names {
		marks[i] = "?"
		args = append(args, n)
	}
	rows, err := t.Query(ctx, `SELECT id, name FROM security_groups WHERE project_id = ? AND name IN (`+strings.Join(marks, ", ")+`) ORDER BY id`+t.lockClause("KEY SHARE"), args...)
	if err != nil {
		return nil, fmt.Errorf("look up security groups of project %s: %w", projectID, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, err
		}
		out[name] = id
	}
	return out, rows.Err()
}

// SourceGroupHosts returns the hosts of members of the groups that have
// a rule naming one of groups as its source: their state lists the
// members of groups, which a boot or delete changes.
func (t *Tx) SourceGroupHosts(ctx context.Context, groups []int64) ([]string, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	args := make([]any, len(groups))
	marks := make([]string, len(groups))
	for i, g := range groups {
		marks[i], args[i] = "?", g
	}
	return t.strings(ctx, `SELECT DISTINCT i.host FROM security_group_rules r
		JOIN instance_security_groups m ON m.group_id = r.group_id
		JOIN instances i ON i.uuid = m.instance_uuid
		WHERE r.source_group_id IN (`+strings.Join(marks, ", ")+`) ORDER BY i.host`, args...)
}

// InsertInstanceNew stores an instance unless its uuid is taken (ok false;
// the transaction stays usable).
func (t *Tx) InsertInstanceNew(ctx context.Context, i model.Instance) (bool, error) {
	res, err := t.Exec(ctx, `INSERT INTO instances (`+instanceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		i.UUID, i.Hostname, i.ProjectID, i.Host, i.UserData, i.KeyName, i.KeyData, toMicros(i.CreatedAt))
	if err != nil {
		return false, fmt.Errorf("insert instance %s: %w", i.UUID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// AddInstanceGroups makes the instance a member of groups in one statement.
func (t *Tx) AddInstanceGroups(ctx context.Context, uuid string, groups []int64) error {
	if len(groups) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO instance_security_groups (instance_uuid, group_id) VALUES `)
	args := make([]any, 0, 2*len(groups))
	for i, g := range groups {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?)")
		args = append(args, uuid, g)
	}
	_, err := t.Exec(ctx, q.String(), args...)
	return err
}

// ClaimFreeFixedIP takes the network's first free address for the
// instance and VIF in one statement and returns its row; errNoFree when
// none is free. On PostgreSQL the subquery locks the chosen row with
// SKIP LOCKED, so concurrent boots take different rows without waiting
// (and, as AllocateFixedIP, a network whose every free row is held by a
// boot in flight reads as exhausted); the outer condition repeats
// freeCond so a stale choice can never claim a taken row.
func (t *Tx) ClaimFreeFixedIP(ctx context.Context, networkID int64, instanceUUID string, vifID int64) (model.FixedIP, error) {
	q := `UPDATE fixed_ips SET instance_uuid = ?, virtual_interface_id = ?, allocated = TRUE, updated_at = ?
		WHERE id = (SELECT id FROM fixed_ips WHERE network_id = ? AND ` + freeCond + ` ORDER BY id LIMIT 1` + t.lockClause("UPDATE SKIP LOCKED") + `)
		AND ` + freeCond + ` RETURNING ` + fixedCols
	f, err := scanFixedIP(t.QueryRow(ctx, q, instanceUUID, vifID, Now(), networkID))
	if errors.Is(err, sql.ErrNoRows) {
		return f, errNoFree
	}
	if err != nil {
		return f, fmt.Errorf("claim a free fixed ip in network %d: %w", networkID, err)
	}
	return f, nil
}
