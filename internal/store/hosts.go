package store

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"slices"
	"time"

	"novanet/internal/model"
)

// Host is one agent's row.
type Host struct {
	Name            string
	Revision        int64
	AppliedRevision int64
	Problem         string
	LastSeen        time.Time
}

// EnsureHost creates the host row if missing.
func (t *Tx) EnsureHost(ctx context.Context, name string) error {
	_, err := t.Exec(ctx, `INSERT INTO hosts (name) VALUES (?) ON CONFLICT (name) DO NOTHING`, name)
	return err
}

// BumpHosts is BumpHostRevisions returning the hosts it moved, sorted.
func (t *Tx) BumpHosts(ctx context.Context, names ...string) ([]string, error) {
	revs, err := t.BumpHostRevisions(ctx, names...)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(revs))
	for h := range revs {
		out = append(out, h)
	}
	slices.Sort(out)
	return out, nil
}

// HostRow returns a host; a missing host reads as revision 0.
func (t *Tx) HostRow(ctx context.Context, name string) (Host, error) {
	h := Host{Name: name}
	var seen int64
	err := t.QueryRow(ctx, `SELECT revision, applied_revision, problem, last_seen FROM hosts WHERE name = ?`, name).
		Scan(&h.Revision, &h.AppliedRevision, &h.Problem, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return h, nil
	}
	h.LastSeen = fromMicros(seen)
	return h, err
}

// Revision reads a host's revision without a transaction (for polling).
func (s *Store) Revision(ctx context.Context, name string) (int64, error) {
	var r int64
	err := s.db.QueryRowContext(ctx, s.Rebind(`SELECT revision FROM hosts WHERE name = ?`), name).Scan(&r)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return r, err
}

// ReportApplied records what an agent applied.
func (t *Tx) ReportApplied(ctx context.Context, name string, r model.AppliedReport) error {
	_, err := t.Exec(ctx, `INSERT INTO hosts (name, applied_revision, problem, last_drift, last_seen) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET applied_revision = excluded.applied_revision, problem = excluded.problem,
		last_drift = excluded.last_drift, last_seen = excluded.last_seen`,
		name, r.Revision, r.Problem, r.LastDrift, Now())
	return err
}

// ListHosts returns every host by name.
func (t *Tx) ListHosts(ctx context.Context) ([]Host, error) {
	rows, err := t.Query(ctx, `SELECT name, revision, applied_revision, problem, last_seen FROM hosts ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Host
	for rows.Next() {
		var h Host
		var seen int64
		if err := rows.Scan(&h.Name, &h.Revision, &h.AppliedRevision, &h.Problem, &seen); err != nil {
			return nil, err
		}
		h.LastSeen = fromMicros(seen)
		out = append(out, h)
	}
	return out, rows.Err()
}

// Release is a pending DHCPRELEASE.
type Release struct {
	ID        int64
	Host      string
	NetworkID int64
	Address   netip.Addr
	MAC       string
	CreatedAt time.Time
}

// InsertRelease queues a DHCPRELEASE for host.
func (t *Tx) InsertRelease(ctx context.Context, r Release) error {
	_, err := t.Exec(ctx, `INSERT INTO dhcp_releases (host, network_id, address, mac, created_at) VALUES (?, ?, ?, ?, ?)`,
		r.Host, r.NetworkID, r.Address.String(), r.MAC, Now())
	return err
}

// Releases returns the pending releases of a host ("" = all), by id.
func (t *Tx) Releases(ctx context.Context, host string) ([]Release, error) {
	q := `SELECT id, host, network_id, address, mac, created_at FROM dhcp_releases`
	var args []any
	if host != "" {
		q += ` WHERE host = ?`
		args = append(args, host)
	}
	rows, err := t.Query(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Release
	for rows.Next() {
		var r Release
		var addr string
		var created int64
		if err := rows.Scan(&r.ID, &r.Host, &r.NetworkID, &addr, &r.MAC, &created); err != nil {
			return nil, err
		}
		r.Address = parseAddr(addr)
		r.CreatedAt = fromMicros(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeleteReleases drops host's pending releases of an address (and MAC if
// given); it returns the hosts that had one (host or none).
func (t *Tx) DeleteReleases(ctx context.Context, host string, addr netip.Addr, mac string) ([]string, error) {
	q, args := `host = ? AND address = ?`, []any{host, addr.String()}
	if mac != "" {
		q += ` AND mac = ?`
		args = append(args, mac)
	}
	hosts, err := t.strings(ctx, `SELECT DISTINCT host FROM dhcp_releases WHERE `+q+` ORDER BY host`, args...)
	if err != nil {
		return nil, err
	}
	_, err = t.Exec(ctx, `DELETE FROM dhcp_releases WHERE `+q, args...)
	return hosts, err
}

// ExpireReleases drops releases created before the cutoff (unix
// microseconds) and returns the hosts that had one.
func (t *Tx) ExpireReleases(ctx context.Context, before int64) ([]string, error) {
	hosts, err := t.strings(ctx, `SELECT DISTINCT host FROM dhcp_releases WHERE created_at < ? ORDER BY host`, before)
	if err != nil || len(hosts) == 0 {
		return hosts, err
	}
	_, err = t.Exec(ctx, `DELETE FROM dhcp_releases WHERE created_at < ?`, before)
	return hosts, err
}
