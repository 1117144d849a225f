package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"novanet/internal/model"
)

// Floating IP rows joined with their fixed address and instance.
const floatingSelect = `SELECT fl.id, fl.address, fl.pool, fl.interface, fl.project_id, fl.host, fl.auto_assigned,
	fl.fixed_ip_id, f.address, f.instance_uuid
	FROM floating_ips fl LEFT JOIN fixed_ips f ON f.id = fl.fixed_ip_id`

// Floating is a floating IP with the id of its fixed IP row.
type Floating struct {
	model.FloatingIP
	FixedIPID int64
}

func scanFloating(r scanner) (Floating, error) {
	var f Floating
	var addr string
	var proj, host, faddr, inst sql.NullString
	var fid sql.NullInt64
	err := r.Scan(&f.ID, &addr, &f.Pool, &f.Interface, &proj, &host, &f.AutoAssigned, &fid, &faddr, &inst)
	f.Address = parseAddr(addr)
	f.ProjectID = proj.String
	f.Host = host.String
	f.FixedIPID = fid.Int64
	if faddr.Valid {
		f.FixedAddress = parseAddr(faddr.String)
	}
	f.InstanceUUID = inst.String
	return f, err
}

// IPNum is an IPv4 address as a number, for range queries.
func IPNum(a netip.Addr) int64 { return int64(model.Addr4Uint32(a)) }

// FloatingFilter selects floating IPs; zero fields match every row, and
// the fields set must all hold.
type FloatingFilter struct {
	// From and To, when valid, bound the address (inclusive).
	From, To netip.Addr
	// ProjectID: allocated to this project.
	ProjectID string
	// Allocated: allocated to some project.
	Allocated bool
	// FixedIPID: associated with this fixed IP row.
	FixedIPID int64
	// Host: NATed on this host.
	Host string
	// Associated: associated with some fixed IP.
	Associated bool
}

// where renders the filter as a condition on fl and its arguments.
func (f FloatingFilter) where() (string, []any) {
	conds := []string{"TRUE"}
	var args []any
	add := func(cond string, vals ...any) {
		conds = append(conds, cond)
		args = append(args, vals...)
	}
	if f.From.IsValid() {
		add("fl.ipnum >= ?", IPNum(f.From))
	}
	if f.To.IsValid() {
		add("fl.ipnum <= ?", IPNum(f.To))
	}
	if f.ProjectID != "" {
		add("fl.project_id = ?", f.ProjectID)
	}
	if f.Allocated {
		add("fl.project_id IS NOT NULL")
	}
	if f.FixedIPID != 0 {
		add("fl.fixed_ip_id = ?", f.FixedIPID)
	}
	if f.Host != "" {
		add("fl.host = ?", f.Host)
	}
	if f.Associated {
		add("fl.fixed_ip_id IS NOT NULL")
	}
	return strings.Join(conds, " AND "), args
}

// ListFloatings returns the floating IPs f selects, ordered by address.
func (t *Tx) ListFloatings(ctx context.Context, f FloatingFilter) ([]Floating, error) {
	cond, args := f.where()
	return t.floatings(ctx, cond, args...)
}

