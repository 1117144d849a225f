package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"

	"novanet/internal/model"
)

const fixedCols = `id, address, network_id, instance_uuid, virtual_interface_id, host, allocated, leased, reserved, updated_at`

// freeCond must stay textually identical to the fixed_ips_free index
// predicate so both engines use the partial index.
const freeCond = `NOT allocated AND NOT reserved AND instance_uuid IS NULL AND host IS NULL AND NOT leased`

func scanFixedIP(r scanner) (model.FixedIP, error) {
	var f model.FixedIP
	var addr string
	var inst, host sql.NullString
	var vif sql.NullInt64
	var upd int64
	if err := r.Scan(&f.ID, &addr, &f.NetworkID, &inst, &vif, &host, &f.Allocated, &f.Leased, &f.Reserved, &upd); err != nil {
		return f, err
	}
	f.Address = parseAddr(addr)
	f.InstanceUUID = inst.String
	f.VIFID = vif.Int64
	f.Host = host.String
	f.UpdatedAt = fromMicros(upd)
	return f, nil
}

func (t *Tx) fixedIPs(ctx context.Context, where string, args ...any) ([]model.FixedIP, error) {
	rows, err := t.Query(ctx, `SELECT `+fixedCols+` FROM fixed_ips WHERE `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("query fixed ips: %w", err)
	}
	defer rows.Close()
	var out []model.FixedIP
	for rows.Next() {
		f, err := scanFixedIP(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// FixedIPByAddress returns the row of addr, or a model.ErrNotFound.
func (t *Tx) FixedIPByAddress(ctx context.Context, addr netip.Addr) (model.FixedIP, error) {
	f, err := scanFixedIP(t.QueryRow(ctx, `SELECT `+fixedCols+` FROM fixed_ips WHERE address = ?`, addr.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return f, model.Errorf(model.ErrNotFound, "fixed ip %s not found: it is in no network", addr)
	}
	return f, err
}

// FixedIPByID returns one row by id.
func (t *Tx) FixedIPByID(ctx context.Context, id int64) (model.FixedIP, error) {
	f, err := scanFixedIP(t.QueryRow(ctx, `SELECT `+fixedCols+` FROM fixed_ips WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return f, model.Errorf(model.ErrNotFound, "fixed ip %d not found", id)
	}
	return f, err
}

// FixedIPsByInstance returns the addresses associated with an instance.
func (t *Tx) FixedIPsByInstance(ctx context.Context, uuid string) ([]model.FixedIP, error) {
	return t.fixedIPs(ctx, `instance_uuid = ?`, uuid)
}

// FixedIPsByHost returns the addresses hosts hold for themselves
// (multi-host gateways); host "" means every host.
func (t *Tx) FixedIPsByHost(ctx context.Context, host string) ([]model.FixedIP, error) {
	if host == "" {
		return t.fixedIPs(ctx, `host IS NOT NULL`)
	}
	return t.fixedIPs(ctx, `host = ?`, host)
}

// FixedIPsOfNetwork returns every row of a network.
func (t *Tx) FixedIPsOfNetwork(ctx context.Context, networkID int64) ([]model.FixedIP, error) {
	return t.fixedIPs(ctx, `network_id = ?`, networkID)
}

// SetFixedIPReserved flips the reserved flag.
func (t *Tx) SetFixedIPReserved(ctx context.Context, id int64, reserved bool) error {
	_, err := t.Exec(ctx, `UPDATE fixed_ips SET reserved = ?, updated_at = ? WHERE id = ?`, reserved, Now(), id)
	return err
}

// AllocateFixedIP takes the first free address of the network (lowest id)
// for the instance and VIF. It returns a model.ErrExhausted when none is
// free. On PostgreSQL the candidate row is locked with SKIP LOCKED so
// concurrent allocators take different rows instead of waiting.
func (t *Tx) AllocateFixedIP(ctx context.Context, networkID int64, instanceUUID string, vifID int64) (model.FixedIP, error) {
	lock := ""
	if t.dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	for attempt := 0; attempt < 16; attempt++ {
		var id int64
		err := t.QueryRow(ctx, `SELECT id FROM fixed_ips WHERE network_id = ? AND `+freeCond+` ORDER BY id LIMIT 1`+lock, networkID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return model.FixedIP{}, errNoFree
		}
		if err != nil {
			return model.FixedIP{}, fmt.Errorf("find free fixed ip in network %d: %w", networkID, err)
		}
		f, ok, err := t.claimFixedIP(ctx, id, instanceUUID, vifID, "")
		if err != nil || ok {
			return f, err
		}
	}
	return model.FixedIP{}, fmt.Errorf("allocate fixed ip in network %d: lost the race 16 times; retry", networkID)
}

// errNoFree is turned into a model.ErrExhausted by the caller, who knows
// the network's name.
var errNoFree = errors.New("no free fixed ip")

// IsNoFreeAddress reports whether err is AllocateFixedIP's exhaustion.
func IsNoFreeAddress(err error) bool { return errors.Is(err, errNoFree) }

// AllocateSpecificFixedIP takes addr if it is free; ok is false otherwise.
func (t *Tx) AllocateSpecificFixedIP(ctx context.Context, id int64, instanceUUID string, vifID int64) (model.FixedIP, bool, error) {
	return t.claimFixedIP(ctx, id, instanceUUID, vifID, "")
}

// AllocateHostFixedIP takes the first free address of the network as a
// host's own (multi-host gateway) address.
func (t *Tx) AllocateHostFixedIP(ctx context.Context, networkID int64, host string) (model.FixedIP, error) {
	lock := ""
	if t.dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	for attempt := 0; attempt < 16; attempt++ {
		var id int64
		err := t.QueryRow(ctx, `SELECT id FROM fixed_ips WHERE network_id = ? AND `+freeCond+` ORDER BY id LIMIT 1`+lock, networkID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return model.FixedIP{}, errNoFree
		}
		if err != nil {
			return model.FixedIP{}, err
		}
		f, ok, err := t.claimFixedIP(ctx, id, "", 0, host)
		if err != nil || ok {
			return f, err
		}
	}
	return model.FixedIP{}, fmt.Errorf("allocate host address in network %d: lost the race 16 times; retry", networkID)
}

// claimFixedIP updates the row only if it is still free, so a stale read
// can never double-allocate.
func (t *Tx) claimFixedIP(ctx context.Context, id int64, instanceUUID string, vifID int64, host string) (model.FixedIP, bool, error) {
	var inst, h any
	var vif any
	if instanceUUID != "" {
		inst, vif = instanceUUID, vifID
	}
	if host != "" {
		h = host
	}
	res, err := t.Exec(ctx, `UPDATE fixed_ips SET instance_uuid = ?, virtual_interface_id = ?, host = ?, allocated = TRUE, updated_at = ?
		WHERE id = ? AND `+freeCond, inst, vif, h, Now(), id)
	if err != nil {
		return model.FixedIP{}, false, fmt.Errorf("claim fixed ip %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return model.FixedIP{}, false, err
	}
	f, err := t.FixedIPByID(ctx, id)
	return f, err == nil, err
}

// DeallocateFixedIP marks the address no longer allocated; it stays
// associated with its instance until disassociated.
func (t *Tx) DeallocateFixedIP(ctx context.Context, id int64) error {
	_, err := t.Exec(ctx, `UPDATE fixed_ips SET allocated = FALSE, updated_at = ? WHERE id = ?`, Now(), id)
	return err
}

// DisassociateFixedIP returns the address to the free pool and removes
// the VIF it belonged to (the VIF is kept until now so its MAC is not
// reused while a lease may still name it).
func (t *Tx) DisassociateFixedIP(ctx context.Context, f model.FixedIP) error {
	if _, err := t.Exec(ctx, `UPDATE fixed_ips SET instance_uuid = NULL, virtual_interface_id = NULL, host = NULL,
		allocated = FALSE, leased = FALSE, updated_at = ? WHERE id = ?`, Now(), f.ID); err != nil {
		return fmt.Errorf("disassociate fixed ip %s: %w", f.Address, err)
	}
	if f.VIFID != 0 {
		if _, err := t.Exec(ctx, `DELETE FROM virtual_interfaces WHERE id = ?`, f.VIFID); err != nil {
			return fmt.Errorf("delete vif %d of %s: %w", f.VIFID, f.Address, err)
		}
	}
	return nil
}

// SetFixedIPLeased records dnsmasq's view of the address.
func (t *Tx) SetFixedIPLeased(ctx context.Context, id int64, leased bool) error {
	_, err := t.Exec(ctx, `UPDATE fixed_ips SET leased = ?, updated_at = ? WHERE id = ?`, leased, Now(), id)
	return err
}

// StaleFixedIPs returns deallocated addresses still associated and last
// updated before the cutoff (unix microseconds); addresses dnsmasq still
// holds a lease for only when last updated before leasedBefore.
func (t *Tx) StaleFixedIPs(ctx context.Context, before, leasedBefore int64, limit int) ([]model.FixedIP, error) {
	rows, err := t.Query(ctx, `SELECT `+fixedCols+` FROM fixed_ips WHERE NOT allocated AND instance_uuid IS NOT NULL
		AND updated_at < ? AND (NOT leased OR updated_at < ?) ORDER BY id LIMIT ?`+t.lockClause("UPDATE SKIP LOCKED"), before, leasedBefore, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.FixedIP
	for rows.Next() {
		f, err := scanFixedIP(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}
