package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"novanet/internal/model"
)

const networkCols = `id, uuid, label, kind, cidr, gateway, broadcast, dhcp_start, dns1, dns2,
	bridge, bridge_interface, vlan, multi_host, project_id, host, mtu, created_at`

type scanner interface{ Scan(...any) error }

func scanNetwork(r scanner) (model.Network, error) {
	var n model.Network
	var kind, cidr, gw, bc, ds, d1, d2 string
	var created int64
	err := r.Scan(&n.ID, &n.UUID, &n.Label, &kind, &cidr, &gw, &bc, &ds, &d1, &d2,
		&n.Bridge, &n.BridgeInterface, &n.VLAN, &n.MultiHost, &n.ProjectID, &n.Host, &n.MTU, &created)
	if err != nil {
		return n, err
	}
	n.Kind = model.ManagerKind(kind)
	n.CIDR, _ = netip.ParsePrefix(cidr)
	n.Gateway = parseAddr(gw)
	n.Broadcast = parseAddr(bc)
	n.DHCPStart = parseAddr(ds)
	n.DNS1 = parseAddr(d1)
	n.DNS2 = parseAddr(d2)
	n.CreatedAt = fromMicros(created)
	return n, nil
}

func parseAddr(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// InsertNetwork stores n (ID and CreatedAt are set by the store) and
// returns it as stored.
func (t *Tx) InsertNetwork(ctx context.Context, n model.Network) (model.Network, error) {
	if n.CreatedAt.IsZero() {
		n.CreatedAt = fromMicros(Now())
	}
	err := t.QueryRow(ctx, `INSERT INTO networks (uuid, label, kind, cidr, netmask, gateway, broadcast, dhcp_start,
		dns1, dns2, bridge, bridge_interface, vlan, multi_host, project_id, host, mtu, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		n.UUID, n.Label, string(n.Kind), n.CIDR.String(), n.Netmask().String(), addrString(n.Gateway),
		addrString(n.Broadcast), addrString(n.DHCPStart), addrString(n.DNS1), addrString(n.DNS2),
		n.Bridge, n.BridgeInterface, n.VLAN, n.MultiHost, n.ProjectID, n.Host, n.MTU, toMicros(n.CreatedAt)).Scan(&n.ID)
	if err != nil {
		return n, fmt.Errorf("insert network %q: %w", n.Label, err)
	}
	n.CreatedAt = fromMicros(toMicros(n.CreatedAt))
	return n, nil
}

// ListNetworks returns every network ordered by id.
func (t *Tx) ListNetworks(ctx context.Context) ([]model.Network, error) {
	rows, err := t.Query(ctx, `SELECT `+networkCols+` FROM networks ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	defer rows.Close()
	var out []model.Network
	for rows.Next() {
		n, err := scanNetwork(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// NetworkByID returns the network with the id, or a model.ErrNotFound.
func (t *Tx) NetworkByID(ctx context.Context, id int64) (model.Network, error) {
	n, err := scanNetwork(t.QueryRow(ctx, `SELECT `+networkCols+` FROM networks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return n, model.Errorf(model.ErrNotFound, "network %d not found", id)
	}
	return n, err
}

// FindNetwork resolves a numeric id, uuid or label.
func (t *Tx) FindNetwork(ctx context.Context, ref string) (model.Network, error) {
	ref = strings.TrimSpace(ref)
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		n, err := t.NetworkByID(ctx, id)
		if err == nil || !model.IsKind(err, model.ErrNotFound) {
			return n, err
		}
	}
	n, err := scanNetwork(t.QueryRow(ctx, `SELECT `+networkCols+` FROM networks WHERE uuid = ? OR label = ? ORDER BY id LIMIT 1`, ref, ref))
	if errors.Is(err, sql.ErrNoRows) {
		return n, model.Errorf(model.ErrNotFound, "network %q not found: give its id, uuid or label (see 'novanet network list')", ref)
	}
	return n, err
}

// NetworkUsage counts the addresses of a network held by instances or hosts.
func (t *Tx) NetworkUsage(ctx context.Context, id int64) (int, error) {
	var n int
	err := t.QueryRow(ctx, `SELECT COUNT(*) FROM fixed_ips WHERE network_id = ?
		AND (allocated OR instance_uuid IS NOT NULL OR host IS NOT NULL)`, id).Scan(&n)
	return n, err
}

// DeleteNetwork removes the network, its addresses and pending releases.
func (t *Tx) DeleteNetwork(ctx context.Context, id int64) error {
	if _, err := t.Exec(ctx, `DELETE FROM virtual_interfaces WHERE network_id = ?`, id); err != nil {
		return err
	}
	if _, err := t.Exec(ctx, `DELETE FROM fixed_ips WHERE network_id = ?`, id); err != nil {
		return err
	}
	if _, err := t.Exec(ctx, `DELETE FROM dhcp_releases WHERE network_id = ?`, id); err != nil {
		return err
	}
	_, err := t.Exec(ctx, `DELETE FROM networks WHERE id = ?`, id)
	return err
}

// InsertFixedIPs creates one row per address of the network, reserving
// those for which reserved returns true. Rows go in multi-row batches so
// a /16 takes a fraction of a second.
func (t *Tx) InsertFixedIPs(ctx context.Context, networkID int64, prefix netip.Prefix, reserved func(netip.Addr) bool) error {
	const batch = 500 // 4 parameters each: below SQLite's and pgx's limits
	now := Now()
	args := make([]any, 0, batch*4)
	var q strings.Builder
	flush := func(n int) error {
		if n == 0 {
			return nil
		}
		q.Reset()
		q.WriteString(`INSERT INTO fixed_ips (address, network_id, reserved, updated_at) VALUES `)
		for i := 0; i < n; i++ {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?, ?, ?, ?)")
		}
		if _, err := t.Exec(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("insert fixed ips of network %d: %w", networkID, err)
		}
		args = args[:0]
		return nil
	}
	n := 0
	for a := prefix.Masked().Addr(); a.IsValid() && prefix.Contains(a); a = a.Next() {
		args = append(args, a.String(), networkID, reserved(a), now)
		n++
		if n == batch {
			if err := flush(n); err != nil {
				return err
			}
			n = 0
		}
	}
	return flush(n)
}
