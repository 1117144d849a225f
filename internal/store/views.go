package store

import (
	"context"

	"novanet/internal/model"
)

// FixedIPRows lists fixed addresses with their network, instance and MAC,
// by network and address id: every one, those of one network (networkID
// > 0), and only the in-use ones (allocated, leased, reserved or a
// host's) unless all.
func (t *Tx) FixedIPRows(ctx context.Context, networkID int64, all, leasedOnly bool) ([]model.FixedIPRow, error) {
	q := `SELECT f.address, n.label, n.bridge, COALESCE(f.instance_uuid, ''), COALESCE(i.hostname, ''),
		COALESCE(i.host, f.host, ''), CASE WHEN n.multi_host THEN COALESCE(i.host, f.host, '') ELSE n.host END,
		COALESCE(v.mac, ''), f.allocated, f.leased, f.reserved
		FROM fixed_ips f JOIN networks n ON n.id = f.network_id
		LEFT JOIN instances i ON i.uuid = f.instance_uuid
		LEFT JOIN virtual_interfaces v ON v.id = f.virtual_interface_id
		WHERE (? = 0 OR f.network_id = ?)`
	switch {
	case leasedOnly:
		q += ` AND f.leased`
	case !all:
		q += ` AND (f.allocated OR f.leased OR f.reserved OR f.instance_uuid IS NOT NULL OR f.host IS NOT NULL)`
	}
	rows, err := t.Query(ctx, q+` ORDER BY f.network_id, f.id`, networkID, networkID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.FixedIPRow
	for rows.Next() {
		var r model.FixedIPRow
		var addr string
		if err := rows.Scan(&addr, &r.Network, &r.Bridge, &r.InstanceUUID, &r.Hostname, &r.Host, &r.DHCPHost,
			&r.MAC, &r.Allocated, &r.Leased, &r.Reserved); err != nil {
			return nil, err
		}
		r.Address = parseAddr(addr)
		out = append(out, r)
	}
	return out, rows.Err()
}

// AddressUsage counts free, used and reserved fixed addresses per network
// and free and allocated floating addresses per pool.
func (t *Tx) AddressUsage(ctx context.Context) ([]model.AddressUsage, error) {
	var out []model.AddressUsage
	rows, err := t.Query(ctx, `SELECT n.label, n.bridge,
		SUM(CASE WHEN f.reserved THEN 1 ELSE 0 END),
		SUM(CASE WHEN NOT f.reserved AND (f.allocated OR f.leased OR f.instance_uuid IS NOT NULL OR f.host IS NOT NULL) THEN 1 ELSE 0 END),
		COUNT(f.id)
		FROM networks n LEFT JOIN fixed_ips f ON f.network_id = n.id GROUP BY n.id, n.label, n.bridge ORDER BY n.id`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var u model.AddressUsage
		var reserved, used, total int64
		if err := rows.Scan(&u.Network, &u.Bridge, &reserved, &used, &total); err != nil {
			rows.Close()
			return nil, err
		}
		u.Reserved, u.Used, u.Free = int(reserved), int(used), int(total-reserved-used)
		out = append(out, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	frows, err := t.Query(ctx, `SELECT pool, SUM(CASE WHEN project_id IS NULL OR project_id = '' THEN 1 ELSE 0 END), COUNT(*)
		FROM floating_ips GROUP BY pool ORDER BY pool`)
	if err != nil {
		return nil, err
	}
	defer frows.Close()
	for frows.Next() {
		var u model.AddressUsage
		var free, total int64
		if err := frows.Scan(&u.Pool, &free, &total); err != nil {
			return nil, err
		}
		u.Free, u.Used = int(free), int(total-free)
		out = append(out, u)
	}
	return out, frows.Err()
}
