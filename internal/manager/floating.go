package manager

import (
	"context"
	"net/netip"
	"strconv"
	"strings"

	"novanet/internal/model"
	"novanet/internal/store"
)

// CreateFloatingRange is nova-manage floating create.
func (m *Manager) CreateFloatingRange(ctx context.Context, req model.FloatingRangeRequest) ([]model.FloatingIP, error) {
	if err := req.Check(); err != nil {
		return nil, err
	}
	lo, hi, p, _ := model.ParseFloatingRange("ip_range", req.IPRange)
	pool := strings.TrimSpace(req.Pool)
	if pool == "" {
		pool = m.opts.DefaultFloatingPool
	}
	iface := strings.TrimSpace(req.Interface)
	if iface == "" {
		iface = m.opts.PublicInterface
	}
	var addrs []netip.Addr
	for a := lo; ; a = a.Next() {
		addrs = append(addrs, a)
		if a == hi {
			break
		}
	}
	var out []model.FloatingIP
	err := m.update(ctx, func(tx *store.Tx, c *change) error {
		if err := tx.LockName(ctx, "address-space"); err != nil {
			return err
		}
		nets, err := tx.ListNetworks(ctx)
		if err != nil {
			return err
		}
		for _, n := range nets {
			if n.CIDR.Overlaps(p) {
				return model.Errorf(model.ErrConflict, "floating range %s overlaps fixed network %q (%s)", req.IPRange, n.Label, n.CIDR)
			}
		}
		if k, err := tx.CountFloatings(ctx, store.FloatingFilter{From: lo, To: hi}); err != nil {
			return err
		} else if k > 0 {
			return model.Errorf(model.ErrConflict, "%d addresses of %s are already floating ips: delete them or choose another range", k, req.IPRange)
		}
		if err := tx.InsertFloatingIPs(ctx, addrs, pool, iface); err != nil {
			return err
		}
		fls, err := tx.ListFloatings(ctx, store.FloatingFilter{From: lo, To: hi})
		out = out[:0]
		for _, f := range fls {
			out = append(out, f.FloatingIP)
		}
		return err
	})
	return out, err
}

// DeleteFloatingRange removes a range none of which is allocated.
func (m *Manager) DeleteFloatingRange(ctx context.Context, ipRange string) (int, error) {
	lo, hi, _, err := model.ParseFloatingRange("ip_range", ipRange)
	if err != nil {
		return 0, err
	}
	var n int
	err = m.update(ctx, func(tx *store.Tx, c *change) error {
		if err := tx.LockFloatingRange(ctx, lo, hi); err != nil {
			return err
		}
		used, err := tx.CountFloatings(ctx, store.FloatingFilter{From: lo, To: hi, Allocated: true})
		if err != nil {
			return err
		}
		if used > 0 {
			return model.Errorf(model.ErrConflict, "%d floating ips of %s are allocated to projects: release them first", used, ipRange)
		}
		n, err = tx.DeleteFloatingInRange(ctx, lo, hi)
		if err == nil && n == 0 {
			return model.Errorf(model.ErrNotFound, "no floating ips in %s", ipRange)
		}
		return err
	})
	return n, err
}

// ListFloatingIPs lists the scope's project's floating IPs, or all (admin).
func (m *Manager) ListFloatingIPs(ctx context.Context, scope model.Scope, all bool) ([]model.FloatingIP, error) {
	out := []model.FloatingIP{}
	err := m.view(ctx, func(tx *store.Tx) error {
		var fls []store.Floating
		var err error
		switch {
		case all && scope.Admin:
			fls, err = tx.ListFloatings(ctx, store.FloatingFilter{})
		case scope.ProjectID != "":
			fls, err = tx.ListFloatings(ctx, store.FloatingFilter{ProjectID: scope.ProjectID})
		}
		out = out[:0]
		for _, f := range fls {
			out = append(out, f.FloatingIP)
		}
		return err
	})
	return out, err
}

