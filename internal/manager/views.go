package manager

import (
	"context"

	"novanet/internal/model"
	"novanet/internal/store"
)

// ListFixedIPs lists fixed addresses (admin): of the network named by
// networkRef (id, uuid or label; "" = every network), the in-use ones
// unless all, only the leased ones with leasedOnly.
func (m *Manager) ListFixedIPs(ctx context.Context, networkRef string, all, leasedOnly bool) ([]model.FixedIPRow, error) {
	var id int64
	if networkRef != "" {
		n, err := m.GetNetwork(ctx, model.Scope{Admin: true}, networkRef)
		if err != nil {
			return nil, err
		}
		id = n.ID
	}
	var out []model.FixedIPRow
	err := m.view(ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.FixedIPRows(ctx, id, all, leasedOnly)
		return err
	})
	return out, err
}

// AddressUsage counts addresses per network and floating pool (metrics).
func (m *Manager) AddressUsage(ctx context.Context) ([]model.AddressUsage, error) {
	var out []model.AddressUsage
	err := m.view(ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.AddressUsage(ctx)
		return err
	})
	return out, err
}
