package store

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"

	"novanet/internal/model"
)

// PortByAddress returns the allocated instance VIF holding addr, or
// model.ErrNotFound. A deallocated address (its instance deleted, the row
// waiting for disassociation) belongs to nobody.
func (t *Tx) PortByAddress(ctx context.Context, addr netip.Addr) (Port, error) {
	return t.port(ctx, `f.address = ?`, addr.String())
}

// PortsOfInstance returns the instance's allocated VIFs, in address-row
// order.
func (t *Tx) PortsOfInstance(ctx context.Context, uuid string) ([]Port, error) {
	return t.ports(ctx, `v.instance_uuid = ?`, uuid)
}

func (t *Tx) port(ctx context.Context, cond string, args ...any) (Port, error) {
	ps, err := t.ports(ctx, cond, args...)
	if err != nil {
		return Port{}, err
	}
	if len(ps) == 0 {
		return Port{}, model.Errorf(model.ErrNotFound, "no instance interface holds that address")
	}
	return ps[0], nil
}

func (t *Tx) ports(ctx context.Context, cond string, args ...any) ([]Port, error) {
	rows, err := t.Query(ctx, `SELECT v.id, v.uuid, v.mac, v.instance_uuid, v.network_id, v.device,
		f.id, f.address, f.network_id, i.hostname, i.project_id, i.host
		FROM fixed_ips f JOIN virtual_interfaces v ON v.id = f.virtual_interface_id JOIN instances i ON i.uuid = v.instance_uuid
		WHERE f.allocated AND f.instance_uuid = v.instance_uuid AND `+cond+` ORDER BY f.id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Port
	for rows.Next() {
		var p Port
		var addr string
		if err := rows.Scan(&p.ID, &p.UUID, &p.MAC, &p.InstanceUUID, &p.NetworkID, &p.Device,
			&p.Address.ID, &addr, &p.Address.NetworkID, &p.Hostname, &p.ProjectID, &p.Host); err != nil {
			return nil, err
		}
		p.Address.Address = parseAddr(addr)
		p.Address.InstanceUUID, p.Address.VIFID, p.Address.Allocated = p.InstanceUUID, p.ID, true
		out = append(out, p)
	}
	return out, rows.Err()
}

// InstancePassword returns the password the instance's guest posted, ""
// when none.
func (t *Tx) InstancePassword(ctx context.Context, uuid string) (string, error) {
	var pw string
	err := t.QueryRow(ctx, `SELECT password FROM instance_passwords WHERE instance_uuid = ?`, uuid).Scan(&pw)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return pw, err
}

// SetInstancePassword stores the password unless the instance has one
// (model.ErrConflict).
func (t *Tx) SetInstancePassword(ctx context.Context, uuid, password string) error {
	res, err := t.Exec(ctx, `INSERT INTO instance_passwords (instance_uuid, password, created_at) VALUES (?, ?, ?)
		ON CONFLICT (instance_uuid) DO NOTHING`, uuid, password, Now())
	if err != nil {
		if IsForeignKeyViolation(err) {
			return model.Errorf(model.ErrNotFound, "instance %s not found", uuid)
		}
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return model.Errorf(model.ErrConflict, "instance %s already has a password", uuid)
	}
	return nil
}

const changeCounterQuery = `SELECT COALESCE(SUM(revision), 0) FROM hosts`

// ChangeCounter returns the sum of every host's revision. Every change of
// any host's desired state bumps a revision by one, and host rows are
// never deleted, so the counter moves on every such change and never
// returns to an earlier value: equal counters mean no change in between.
func (s *Store) ChangeCounter(ctx context.Context) (int64, error) {
	var n int64
	q := s.Rebind(changeCounterQuery)
	var err error
	if st := s.prepared(q); st != nil {
		err = st.QueryRowContext(ctx).Scan(&n)
	} else {
		err = s.db.QueryRowContext(ctx, q).Scan(&n)
	}
	return n, err
}

// ChangeCounter is Store.ChangeCounter inside the transaction.
func (t *Tx) ChangeCounter(ctx context.Context) (int64, error) {
	var n int64
	err := t.QueryRow(ctx, changeCounterQuery).Scan(&n)
	return n, err
}