// findFloating resolves ref; lock takes the row's lock for a change.
func findFloating(ctx context.Context, tx *store.Tx, scope model.Scope, ref string, lock bool) (store.Floating, error) {
	var f store.Floating
	var err error
	if a, perr := netip.ParseAddr(strings.TrimSpace(ref)); perr == nil {
		if lock {
			f, err = tx.LockFloatingByAddress(ctx, a)
		} else {
			f, err = tx.FloatingByAddress(ctx, a)
		}
	} else if id, perr := strconv.ParseInt(strings.TrimSpace(ref), 10, 64); perr == nil {
		if lock {
			f, err = tx.LockFloatingByID(ctx, id)
		} else {
			f, err = tx.FloatingByID(ctx, id)
		}
	} else {
		return f, model.Errorf(model.ErrInvalid, "floating ip %q is neither an id nor an address", ref)
	}
	if err != nil {
		return f, err
	}
	if !(scope.Admin || (f.ProjectID != "" && f.ProjectID == scope.ProjectID)) {
		return f, model.Errorf(model.ErrNotFound, "floating ip %s not found", ref)
	}
	return f, nil
}

// GetFloatingIP returns one floating IP by id or address.
func (m *Manager) GetFloatingIP(ctx context.Context, scope model.Scope, ref string) (model.FloatingIP, error) {
	var f store.Floating
	err := m.view(ctx, func(tx *store.Tx) error {
		var err error
		f, err = findFloating(ctx, tx, scope, ref, false)
		return err
	})
	return f.FloatingIP, err
}

// AllocateFloatingIP gives the scope's project a floating IP from pool.
func (m *Manager) AllocateFloatingIP(ctx context.Context, scope model.Scope, pool string) (model.FloatingIP, error) {
	if scope.ProjectID == "" {
		return model.FloatingIP{}, model.Errorf(model.ErrInvalid, "no project in the caller's scope to own the floating ip")
	}
	if err := model.CheckName("project_id", scope.ProjectID, model.MaxNameBytes); err != nil {
		return model.FloatingIP{}, err
	}
	if pool == "" {
		pool = m.opts.DefaultFloatingPool
	}
	var f store.Floating
	err := m.update(ctx, func(tx *store.Tx, c *change) error {
		// Count and allocate under the project's lock: without it,
		// concurrent allocations on PostgreSQL all count the same n.
		if err := tx.LockName(ctx, "project:"+scope.ProjectID); err != nil {
			return err
		}
		limit, err := quota(ctx, tx, scope.ProjectID, "floating_ips", m.opts.QuotaFloatingIPs)
		if err != nil {
			return err
		}
		if limit >= 0 {
			n, err := tx.CountProjectFloating(ctx, scope.ProjectID)
			if err != nil {
				return err
			}
			if n >= limit {
				return model.Errorf(model.ErrQuota, "project %s has %d floating ips, its quota is %d: release one first", scope.ProjectID, n, limit)
			}
		}
		f, err = tx.AllocateFloating(ctx, pool, scope.ProjectID, false)
		if store.IsNoFreeAddress(err) {
			pools, perr := tx.FloatingPools(ctx)
			if perr != nil {
				return perr
			}
			for _, p := range pools {
				if p == pool {
					return model.Errorf(model.ErrExhausted, "floating ip pool %q has no free addresses: ask an admin to add a range", pool)
				}
			}
			return model.Errorf(model.ErrNotFound, "floating ip pool %q does not exist (pools: %s)", pool, strings.Join(pools, ", "))
		}
		return err
	})
	return f.FloatingIP, err
}

// ReleaseFloatingIP returns a floating IP to its pool (disassociating it).
func (m *Manager) ReleaseFloatingIP(ctx context.Context, scope model.Scope, ref string) error {
	return m.update(ctx, func(tx *store.Tx, c *change) error {
		f, err := findFloating(ctx, tx, scope, ref, true)
		if err != nil {
			return err
		}
		if f.ProjectID == "" {
			return model.Errorf(model.ErrNotFound, "floating ip %s is not allocated", f.Address)
		}
		if err := c.floatingChanged(ctx, tx, f.Host, f.Address, f.FixedAddress); err != nil {
			return err
		}
		if err := c.bump(ctx, tx, f.Host); err != nil {
			return err
		}
		return tx.ReleaseFloating(ctx, f.ID)
	})
}

