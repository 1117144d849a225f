package manager_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"novanet/internal/manager"
	"novanet/internal/model"
	"novanet/internal/store"
)

func TestBootDeleteAndLeases(t *testing.T) {
	ctx := context.Background()
	eachEngine(t, func(t *testing.T, st *store.Store) {
		m := newManager(t, st, func(o *manager.Options) { o.ForceDHCPRelease = true })
		mustNetwork(t, m, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/29", Bridge: "br100"})
		p1 := model.Scope{ProjectID: "p1"}
		for _, c := range []struct {
			req  model.BootRequest
			kind model.ErrorKind
		}{
			{model.BootRequest{Hostname: "bad_name", Host: "c1"}, model.ErrInvalid},
			{model.BootRequest{Hostname: strings.Repeat("a", 64), Host: "c1"}, model.ErrInvalid},
			{model.BootRequest{Hostname: "vm", Host: ""}, model.ErrInvalid},
			{model.BootRequest{Hostname: "vm", Host: "c1", UUID: "not-a-uuid"}, model.ErrInvalid},
			{model.BootRequest{Hostname: "vm", Host: "c1", ProjectID: "p2"}, model.ErrForbidden},
			{model.BootRequest{Hostname: "vm", Host: "c1", Network: "nope"}, model.ErrNotFound}, // as reading it (issue 13, 15)
			{model.BootRequest{Hostname: "vm", Host: "c1", FixedAddress: netip.MustParseAddr("10.0.0.1")}, model.ErrInvalid},
			{model.BootRequest{Hostname: "vm", Host: "c1", FixedAddress: netip.MustParseAddr("10.9.0.1")}, model.ErrInvalid},
			{model.BootRequest{Hostname: "vm", Host: "c1", SecurityGroups: []string{"web"}}, model.ErrInvalid},
		} {
			before := dump(t, st)
			if _, err := m.BootInstance(ctx, p1, c.req); model.KindOf(err) != c.kind {
				t.Fatalf("boot %+v: %v, want kind %d", c.req, err, c.kind)
			}
			if dump(t, st) != before {
				t.Fatalf("rejected boot %+v changed the store", c.req)
			}
		}
		if _, err := m.BootInstance(ctx, admin, model.BootRequest{Hostname: "vm", Host: "c1"}); !model.IsKind(err, model.ErrInvalid) {
			t.Fatalf("admin without project: %v", err)
		}
		a, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "vm1", Host: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(a.FixedIPs) != 1 || a.FixedIPs[0].Address != netip.MustParseAddr("10.0.0.2") || len(a.VIFs) != 1 ||
			!strings.HasPrefix(a.VIFs[0].MAC, "fa:16:3e:") || len(a.VIFs[0].Device) != 14 || len(a.SecurityGroups) != 1 {
			t.Fatalf("boot detail %+v", a)
		}
		if _, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "vm", Host: "c1", UUID: a.UUID}); !model.IsKind(err, model.ErrConflict) {
			t.Fatalf("duplicate uuid: %v", err)
		}
		b, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "vm2", Host: "c1", FixedAddress: netip.MustParseAddr("10.0.0.5")})
		if err != nil || b.FixedIPs[0].Address != netip.MustParseAddr("10.0.0.5") {
			t.Fatalf("fixed address boot: %v %+v", err, b.FixedIPs)
		}
		if _, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "vm", Host: "c1", FixedAddress: netip.MustParseAddr("10.0.0.5")}); !model.IsKind(err, model.ErrConflict) {
			t.Fatalf("address in use: %v", err)
		}
		if _, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "vm3", Host: "c1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "vm4", Host: "c1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "vm5", Host: "c1"}); err != nil {
			t.Fatal(err)
		}
		_, err = m.BootInstance(ctx, p1, model.BootRequest{Hostname: "vm9", Host: "c1"})
		if !model.IsKind(err, model.ErrExhausted) || !strings.Contains(err.Error(), "10.0.0.0/29") {
			t.Fatalf("exhaustion: %v", err)
		}
		// Another project cannot see or delete p1's instance.
		if err := m.DeleteInstance(ctx, model.Scope{ProjectID: "p2"}, a.UUID); !model.IsKind(err, model.ErrNotFound) {
			t.Fatalf("cross-project delete: %v", err)
		}
		// A lease from the wrong MAC is refused; the right one marks leased.
		if err := m.RecordLease(ctx, model.LeaseEvent{Action: model.LeaseAdd, MAC: "fa:16:3e:00:00:00", Address: netip.MustParseAddr("10.0.0.2"), Host: "net1"}); !model.IsKind(err, model.ErrConflict) {
			t.Fatalf("mismatched lease: %v", err)
		}
		if err := m.RecordLease(ctx, model.LeaseEvent{Action: model.LeaseAdd, MAC: a.VIFs[0].MAC, Address: netip.MustParseAddr("10.0.0.2"), Host: "net1"}); err != nil {
			t.Fatal(err)
		}
		ls, err := m.Leases(ctx, "net1", "br100")
		if err != nil || len(ls) != 5 || ls[0].MAC != a.VIFs[0].MAC || ls[0].Hostname != "vm1" {
			t.Fatalf("leases %+v %v", ls, err)
		}
		// Leased + force_dhcp_release: freed at once, release queued for
		// the network host until dnsmasq reports the del.
		if err := m.DeleteInstance(ctx, p1, a.UUID); err != nil {
			t.Fatal(err)
		}
		hs, err := m.HostState(ctx, "net1")
		if err != nil {
			t.Fatal(err)
		}
		if r := hs.Networks[0].Releases; len(r) != 1 || r[0].MAC != a.VIFs[0].MAC || r[0].Address != netip.MustParseAddr("10.0.0.2") {
			t.Fatalf("releases %+v", r)
		}
		c, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "vm6", Host: "c1"})
		if err != nil || c.FixedIPs[0].Address != netip.MustParseAddr("10.0.0.2") {
			t.Fatalf("recycled address: %v %+v", err, c.FixedIPs)
		}
		// The old lease's del drops the release and leaves the new owner alone.
		if err := m.RecordLease(ctx, model.LeaseEvent{Action: model.LeaseDel, MAC: a.VIFs[0].MAC, Address: netip.MustParseAddr("10.0.0.2"), Host: "net1"}); err != nil {
			t.Fatal(err)
		}
		hs, _ = m.HostState(ctx, "net1")
		if len(hs.Networks[0].Releases) != 0 {
			t.Fatalf("release not dropped: %+v", hs.Networks[0].Releases)
		}
		if d, _ := m.GetInstance(ctx, p1, c.UUID); len(d.FixedIPs) != 1 || !d.FixedIPs[0].Allocated {
			t.Fatalf("new owner disturbed: %+v", d)
		}
		// Never leased: disassociated at once, no release.
		if err := m.DeleteInstance(ctx, p1, b.UUID); err != nil {
			t.Fatal(err)
		}
		f, _ := m.GetFixedIP(ctx, netip.MustParseAddr("10.0.0.5"))
		if f.InstanceUUID != "" || f.Allocated {
			t.Fatalf("not disassociated: %+v", f)
		}
	})
}