func (t *Tx) floatings(ctx context.Context, cond string, args ...any) ([]Floating, error) {
	rows, err := t.Query(ctx, floatingSelect+` WHERE `+cond+` ORDER BY fl.ipnum`, args...)
	if err != nil {
		return nil, fmt.Errorf("list floating ips: %w", err)
	}
	defer rows.Close()
	var out []Floating
	for rows.Next() {
		f, err := scanFloating(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// FloatingByAddress returns one floating IP, or model.ErrNotFound.
func (t *Tx) FloatingByAddress(ctx context.Context, a netip.Addr) (Floating, error) {
	f, err := scanFloating(t.QueryRow(ctx, floatingSelect+` WHERE fl.address = ?`, a.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return f, model.Errorf(model.ErrNotFound, "floating ip %s not found", a)
	}
	return f, err
}

// FloatingByID returns one floating IP, or model.ErrNotFound.
func (t *Tx) FloatingByID(ctx context.Context, id int64) (Floating, error) {
	f, err := scanFloating(t.QueryRow(ctx, floatingSelect+` WHERE fl.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return f, model.Errorf(model.ErrNotFound, "floating ip %d not found", id)
	}
	return f, err
}

// CountFloatings counts the floating IPs f selects.
func (t *Tx) CountFloatings(ctx context.Context, f FloatingFilter) (int, error) {
	cond, args := f.where()
	var n int
	err := t.QueryRow(ctx, `SELECT COUNT(*) FROM floating_ips fl WHERE `+cond, args...).Scan(&n)
	return n, err
}

// InsertFloatingIPs creates rows for the addresses in batches.
func (t *Tx) InsertFloatingIPs(ctx context.Context, addrs []netip.Addr, pool, iface string) error {
	const batch = 500
	for start := 0; start < len(addrs); start += batch {
		end := min(start+batch, len(addrs))
		var q strings.Builder
		q.WriteString(`INSERT INTO floating_ips (address, ipnum, pool, interface) VALUES `)
		args := make([]any, 0, (end-start)*4)
		for i, a := range addrs[start:end] {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?, ?, ?, ?)")
			args = append(args, a.String(), IPNum(a), pool, iface)
		}
		if _, err := t.Exec(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("insert floating ips: %w", err)
		}
	}
	return nil
}

// DeleteFloatingInRange removes the floating IPs in [lo, hi].
func (t *Tx) DeleteFloatingInRange(ctx context.Context, lo, hi netip.Addr) (int, error) {
	res, err := t.Exec(ctx, `DELETE FROM floating_ips WHERE ipnum BETWEEN ? AND ?`, IPNum(lo), IPNum(hi))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// AllocateFloating gives the pool's first unallocated floating IP to the
// project; errNoFree when the pool has none.
func (t *Tx) AllocateFloating(ctx context.Context, pool, projectID string, auto bool) (Floating, error) {
	lock := ""
	if t.dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	for attempt := 0; attempt < 16; attempt++ {
		var id int64
		err := t.QueryRow(ctx, `SELECT id FROM floating_ips WHERE pool = ? AND project_id IS NULL ORDER BY id LIMIT 1`+lock, pool).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return Floating{}, errNoFree
		}
		if err != nil {
			return Floating{}, err
		}
		res, err := t.Exec(ctx, `UPDATE floating_ips SET project_id = ?, auto_assigned = ? WHERE id = ? AND project_id IS NULL`, projectID, auto, id)
		if err != nil {
			return Floating{}, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return t.FloatingByID(ctx, id)
		}
	}
	return Floating{}, fmt.Errorf("allocate floating ip from pool %q: lost the race 16 times; retry", pool)
}

// CountProjectFloating counts the project's floating IPs.
func (t *Tx) CountProjectFloating(ctx context.Context, projectID string) (int, error) {
	var n int
	err := t.QueryRow(ctx, `SELECT COUNT(*) FROM floating_ips WHERE project_id = ?`, projectID).Scan(&n)
	return n, err
}

// AssociateFloating binds a floating IP to a fixed IP row and NAT host.
func (t *Tx) AssociateFloating(ctx context.Context, id, fixedID int64, host string) error {
	_, err := t.Exec(ctx, `UPDATE floating_ips SET fixed_ip_id = ?, host = ? WHERE id = ?`, fixedID, host, id)
	return err
}

// DisassociateFloating clears the binding.
func (t *Tx) DisassociateFloating(ctx context.Context, id int64) error {
	_, err := t.Exec(ctx, `UPDATE floating_ips SET fixed_ip_id = NULL, host = NULL WHERE id = ?`, id)
	return err
}

// ReleaseFloating returns a floating IP to its pool.
func (t *Tx) ReleaseFloating(ctx context.Context, id int64) error {
	_, err := t.Exec(ctx, `UPDATE floating_ips SET project_id = NULL, fixed_ip_id = NULL, host = NULL, auto_assigned = FALSE WHERE id = ?`, id)
	return err
}

// FloatingPools lists pool names in order.
func (t *Tx) FloatingPools(ctx context.Context) ([]string, error) {
	return t.strings(ctx, `SELECT DISTINCT pool FROM floating_ips ORDER BY pool`)
}

// QuotaLimit returns a project's override for a resource, ok false if none.
func (t *Tx) QuotaLimit(ctx context.Context, projectID, resource string) (int, bool, error) {
	var n int
	err := t.QueryRow(ctx, `SELECT hard_limit FROM quotas WHERE project_id = ? AND resource = ?`, projectID, resource).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return n, err == nil, err
}

// SetQuotaLimit stores a project's override for a resource.
func (t *Tx) SetQuotaLimit(ctx context.Context, projectID, resource string, limit int) error {
	_, err := t.Exec(ctx, `INSERT INTO quotas (project_id, resource, hard_limit) VALUES (?, ?, ?)
		ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit`, projectID, resource, limit)
	return err
}