// AssociateFloatingIP binds a floating IP to an instance's fixed address.
func (m *Manager) AssociateFloatingIP(ctx context.Context, scope model.Scope, floating netip.Addr, instanceUUID string, fixed netip.Addr) error {
	return m.update(ctx, func(tx *store.Tx, c *change) error {
		// An unallocated floating IP is reported before a missing
		// instance, as it always was; the locked reads below decide.
		if f, err := tx.FloatingByAddress(ctx, floating); err != nil {
			return err
		} else if f.ProjectID == "" || !scope.Sees(f.ProjectID) {
			return model.Errorf(model.ErrNotFound, "floating ip %s is not allocated to project %s: allocate it first", floating, scope.ProjectID)
		}
		// The instance first, then the floating IP, each locked: a delete
		// of the instance (which locks it too) either finishes before,
		// and the instance is gone, or waits and then releases the
		// binding made here. Two associations of one floating IP queue
		// on its row, and the second sees the first's binding.
		inst, err := tx.LockInstance(ctx, instanceUUID)
		if err != nil {
			return err
		}
		if !scope.Sees(inst.ProjectID) {
			return model.Errorf(model.ErrNotFound, "instance %s not found", instanceUUID)
		}
		f, err := tx.LockFloatingByAddress(ctx, floating)
		if err != nil {
			return err
		}
		if f.ProjectID == "" || !scope.Sees(f.ProjectID) {
			return model.Errorf(model.ErrNotFound, "floating ip %s is not allocated to project %s: allocate it first", floating, scope.ProjectID)
		}
		if inst.ProjectID != f.ProjectID {
			return model.Errorf(model.ErrInvalid, "floating ip %s belongs to project %s, instance %s to %s", floating, f.ProjectID, instanceUUID, inst.ProjectID)
		}
		target, err := associationTarget(ctx, tx, instanceUUID, fixed)
		if err != nil {
			return err
		}
		if f.FixedIPID == target.ID {
			return nil
		}
		if f.FixedIPID != 0 {
			return model.Errorf(model.ErrConflict, "floating ip %s is associated with %s: disassociate it first", floating, f.FixedAddress)
		}
		n, err := tx.NetworkByID(ctx, target.NetworkID)
		if err != nil {
			return err
		}
		host := natHost(n, inst.Host)
		if err := c.floatingChanged(ctx, tx, host, f.Address, target.Address); err != nil {
			return err
		}
		if err := c.bump(ctx, tx, host); err != nil {
			return err
		}
		return tx.AssociateFloating(ctx, f.ID, target.ID, host)
	})
}

// associationTarget is the instance's allocated fixed address to NAT a
// floating IP to: the one named, else its first.
func associationTarget(ctx context.Context, tx *store.Tx, instanceUUID string, fixed netip.Addr) (model.FixedIP, error) {
	fixeds, err := tx.FixedIPsByInstance(ctx, instanceUUID)
	if err != nil {
		return model.FixedIP{}, err
	}
	for _, x := range fixeds {
		if x.Allocated && (!fixed.IsValid() || x.Address == fixed) {
			return x, nil
		}
	}
	if fixed.IsValid() {
		return model.FixedIP{}, model.Errorf(model.ErrInvalid, "instance %s has no fixed address %s", instanceUUID, fixed)
	}
	return model.FixedIP{}, model.Errorf(model.ErrInvalid, "instance %s has no fixed address to associate with", instanceUUID)
}

// DisassociateFloatingIP unbinds a floating IP (instanceUUID, if given,
// must be the one it is bound to).
func (m *Manager) DisassociateFloatingIP(ctx context.Context, scope model.Scope, floating netip.Addr, instanceUUID string) error {
	return m.update(ctx, func(tx *store.Tx, c *change) error {
		f, err := tx.LockFloatingByAddress(ctx, floating)
		if err != nil {
			return err
		}
		if f.ProjectID == "" || !scope.Sees(f.ProjectID) {
			return model.Errorf(model.ErrNotFound, "floating ip %s not found", floating)
		}
		if f.FixedIPID == 0 {
			return model.Errorf(model.ErrConflict, "floating ip %s is not associated", floating)
		}
		if instanceUUID != "" && f.InstanceUUID != instanceUUID {
			return model.Errorf(model.ErrConflict, "floating ip %s is associated with instance %s, not %s", floating, f.InstanceUUID, instanceUUID)
		}
		if err := c.floatingChanged(ctx, tx, f.Host, f.Address, f.FixedAddress); err != nil {
			return err
		}
		if err := c.bump(ctx, tx, f.Host); err != nil {
			return err
		}
		return tx.DisassociateFloating(ctx, f.ID)
	})
}

// ListFloatingPools lists pool names.
func (m *Manager) ListFloatingPools(ctx context.Context) ([]string, error) {
	out := []string{}
	err := m.view(ctx, func(tx *store.Tx) error {
		ps, err := tx.FloatingPools(ctx)
		out = append(out[:0], ps...)
		return err
	})
	return out, err
}