func TestDisassociateTimeout(t *testing.T) {
	ctx := context.Background()
	eachEngine(t, func(t *testing.T, st *store.Store) {
		m := newManager(t, st, func(o *manager.Options) { o.FixedIPDisassociateTimeout = 50 * time.Millisecond })
		mustNetwork(t, m, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/30", Bridge: "br100"})
		p1 := model.Scope{ProjectID: "p1"}
		a, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "vm1", Host: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.DeleteInstance(ctx, p1, a.UUID); err != nil {
			t.Fatal(err)
		}
		if _, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "vm2", Host: "c1"}); !model.IsKind(err, model.ErrExhausted) {
			t.Fatalf("address reused before the timeout: %v", err)
		}
		time.Sleep(80 * time.Millisecond)
		if err := m.Periodic(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "vm2", Host: "c1"}); err != nil {
			t.Fatalf("after the timeout: %v", err)
		}
	})
}

// TestConcurrentBoots: 64 goroutines boot into a /22 until it is
// exhausted, deleting some as they go; no address or MAC is ever held
// twice.
func TestConcurrentBoots(t *testing.T) {
	ctx := context.Background()
	eachEngine(t, func(t *testing.T, st *store.Store) {
		m := newManager(t, st, func(o *manager.Options) { o.ForceDHCPRelease = true })
		mustNetwork(t, m, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/22", NetworkSize: 1024, Bridge: "br100"})
		p := model.Scope{ProjectID: "p1"}
		var mu sync.Mutex
		held := map[netip.Addr]string{}
		macs := map[string]string{}
		var failures []string
		fail := func(s string) { mu.Lock(); failures = append(failures, s); mu.Unlock() }
		var wg sync.WaitGroup
		var exhausted, boots, deletes int
		for g := 0; g < 64; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []model.InstanceDetail
				for i := 0; ; i++ {
					d, err := m.BootInstance(ctx, p, model.BootRequest{Hostname: fmt.Sprintf("vm-%d-%d", g, i), Host: fmt.Sprintf("c%d", g%4)})
					if model.IsKind(err, model.ErrExhausted) {
						mu.Lock()
						exhausted++
						mu.Unlock()
						return
					}
					if err != nil {
						fail(err.Error())
						return
					}
					mu.Lock()
					boots++
					a, mac := d.FixedIPs[0].Address, d.VIFs[0].MAC
					if o, ok := held[a]; ok {
						failures = append(failures, fmt.Sprintf("%s handed to %s while held by %s", a, d.UUID, o))
					}
					if o, ok := macs[mac]; ok {
						failures = append(failures, fmt.Sprintf("mac %s handed to %s while held by %s", mac, d.UUID, o))
					}
					held[a], macs[mac] = d.UUID, d.UUID
					mu.Unlock()
					mine = append(mine, d)
					if i%3 == 2 {
						victim := mine[0]
						mine = mine[1:]
						mu.Lock()
						delete(held, victim.FixedIPs[0].Address)
						delete(macs, victim.VIFs[0].MAC)
						deletes++
						mu.Unlock()
						if err := m.DeleteInstance(ctx, p, victim.UUID); err != nil {
							fail(err.Error())
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("%d failures, first: %s", len(failures), failures[0])
		}
		if exhausted != 64 {
			t.Fatalf("exhausted %d of 64 goroutines", exhausted)
		}
		if boots-deletes != 1021 || len(held) != 1021 {
			t.Fatalf("boots %d deletes %d held %d, want 1021 held", boots, deletes, len(held))
		}
		var dupAddr, dupMAC, allocated int
		db := st.DB()
		db.QueryRow(st.Rebind(`SELECT COUNT(*) FROM (SELECT instance_uuid FROM fixed_ips WHERE allocated GROUP BY instance_uuid HAVING COUNT(*) > 1) x`)).Scan(&dupAddr)
		db.QueryRow(`SELECT COUNT(*) FROM (SELECT mac FROM virtual_interfaces GROUP BY mac HAVING COUNT(*) > 1) x`).Scan(&dupMAC)
		db.QueryRow(`SELECT COUNT(*) FROM fixed_ips WHERE allocated`).Scan(&allocated)
		if dupAddr != 0 || dupMAC != 0 || allocated != 1021 {
			t.Fatalf("db: %d instances with 2 addresses, %d duplicate macs, %d allocated", dupAddr, dupMAC, allocated)
		}
		t.Logf("%d boots, %d deletes", boots, deletes)
	})
}

func TestWaitHostWakeup(t *testing.T) {
	ctx := context.Background()
	eachEngine(t, func(t *testing.T, st *store.Store) {
		m := newManager(t, st, func(o *manager.Options) { o.PollInterval = 400 * time.Millisecond })
		mustNetwork(t, m, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100"})
		revA, _ := m.WaitHost(ctx, "a", -1)
		revB, _ := m.WaitHost(ctx, "b", -1)
		type res struct {
			rev int64
			at  time.Time
		}
		aDone, bDone := make(chan res, 1), make(chan res, 1)
		go func() { r, _ := m.WaitHost(ctx, "a", revA); aDone <- res{r, time.Now()} }()
		bctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
		defer cancel()
		go func() { r, _ := m.WaitHost(bctx, "b", revB); bDone <- res{r, time.Now()} }()
		time.Sleep(100 * time.Millisecond)
		if _, err := m.BootInstance(ctx, model.Scope{ProjectID: "p"}, model.BootRequest{Hostname: "vm", Host: "a"}); err != nil {
			t.Fatal(err)
		}
		booted := time.Now()
		select {
		case r := <-aDone:
			if d := r.at.Sub(booted); d > 100*time.Millisecond || r.rev <= revA {
				t.Fatalf("a woke after %v with revision %d (was %d)", d, r.rev, revA)
			}
		case <-time.After(time.Second):
			t.Fatal("a not woken")
		}
		r := <-bDone
		if r.rev != revB {
			t.Fatalf("b's revision moved: %d -> %d", revB, r.rev)
		}
		if r.at.Sub(booted) < 400*time.Millisecond {
			t.Fatalf("b returned early")
		}
		// The network host of a single-host network moved too.
		if rev, _ := st.Revision(ctx, "net1"); rev < 2 {
			t.Fatalf("network host revision %d", rev)
		}
	})
}

func TestWaitHostSeesOtherProcess(t *testing.T) {
	ctx := context.Background()
	eachEngine(t, func(t *testing.T, st *store.Store) {
		m := newManager(t, st, nil)
		other := newManager(t, st, nil) // stands in for a second server
		mustNetwork(t, m, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100"})
		rev, _ := m.WaitHost(ctx, "a", -1)
		done := make(chan int64, 1)
		go func() { r, _ := m.WaitHost(ctx, "a", rev); done <- r }()
		time.Sleep(20 * time.Millisecond)
		if _, err := other.BootInstance(ctx, model.Scope{ProjectID: "p"}, model.BootRequest{Hostname: "vm", Host: "a"}); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			if r <= rev {
				t.Fatalf("revision %d", r)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("change by another manager not seen by polling")
		}
	})
}

// TestLeasedAddressWaitsForDel: a deleted instance whose lease dnsmasq
// still holds is not disassociated at the timeout; dnsmasq's `del` at
// lease expiry frees it.
func TestLeasedAddressWaitsForDel(t *testing.T) {
	ctx := context.Background()
	eachEngine(t, func(t *testing.T, st *store.Store) {
		m := newManager(t, st, func(o *manager.Options) { o.FixedIPDisassociateTimeout = 50 * time.Millisecond })
		mustNetwork(t, m, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/30", Bridge: "br100", Host: "net"})
		p1 := model.Scope{ProjectID: "p1"}
		a, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "vm1", Host: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		addr, mac := a.FixedIPs[0].Address, a.VIFs[0].MAC
		if err := m.RecordLease(ctx, model.LeaseEvent{Action: model.LeaseAdd, MAC: mac, Address: addr, Host: "net"}); err != nil {
			t.Fatal(err)
		}
		if err := m.DeleteInstance(ctx, p1, a.UUID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(80 * time.Millisecond)
		if err := m.Periodic(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "vm2", Host: "c1"}); !model.IsKind(err, model.ErrExhausted) {
			t.Fatalf("a still-leased address was handed out at the timeout: %v", err)
		}
		if err := m.RecordLease(ctx, model.LeaseEvent{Action: model.LeaseDel, MAC: mac, Address: addr, Host: "net"}); err != nil {
			t.Fatal(err)
		}
		b, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "vm2", Host: "c1"})
		if err != nil {
			t.Fatalf("after dnsmasq's del: %v", err)
		}
		if b.FixedIPs[0].Address != addr {
			t.Errorf("vm2 got %s, want %s", b.FixedIPs[0].Address, addr)
		}
	})
}
