package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"

	"novanet/internal/model"
)

const instanceCols = `uuid, hostname, project_id, host, user_data, key_name, key_data, created_at`

func scanInstance(r scanner) (model.Instance, error) {
	var i model.Instance
	var created int64
	err := r.Scan(&i.UUID, &i.Hostname, &i.ProjectID, &i.Host, &i.UserData, &i.KeyName, &i.KeyData, &created)
	i.CreatedAt = fromMicros(created)
	return i, err
}

// InsertInstance stores an instance (without its groups).
func (t *Tx) InsertInstance(ctx context.Context, i model.Instance) error {
	_, err := t.Exec(ctx, `INSERT INTO instances (`+instanceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		i.UUID, i.Hostname, i.ProjectID, i.Host, i.UserData, i.KeyName, i.KeyData, toMicros(i.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert instance %s: %w", i.UUID, err)
	}
	return nil
}

// Instance returns one instance with its group ids, or model.ErrNotFound.
func (t *Tx) Instance(ctx context.Context, uuid string) (model.Instance, error) {
	i, err := scanInstance(t.QueryRow(ctx, `SELECT `+instanceCols+` FROM instances WHERE uuid = ?`, uuid))
	if errors.Is(err, sql.ErrNoRows) {
		return i, model.Errorf(model.ErrNotFound, "instance %s not found", uuid)
	}
	if err != nil {
		return i, err
	}
	i.SecurityGroups, err = t.InstanceGroupIDs(ctx, uuid)
	return i, err
}

// ListInstances returns instances of a project ("" = all) or of a host,
// ordered by creation then uuid, with their group ids.
func (t *Tx) ListInstances(ctx context.Context, projectID, host string) ([]model.Instance, error) {
	return t.listInstances(ctx, projectID, host, nil, 0)
}

// ListInstancesPage returns up to limit instances of a project ("" = all)
// that come after the instance after (nil = from the start) in creation
// order.
func (t *Tx) ListInstancesPage(ctx context.Context, projectID string, after *model.Instance, limit int) ([]model.Instance, error) {
	return t.listInstances(ctx, projectID, "", after, limit)
}

func (t *Tx) listInstances(ctx context.Context, projectID, host string, after *model.Instance, limit int) ([]model.Instance, error) {
	q := `SELECT ` + instanceCols + ` FROM instances WHERE 1=1`
	var args []any
	if after != nil {
		q += ` AND (created_at > ? OR (created_at = ? AND uuid > ?))`
		args = append(args, toMicros(after.CreatedAt), toMicros(after.CreatedAt), after.UUID)
	}
	if projectID != "" {
		q += ` AND project_id = ?`
		args = append(args, projectID)
	}
	if host != "" {
		q += ` AND host = ?`
		args = append(args, host)
	}
	q += ` ORDER BY created_at, uuid`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := t.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	var out []model.Instance
	for rows.Next() {
		i, err := scanInstance(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, i)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for k := range out {
		if out[k].SecurityGroups, err = t.InstanceGroupIDs(ctx, out[k].UUID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DeleteInstance removes the instance row and its group memberships.
func (t *Tx) DeleteInstance(ctx context.Context, uuid string) error {
	if _, err := t.Exec(ctx, `DELETE FROM instance_security_groups WHERE instance_uuid = ?`, uuid); err != nil {
		return err
	}
	_, err := t.Exec(ctx, `DELETE FROM instances WHERE uuid = ?`, uuid)
	return err
}

// InstanceGroupIDs returns the instance's group ids in ascending order.
func (t *Tx) InstanceGroupIDs(ctx context.Context, uuid string) ([]int64, error) {
	return t.int64s(ctx, `SELECT group_id FROM instance_security_groups WHERE instance_uuid = ? ORDER BY group_id`, uuid)
}

// AddInstanceGroup makes the instance a member of the group (idempotent).
func (t *Tx) AddInstanceGroup(ctx context.Context, uuid string, groupID int64) error {
	_, err := t.Exec(ctx, `INSERT INTO instance_security_groups (instance_uuid, group_id) VALUES (?, ?)
		ON CONFLICT DO NOTHING`, uuid, groupID)
	return err
}

// RemoveInstanceGroup removes a membership; it reports whether one existed.
func (t *Tx) RemoveInstanceGroup(ctx context.Context, uuid string, groupID int64) (bool, error) {
	res, err := t.Exec(ctx, `DELETE FROM instance_security_groups WHERE instance_uuid = ? AND group_id = ?`, uuid, groupID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (t *Tx) int64s(ctx context.Context, q string, args ...any) ([]int64, error) {
	rows, err := t.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (t *Tx) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := t.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

const vifCols = `id, uuid, mac, instance_uuid, network_id, device`

func scanVIF(r scanner) (model.VIF, error) {
	var v model.VIF
	err := r.Scan(&v.ID, &v.UUID, &v.MAC, &v.InstanceUUID, &v.NetworkID, &v.Device)
	return v, err
}

// InsertVIF stores a VIF unless its MAC (or uuid) is taken, in which case
// ok is false and the transaction stays usable (ON CONFLICT DO NOTHING:
// a failed INSERT would abort a PostgreSQL transaction). dhcpHost is the
// host whose dnsmasq serves it.
func (t *Tx) InsertVIF(ctx context.Context, v model.VIF, dhcpHost string) (model.VIF, bool, error) {
	err := t.QueryRow(ctx, `INSERT INTO virtual_interfaces (uuid, mac, instance_uuid, network_id, device, created_at, dhcp_host)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`,
		v.UUID, v.MAC, v.InstanceUUID, v.NetworkID, v.Device, Now(), dhcpHost).Scan(&v.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("insert vif %s: %w", v.MAC, err)
	}
	return v, true, nil
}

// VIFsByInstance returns the instance's VIFs by id.
func (t *Tx) VIFsByInstance(ctx context.Context, uuid string) ([]model.VIF, error) {
	return t.vifs(ctx, `instance_uuid = ?`, uuid)
}

// VIFByID returns one VIF.
func (t *Tx) VIFByID(ctx context.Context, id int64) (model.VIF, error) {
	v, err := scanVIF(t.QueryRow(ctx, `SELECT `+vifCols+` FROM virtual_interfaces WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, model.Errorf(model.ErrNotFound, "virtual interface %d not found", id)
	}
	return v, err
}

// VIFDHCPHost returns the host whose dnsmasq serves the VIF.
func (t *Tx) VIFDHCPHost(ctx context.Context, id int64) (string, error) {
	var h string
	err := t.QueryRow(ctx, `SELECT dhcp_host FROM virtual_interfaces WHERE id = ?`, id).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", model.Errorf(model.ErrNotFound, "virtual interface %d not found", id)
	}
	return h, err
}

func (t *Tx) vifs(ctx context.Context, where string, args ...any) ([]model.VIF, error) {
	rows, err := t.Query(ctx, `SELECT `+vifCols+` FROM virtual_interfaces WHERE `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.VIF
	for rows.Next() {
		v, err := scanVIF(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Port is one instance VIF with its address, as host state needs it.
type Port struct {
	model.VIF
	Address   model.FixedIP
	Hostname  string
	ProjectID string
	Host      string
}

// Ports returns allocated instance VIFs joined with their address and
// instance, filtered by network (0 = any) and instance host ("" = any),
// ordered by address row.
func (t *Tx) Ports(ctx context.Context, networkID int64, host string) ([]Port, error) {
	q := `SELECT v.id, v.uuid, v.mac, v.instance_uuid, v.network_id, v.device,
		f.id, f.address, f.network_id, f.instance_uuid, f.virtual_interface_id, f.host, f.allocated, f.leased, f.reserved, f.updated_at,
		i.hostname, i.project_id, i.host
		FROM fixed_ips f JOIN virtual_interfaces v ON v.id = f.virtual_interface_id JOIN instances i ON i.uuid = v.instance_uuid
		WHERE f.allocated`
	var args []any
	if networkID != 0 {
		q += ` AND f.network_id = ?`
		args = append(args, networkID)
	}
	if host != "" {
		q += ` AND i.host = ?`
		args = append(args, host)
	}
	rows, err := t.Query(ctx, q+` ORDER BY f.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list ports: %w", err)
	}
	defer rows.Close()
	var out []Port
	for rows.Next() {
		var p Port
		var addr string
		var inst, fhost sql.NullString
		var vif sql.NullInt64
		var upd int64
		if err := rows.Scan(&p.ID, &p.UUID, &p.MAC, &p.InstanceUUID, &p.NetworkID, &p.Device,
			&p.Address.ID, &addr, &p.Address.NetworkID, &inst, &vif, &fhost, &p.Address.Allocated, &p.Address.Leased, &p.Address.Reserved, &upd,
			&p.Hostname, &p.ProjectID, &p.Host); err != nil {
			return nil, err
		}
		p.Address.Address = parseAddr(addr)
		p.Address.InstanceUUID = inst.String
		p.Address.VIFID = vif.Int64
		p.Address.Host = fhost.String
		p.Address.UpdatedAt = fromMicros(upd)
		out = append(out, p)
	}
	return out, rows.Err()
}

// LeaseRow is an address dnsmasq may believe it leased.
type LeaseRow struct {
	Address  netip.Addr
	MAC      string
	Hostname string // "" when the instance is gone
	Host     string // the instance's host, "" when the instance is gone
}

// LeaseRows returns the network's allocated or leased addresses that have
// a VIF, in address-row order.
func (t *Tx) LeaseRows(ctx context.Context, networkID int64) ([]LeaseRow, error) {
	rows, err := t.Query(ctx, `SELECT f.address, v.mac, i.hostname, i.host
		FROM fixed_ips f JOIN virtual_interfaces v ON v.id = f.virtual_interface_id LEFT JOIN instances i ON i.uuid = f.instance_uuid
		WHERE f.network_id = ? AND (f.allocated OR f.leased) ORDER BY f.id`, networkID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LeaseRow
	for rows.Next() {
		var r LeaseRow
		var addr string
		var hn, h sql.NullString
		if err := rows.Scan(&addr, &r.MAC, &hn, &h); err != nil {
			return nil, err
		}
		r.Address, r.Hostname, r.Host = parseAddr(addr), hn.String, h.String
		out = append(out, r)
	}
	return out, rows.Err()
}
