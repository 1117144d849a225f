package store

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"

	"novanet/internal/model"
)

// Row locks for check-then-act under PostgreSQL's READ COMMITTED: a
// decision read without a lock may be stale by the time the write lands,
// because another server's transaction committed in between. Each Lock*
// reads the row the decision depends on with FOR UPDATE (or FOR KEY
// SHARE, the mode a foreign key check takes: it conflicts only with the
// FOR UPDATE of a delete, so boots sharing a network or group do not
// queue behind each other),
// so a concurrent writer waits, and PostgreSQL re-reads the newest
// committed version after the wait. SQLite needs none of this: BEGIN
// IMMEDIATE makes each write transaction the only one, so the same
// functions there are plain reads.

func (t *Tx) lockClause(mode string) string {
	if t.dialect != Postgres {
		return ""
	}
	return " FOR " + mode
}

// LockInstance returns the instance row locked for update, or
// model.ErrNotFound (also when a concurrent delete won).
func (t *Tx) LockInstance(ctx context.Context, uuid string) (model.Instance, error) {
	i, err := scanInstance(t.QueryRow(ctx, `SELECT `+instanceCols+` FROM instances WHERE uuid = ?`+t.lockClause("UPDATE"), uuid))
	if errors.Is(err, sql.ErrNoRows) {
		return i, model.Errorf(model.ErrNotFound, "instance %s not found", uuid)
	}
	if err != nil {
		return i, err
	}
	i.SecurityGroups, err = t.InstanceGroupIDs(ctx, uuid)
	return i, err
}

// LockFloatingByAddress returns the floating IP locked for update.
func (t *Tx) LockFloatingByAddress(ctx context.Context, a netip.Addr) (Floating, error) {
	f, err := scanFloating(t.QueryRow(ctx, floatingSelect+` WHERE fl.address = ?`+t.lockClause("UPDATE OF fl"), a.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return f, model.Errorf(model.ErrNotFound, "floating ip %s not found", a)
	}
	return f, err
}

// LockFloatingByID returns the floating IP locked for update.
func (t *Tx) LockFloatingByID(ctx context.Context, id int64) (Floating, error) {
	f, err := scanFloating(t.QueryRow(ctx, floatingSelect+` WHERE fl.id = ?`+t.lockClause("UPDATE OF fl"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return f, model.Errorf(model.ErrNotFound, "floating ip %d not found", id)
	}
	return f, err
}

// LockFloatingRange locks the floating IP rows in [lo, hi] for update:
// an allocation (SKIP LOCKED) then passes them by, so a count of the
// allocated ones stays true until the range is deleted.
func (t *Tx) LockFloatingRange(ctx context.Context, lo, hi netip.Addr) error {
	if t.dialect != Postgres {
		return nil
	}
	_, err := t.Exec(ctx, `SELECT id FROM floating_ips WHERE ipnum BETWEEN ? AND ? FOR UPDATE`, IPNum(lo), IPNum(hi))
	return err
}

// LockFixedIPByAddress returns the fixed IP row locked for update.
func (t *Tx) LockFixedIPByAddress(ctx context.Context, addr netip.Addr) (model.FixedIP, error) {
	f, err := scanFixedIP(t.QueryRow(ctx, `SELECT `+fixedCols+` FROM fixed_ips WHERE address = ?`+t.lockClause("UPDATE"), addr.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return f, model.Errorf(model.ErrNotFound, "fixed ip %s not found: it is in no network", addr)
	}
	return f, err
}

// LockSecurityGroup locks a group's row: shared by a boot or membership
// change that adds a member (many may), exclusive by the delete that
// must see no member. model.ErrNotFound when the group is gone.
func (t *Tx) LockSecurityGroup(ctx context.Context, id int64, exclusive bool) error {
	mode := "KEY SHARE"
	if exclusive {
		mode = "UPDATE"
	}
	var got int64
	err := t.QueryRow(ctx, `SELECT id FROM security_groups WHERE id = ?`+t.lockClause(mode), id).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return model.Errorf(model.ErrNotFound, "security group %d not found (deleted meanwhile?)", id)
	}
	return err
}

// LockNetwork locks a network's row: shared by a boot into it, exclusive
// by its delete.
func (t *Tx) LockNetwork(ctx context.Context, id int64, exclusive bool) error {
	mode := "KEY SHARE"
	if exclusive {
		mode = "UPDATE"
	}
	var got int64
	err := t.QueryRow(ctx, `SELECT id FROM networks WHERE id = ?`+t.lockClause(mode), id).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return model.Errorf(model.ErrNotFound, "network %d not found (deleted meanwhile?)", id)
	}
	return err
}

// LockName serialises the transactions that decide on the same named
// thing that has no row of its own to lock: a project's quota counts
// ("project:<id>"), the address space that networks and floating ranges
// must not overlap in ("address-space"). It is a PostgreSQL advisory lock
// released at commit or rollback.
func (t *Tx) LockName(ctx context.Context, name string) error {
	if t.dialect != Postgres {
		return nil
	}
	_, err := t.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, "novanet:"+name)
	return err
}
