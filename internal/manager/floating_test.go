package manager_test

import (
	"context"
	"testing"

	"novanet/internal/manager"
	"novanet/internal/model"
	"novanet/internal/store"
)

// floatingOf returns the row of addr as an admin sees it.
func floatingOf(t *testing.T, m *manager.Manager, addr string) model.FloatingIP {
	t.Helper()
	all, err := m.ListFloatingIPs(context.Background(), model.Scope{Admin: true}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if f.Address.String() == addr {
			return f
		}
	}
	t.Fatalf("no floating ip %s in %+v", addr, all)
	return model.FloatingIP{}
}

// auto_assign_floating_ip: boot takes one from the default pool and
// associates it (the NAT host's state lists it, its revision moves);
// delete releases it to the pool. A floating IP the project associated by
// hand is only disassociated at delete, and stays the project's.
func TestAutoAssignFloatingIP(t *testing.T) {
	ctx := context.Background()
	for _, multi := range []bool{false, true} {
		t.Run(map[bool]string{false: "single-host", true: "multi-host"}[multi], func(t *testing.T) { autoAssign(t, ctx, multi) })
	}
}

func autoAssign(t *testing.T, ctx context.Context, multi bool) {
	eachEngine(t, func(t *testing.T, st *store.Store) {
		m := newManager(t, st, func(o *manager.Options) { o.AutoAssignFloatingIP = true })
		mustNetwork(t, m, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100", MultiHost: new(multi)})
		if _, err := m.CreateFloatingRange(ctx, model.FloatingRangeRequest{IPRange: "203.0.113.0/30"}); err != nil {
			t.Fatal(err)
		}
		natHost := "net1"
		if multi {
			natHost = "c1"
		}
		p := model.Scope{ProjectID: "p"}
		before, _ := m.HostState(ctx, natHost)
		a, err := m.BootInstance(ctx, p, model.BootRequest{Hostname: "vm1", Host: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(a.FloatingIPs) != 1 || !a.FloatingIPs[0].AutoAssigned || a.FloatingIPs[0].ProjectID != "p" {
			t.Fatalf("boot detail floating %+v, want one auto-assigned to p", a.FloatingIPs)
		}
		auto := a.FloatingIPs[0].Address
		hs, _ := m.HostState(ctx, natHost)
		if hs.Revision <= before.Revision || len(hs.FloatingIPs) != 1 || hs.FloatingIPs[0].Address != auto || hs.FloatingIPs[0].FixedAddress != a.FixedIPs[0].Address {
			t.Fatalf("%s state rev %d->%d floating %+v", natHost, before.Revision, hs.Revision, hs.FloatingIPs)
		}

		// A second floating IP, allocated and associated by the project.
		manual, err := m.AllocateFloatingIP(ctx, p, "")
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.BootInstance(ctx, p, model.BootRequest{Hostname: "vm2", Host: "c1"})
		if err != nil {
			t.Fatal(err) // the pool is empty: the boot still succeeds
		}
		if len(b.FloatingIPs) != 0 {
			t.Fatalf("boot with an empty pool got %+v", b.FloatingIPs)
		}
		if err := m.AssociateFloatingIP(ctx, p, manual.Address, b.UUID, b.FixedIPs[0].Address); err != nil {
			t.Fatal(err)
		}

		mid, _ := m.HostState(ctx, natHost)
		if err := m.DeleteInstance(ctx, p, a.UUID); err != nil {
			t.Fatal(err)
		}
		if f := floatingOf(t, m, auto.String()); f.ProjectID != "" || f.FixedAddress.IsValid() || f.Host != "" || f.AutoAssigned {
			t.Errorf("auto-assigned %s after delete: %+v, want back in the pool", auto, f)
		}
		hs, _ = m.HostState(ctx, natHost)
		if hs.Revision <= mid.Revision || len(hs.FloatingIPs) != 1 || hs.FloatingIPs[0].Address != manual.Address {
			t.Errorf("after delete %s rev %d->%d floating %+v", natHost, mid.Revision, hs.Revision, hs.FloatingIPs)
		}
		if err := m.DeleteInstance(ctx, p, b.UUID); err != nil {
			t.Fatal(err)
		}
		if f := floatingOf(t, m, manual.Address.String()); f.ProjectID != "p" || f.FixedAddress.IsValid() || f.AutoAssigned {
			t.Errorf("hand-associated %s after delete: %+v, want still p's, disassociated", manual.Address, f)
		}
		if hs, _ = m.HostState(ctx, natHost); len(hs.FloatingIPs) != 0 {
			t.Errorf("%s still NATs %+v", natHost, hs.FloatingIPs)
		}

		// Release returns it to the pool: another project can have it.
		if err := m.ReleaseFloatingIP(ctx, p, manual.Address.String()); err != nil {
			t.Fatal(err)
		}
		if f := floatingOf(t, m, manual.Address.String()); f.ProjectID != "" {
			t.Errorf("released %s: %+v", manual.Address, f)
		}
		q := model.Scope{ProjectID: "q"}
		got := map[string]bool{}
		for range 2 {
			f, err := m.AllocateFloatingIP(ctx, q, "")
			if err != nil {
				t.Fatalf("allocating the pool's two addresses again: %v", err)
			}
			got[f.Address.String()] = true
		}
		if !got[auto.String()] || !got[manual.Address.String()] {
			t.Errorf("project q got %v, want both released addresses", got)
		}
	})
}

// Releasing an associated floating IP also ends its NAT on the host.
func TestReleaseAssociatedFloatingIP(t *testing.T) {
	ctx := context.Background()
	eachEngine(t, func(t *testing.T, st *store.Store) {
		m := newManager(t, st, nil)
		mustNetwork(t, m, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100"})
		if _, err := m.CreateFloatingRange(ctx, model.FloatingRangeRequest{IPRange: "203.0.113.7"}); err != nil {
			t.Fatal(err)
		}
		p := model.Scope{ProjectID: "p"}
		a, err := m.BootInstance(ctx, p, model.BootRequest{Hostname: "vm1", Host: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		f, err := m.AllocateFloatingIP(ctx, p, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := m.AssociateFloatingIP(ctx, p, f.Address, a.UUID, a.FixedIPs[0].Address); err != nil {
			t.Fatal(err)
		}
		before, _ := m.HostState(ctx, "net1")
		if err := m.ReleaseFloatingIP(ctx, p, f.Address.String()); err != nil {
			t.Fatal(err)
		}
		hs, _ := m.HostState(ctx, "net1")
		if hs.Revision <= before.Revision || len(hs.FloatingIPs) != 0 {
			t.Errorf("after release: rev %d->%d floating %+v", before.Revision, hs.Revision, hs.FloatingIPs)
		}
		if got := floatingOf(t, m, f.Address.String()); got.ProjectID != "" || got.FixedAddress.IsValid() || got.Host != "" {
			t.Errorf("released: %+v", got)
		}
	})
}
