package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// HostChange is one scope of what changed in a host's state at a revision
// (see manager's change log for the scope names).
type HostChange struct {
	Host     string
	Revision int64
	Scope    string
}

// BumpHostRevisions moves the revision of each named host (created if
// missing) and returns each one's new revision, so the change log rows of
// this transaction can name it. Names are deduplicated and sorted so
// concurrent transactions lock host rows in one order and cannot
// deadlock.
func (t *Tx) BumpHostRevisions(ctx context.Context, names ...string) (map[string]int64, error) {
	hs := slices.Clone(names)
	slices.Sort(hs)
	hs = slices.Compact(hs)
	hs = slices.DeleteFunc(hs, func(h string) bool { return h == "" })
	out := make(map[string]int64, len(hs))
	if len(hs) == 0 {
		return out, nil
	}
	// One statement for all: its rows are inserted, and so locked, in
	// the sorted order of VALUES.
	var q strings.Builder
	q.WriteString(`INSERT INTO hosts (name, revision) VALUES `)
	args := make([]any, len(hs))
	for i, h := range hs {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, 1)")
		args[i] = h
	}
	q.WriteString(` ON CONFLICT (name) DO UPDATE SET revision = hosts.revision + 1 RETURNING name, revision`)
	rows, err := t.Query(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("bump revision of hosts %s: %w", strings.Join(hs, ", "), err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var rev int64
		if err := rows.Scan(&name, &rev); err != nil {
			return nil, err
		}
		out[name] = rev
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("bump revision of hosts %s: %w", strings.Join(hs, ", "), err)
	}
	return out, nil
}

// InsertHostChanges writes change log rows (duplicates are dropped).
func (t *Tx) InsertHostChanges(ctx context.Context, cs []HostChange) error {
	const batch = 300 // SQLite allows 32766 variables; keep statements small
	for len(cs) > 0 {
		n := min(len(cs), batch)
		var q strings.Builder
		q.WriteString(`INSERT INTO host_changes (host, revision, scope) VALUES `)
		args := make([]any, 0, 3*n)
		for i, c := range cs[:n] {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?)")
			args = append(args, c.Host, c.Revision, c.Scope)
		}
		q.WriteString(` ON CONFLICT DO NOTHING`)
		if _, err := t.Exec(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("record host changes: %w", err)
		}
		cs = cs[n:]
	}
	return nil
}

// HostChanges returns the change log of host for revisions in (from, to],
// by revision, and how many distinct revisions it covers (fewer than
// to-from when rows were pruned or never written).
func (t *Tx) HostChanges(ctx context.Context, host string, from, to int64) ([]HostChange, int, error) {
	rows, err := t.Query(ctx, `SELECT revision, scope FROM host_changes WHERE host = ? AND revision > ? AND revision <= ? ORDER BY revision, scope`, host, from, to)
	if err != nil {
		return nil, 0, fmt.Errorf("read host changes of %s: %w", host, err)
	}
	defer rows.Close()
	var out []HostChange
	revs := 0
	for rows.Next() {
		c := HostChange{Host: host}
		if err := rows.Scan(&c.Revision, &c.Scope); err != nil {
			return nil, 0, err
		}
		if len(out) == 0 || out[len(out)-1].Revision != c.Revision {
			revs++
		}
		out = append(out, c)
	}
	return out, revs, rows.Err()
}

// PruneHostChanges drops the log rows more than keep revisions behind
// their host's current revision; an agent further behind gets the whole
// state. It returns how many rows went.
func (t *Tx) PruneHostChanges(ctx context.Context, keep int64) (int64, error) {
	res, err := t.Exec(ctx, `DELETE FROM host_changes WHERE revision <= (SELECT h.revision FROM hosts h WHERE h.name = host_changes.host) - ?`, keep)
	if err != nil {
		return 0, fmt.Errorf("prune host changes: %w", err)
	}
	return res.RowsAffected()
}

// HostKnown reports whether host has a row.
func (t *Tx) HostKnown(ctx context.Context, host string) (bool, error) {
	var one int
	err := t.QueryRow(ctx, `SELECT 1 FROM hosts WHERE name = ?`, host).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// PortByMAC returns the allocated port of the VIF with mac (ok false when
// the VIF is gone or has no allocated address).
func (t *Tx) PortByMAC(ctx context.Context, mac string) (Port, bool, error) {
	rows, err := t.Query(ctx, `SELECT v.id, v.uuid, v.mac, v.instance_uuid, v.network_id, v.device,
		f.id, f.address, f.network_id, i.hostname, i.project_id, i.host
		FROM fixed_ips f JOIN virtual_interfaces v ON v.id = f.virtual_interface_id JOIN instances i ON i.uuid = v.instance_uuid
		WHERE f.allocated AND v.mac = ? ORDER BY f.id`, mac)
	if err != nil {
		return Port{}, false, fmt.Errorf("read port of %s: %w", mac, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return Port{}, false, rows.Err()
	}
	var p Port
	var addr string
	if err := rows.Scan(&p.ID, &p.UUID, &p.MAC, &p.InstanceUUID, &p.NetworkID, &p.Device,
		&p.Address.ID, &addr, &p.Address.NetworkID, &p.Hostname, &p.ProjectID, &p.Host); err != nil {
		return Port{}, false, err
	}
	p.Address.Address = parseAddr(addr)
	p.Address.InstanceUUID, p.Address.VIFID, p.Address.Allocated = p.InstanceUUID, p.ID, true
	return p, true, nil
}

// HasLocalPort reports whether an instance on host has an allocated
// address in the network.
func (t *Tx) HasLocalPort(ctx context.Context, networkID int64, host string) (bool, error) {
	return t.exists(ctx, `SELECT 1 FROM fixed_ips f JOIN virtual_interfaces v ON v.id = f.virtual_interface_id
		JOIN instances i ON i.uuid = v.instance_uuid WHERE f.allocated AND f.network_id = ? AND i.host = ? LIMIT 1`, networkID, host)
}

// hasPort holds for an instance i with a port (as Ports lists them): the
// host state takes the groups of a host's instances from its ports.
const hasPort = `EXISTS (SELECT 1 FROM fixed_ips pf JOIN virtual_interfaces pv ON pv.id = pf.virtual_interface_id
	WHERE pv.instance_uuid = i.uuid AND pf.allocated)`

// HostUsesGroup reports whether the group is in host's state: an
// instance on host is its member, or a rule of a group with a member on
// host names it as source.
func (t *Tx) HostUsesGroup(ctx context.Context, groupID int64, host string) (bool, error) {
	ok, err := t.exists(ctx, `SELECT 1 FROM instance_security_groups m JOIN instances i ON i.uuid = m.instance_uuid
		WHERE m.group_id = ? AND i.host = ? AND `+hasPort+` LIMIT 1`, groupID, host)
	if err != nil || ok {
		return ok, err
	}
	return t.exists(ctx, `SELECT 1 FROM security_group_rules r JOIN instance_security_groups m ON m.group_id = r.group_id
		JOIN instances i ON i.uuid = m.instance_uuid WHERE r.source_group_id = ? AND i.host = ? AND `+hasPort+` LIMIT 1`, groupID, host)
}

// OtherLocalGroupMember reports whether an instance on host other than
// except is a member of the group.
func (t *Tx) OtherLocalGroupMember(ctx context.Context, groupID int64, host, except string) (bool, error) {
	return t.exists(ctx, `SELECT 1 FROM instance_security_groups m JOIN instances i ON i.uuid = m.instance_uuid
		WHERE m.group_id = ? AND i.host = ? AND i.uuid <> ? AND `+hasPort+` LIMIT 1`, groupID, host, except)
}

// IsGroupMemberAddress reports whether addr is an allocated address of a
// member of the group (one of GroupMemberAddresses).
func (t *Tx) IsGroupMemberAddress(ctx context.Context, groupID int64, addr netip.Addr) (bool, error) {
	return t.exists(ctx, `SELECT 1 FROM instance_security_groups g JOIN fixed_ips f ON f.instance_uuid = g.instance_uuid
		WHERE g.group_id = ? AND f.allocated AND f.address = ? LIMIT 1`, groupID, addr.String())
}

// HostFloating returns the associated floating address host NATs, if any.
func (t *Tx) HostFloating(ctx context.Context, host string, addr netip.Addr) (Floating, bool, error) {
	fls, err := t.floatings(ctx, `fl.address = ? AND fl.host = ? AND fl.fixed_ip_id IS NOT NULL`, addr.String(), host)
	if err != nil || len(fls) == 0 {
		return Floating{}, false, err
	}
	return fls[0], true, nil
}

// HostFloatings returns the associated floating addresses host NATs.
func (t *Tx) HostFloatings(ctx context.Context, host string) ([]Floating, error) {
	return t.floatings(ctx, `fl.host = ? AND fl.fixed_ip_id IS NOT NULL`, host)
}

func (t *Tx) exists(ctx context.Context, q string, args ...any) (bool, error) {
	var one int
	err := t.QueryRow(ctx, q, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// HostOwnAddress returns host's own (gateway) address in a multi-host
// network, if it has one (an index lookup: FixedIPsByHost scans).
func (t *Tx) HostOwnAddress(ctx context.Context, networkID int64, host string) (netip.Addr, bool, error) {
	var s string
	err := t.QueryRow(ctx, `SELECT address FROM fixed_ips WHERE network_id = ? AND host = ?`, networkID, host).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return netip.Addr{}, false, nil
	}
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("read own address of %s in network %d: %w", host, networkID, err)
	}
	return parseAddr(s), true, nil
}
