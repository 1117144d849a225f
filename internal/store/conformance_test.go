package store_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"novanet/internal/model"
	"novanet/internal/store"
)

// opener returns a URL of a fresh, empty store.
type opener func(t testing.TB) string

func openStore(t testing.TB, url string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func addNetwork(t testing.TB, st *store.Store, label, cidr string) model.Network {
	t.Helper()
	ctx := context.Background()
	p := netip.MustParsePrefix(cidr)
	gw := p.Addr().Next()
	var n model.Network
	err := st.Update(ctx, func(tx *store.Tx) error {
		var err error
		n, err = tx.InsertNetwork(ctx, model.Network{UUID: "uuid-" + label, Label: label, Kind: model.KindFlatDHCP,
			CIDR: p, Gateway: gw, Broadcast: lastAddr(p), DHCPStart: gw.Next(), Bridge: "br100", Host: "net1"})
		if err != nil {
			return err
		}
		return tx.InsertFixedIPs(ctx, n.ID, p, func(a netip.Addr) bool { return a == p.Addr() || a == gw || a == lastAddr(p) })
	})
	if err != nil {
		t.Fatalf("add network %s: %v", cidr, err)
	}
	return n
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= ^uint32(0) >> p.Bits()
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func runConformance(t *testing.T, open opener) {
	t.Run("MigrateTwice", func(t *testing.T) {
		url := open(t)
		st := openStore(t, url)
		d1, err := st.Dump(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		st2 := openStore(t, url)
		d2, _ := st2.Dump(context.Background())
		if d1 != d2 {
			t.Fatalf("reopening changed the store:\n%s\n---\n%s", d1, d2)
		}
		if !strings.Contains(d1, "001_init.sql") {
			t.Fatalf("schema_migrations lacks 001:\n%s", d1)
		}
	})
	t.Run("NetworkRowsAndUniques", func(t *testing.T) {
		ctx := context.Background()
		st := openStore(t, open(t))
		n := addNetwork(t, st, "net", "10.0.0.0/24")
		err := st.View(ctx, func(tx *store.Tx) error {
			got, err := tx.FindNetwork(ctx, "net")
			if err != nil || got.ID != n.ID || got.CIDR != n.CIDR || got.Gateway != n.Gateway {
				return fmt.Errorf("find by label: %+v %v", got, err)
			}
			if _, err := tx.FindNetwork(ctx, "uuid-net"); err != nil {
				return err
			}
			if _, err := tx.FindNetwork(ctx, "nope"); !model.IsKind(err, model.ErrNotFound) {
				return fmt.Errorf("missing network: %v", err)
			}
			rows, err := tx.FixedIPsOfNetwork(ctx, n.ID)
			if err != nil || len(rows) != 256 {
				return fmt.Errorf("rows %d %v", len(rows), err)
			}
			res := 0
			for _, r := range rows {
				if r.Reserved {
					res++
				}
			}
			if res != 3 {
				return fmt.Errorf("reserved %d, want 3", res)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// A duplicate label is refused by the database.
		err = st.Update(ctx, func(tx *store.Tx) error {
			_, err := tx.InsertNetwork(ctx, model.Network{UUID: "other", Label: "net", Kind: model.KindFlatDHCP, CIDR: netip.MustParsePrefix("10.1.0.0/24")})
			return err
		})
		if !store.IsUniqueViolation(err) {
			t.Fatalf("duplicate label: %v", err)
		}
		// A duplicate MAC is reported as not inserted and leaves the
		// transaction usable.
		err = st.Update(ctx, func(tx *store.Tx) error {
			if _, ok, err := tx.InsertVIF(ctx, model.VIF{UUID: "v1", MAC: "fa:16:3e:00:00:01", InstanceUUID: "i1", NetworkID: n.ID, Device: "tapv1"}, "h1"); err != nil || !ok {
				return fmt.Errorf("first vif: %v %v", ok, err)
			}
			if _, ok, err := tx.InsertVIF(ctx, model.VIF{UUID: "v2", MAC: "fa:16:3e:00:00:01", InstanceUUID: "i2", NetworkID: n.ID, Device: "tapv2"}, "h1"); err != nil || ok {
				return fmt.Errorf("duplicate mac: %v %v", ok, err)
			}
			_, ok, err := tx.InsertVIF(ctx, model.VIF{UUID: "v3", MAC: "fa:16:3e:00:00:02", InstanceUUID: "i2", NetworkID: n.ID, Device: "tapv3"}, "h1")
			if err != nil || !ok {
				return fmt.Errorf("vif after duplicate: %v %v", ok, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AllocateUntilExhausted", func(t *testing.T) {
		ctx := context.Background()
		st := openStore(t, open(t))
		n := addNetwork(t, st, "small", "10.0.0.0/29") // 8 rows, 3 reserved
		var got []netip.Addr
		for i := 0; ; i++ {
			var f model.FixedIP
			err := st.Update(ctx, func(tx *store.Tx) error {
				var err error
				f, err = tx.AllocateFixedIP(ctx, n.ID, fmt.Sprintf("inst-%d", i), int64(i+1))
				return err
			})
			if store.IsNoFreeAddress(err) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, f.Address)
		}
		want := "[10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6]"
		if fmt.Sprint(got) != want {
			t.Fatalf("allocated %v, want %s", got, want)
		}
		// Deallocated but associated addresses stay out of the pool until
		// disassociated.
		err := st.Update(ctx, func(tx *store.Tx) error {
			f, err := tx.FixedIPByAddress(ctx, netip.MustParseAddr("10.0.0.4"))
			if err != nil {
				return err
			}
			if err := tx.DeallocateFixedIP(ctx, f.ID); err != nil {
				return err
			}
			if _, err := tx.AllocateFixedIP(ctx, n.ID, "x", 99); !store.IsNoFreeAddress(err) {
				return fmt.Errorf("deallocated address reused before disassociation: %v", err)
			}
			f, _ = tx.FixedIPByID(ctx, f.ID)
			if err := tx.DisassociateFixedIP(ctx, f); err != nil {
				return err
			}
			g, err := tx.AllocateFixedIP(ctx, n.ID, "x", 99)
			if err != nil || g.Address != f.Address {
				return fmt.Errorf("after disassociation got %v %v", g.Address, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ConcurrentAllocation", func(t *testing.T) {
		ctx := context.Background()
		st := openStore(t, open(t))
		n := addNetwork(t, st, "c", "10.0.0.0/24")
		var mu sync.Mutex
		seen := map[netip.Addr]int{}
		var wg sync.WaitGroup
		var exhausted, other int
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					var f model.FixedIP
					err := st.Update(ctx, func(tx *store.Tx) error {
						var err error
						f, err = tx.AllocateFixedIP(ctx, n.ID, fmt.Sprintf("g%d-%d", g, i), int64(g*1000+i+1))
						return err
					})
					mu.Lock()
					switch {
					case store.IsNoFreeAddress(err):
						exhausted++
						mu.Unlock()
						return
					case err != nil:
						other++
						t.Error(err)
						mu.Unlock()
						return
					}
					seen[f.Address]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != 253 || exhausted != 16 || other != 0 {
			t.Fatalf("allocated %d distinct (want 253), exhausted %d", len(seen), exhausted)
		}
		for a, c := range seen {
			if c != 1 {
				t.Fatalf("%s allocated %d times", a, c)
			}
		}
	})
	t.Run("HostsAndReleases", func(t *testing.T) {
		ctx := context.Background()
		st := openStore(t, open(t))
		n := addNetwork(t, st, "h", "10.0.0.0/24")
		err := st.Update(ctx, func(tx *store.Tx) error {
			if _, err := tx.BumpHosts(ctx, "b", "a", "b", ""); err != nil {
				return err
			}
			return tx.InsertRelease(ctx, store.Release{Host: "a", NetworkID: n.ID, Address: netip.MustParseAddr("10.0.0.5"), MAC: "fa:16:3e:00:00:05"})
		})
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := st.Revision(ctx, "b"); r != 1 {
			t.Fatalf("revision of b = %d, want 1 (deduplicated)", r)
		}
		if r, _ := st.Revision(ctx, "zzz"); r != 0 {
			t.Fatalf("unknown host revision %d", r)
		}
		err = st.Update(ctx, func(tx *store.Tx) error {
			rs, err := tx.Releases(ctx, "a")
			if err != nil || len(rs) != 1 || rs[0].MAC != "fa:16:3e:00:00:05" {
				return fmt.Errorf("releases %+v %v", rs, err)
			}
			hs, err := tx.ExpireReleases(ctx, store.Now()+int64(time.Second/time.Microsecond))
			if err != nil || fmt.Sprint(hs) != "[a]" {
				return fmt.Errorf("expire %v %v", hs, err)
			}
			return tx.ReportApplied(ctx, "a", model.AppliedReport{Revision: 1})
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("FloatingAndGroups", func(t *testing.T) {
		ctx := context.Background()
		st := openStore(t, open(t))
		err := st.Update(ctx, func(tx *store.Tx) error {
			var addrs []netip.Addr
			for a := netip.MustParseAddr("203.0.113.1"); a != netip.MustParseAddr("203.0.113.4"); a = a.Next() {
				addrs = append(addrs, a)
			}
			if err := tx.InsertFloatingIPs(ctx, addrs, "nova", "eth0"); err != nil {
				return err
			}
			f, err := tx.AllocateFloating(ctx, "nova", "p1", false)
			if err != nil || f.Address != addrs[0] || f.ProjectID != "p1" {
				return fmt.Errorf("allocate %+v %v", f, err)
			}
			if n, _ := tx.CountFloatings(ctx, store.FloatingFilter{From: addrs[0], To: addrs[2], Allocated: true}); n != 1 {
				return fmt.Errorf("in use %d", n)
			}
			for _, c := range []struct {
				f    store.FloatingFilter
				want []netip.Addr
			}{
				{store.FloatingFilter{}, addrs},
				{store.FloatingFilter{ProjectID: "p1"}, addrs[:1]},
				{store.FloatingFilter{ProjectID: "p2"}, nil},
				{store.FloatingFilter{Allocated: true}, addrs[:1]},
				{store.FloatingFilter{From: addrs[1], To: addrs[2]}, addrs[1:]},
				{store.FloatingFilter{From: addrs[1]}, addrs[1:]},
				{store.FloatingFilter{To: addrs[0], Allocated: true}, addrs[:1]},
				{store.FloatingFilter{Associated: true}, nil},
				{store.FloatingFilter{Host: "net1"}, nil},
			} {
				fls, err := tx.ListFloatings(ctx, c.f)
				var got []netip.Addr
				for _, fl := range fls {
					got = append(got, fl.Address)
				}
				if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
					return fmt.Errorf("floatings %+v: %v %v, want %v", c.f, got, err, c.want)
				}
			}
			g, created, err := tx.InsertSecurityGroup(ctx, model.SecurityGroup{ProjectID: "p1", Name: "default"})
			if err != nil || !created {
				return fmt.Errorf("group %v %v", created, err)
			}
			g2, created, err := tx.InsertSecurityGroup(ctx, model.SecurityGroup{ProjectID: "p1", Name: "default"})
			if err != nil || created || g2.ID != g.ID {
				return fmt.Errorf("second default group %v %v", created, err)
			}
			_, err = tx.InsertRule(ctx, model.SecurityGroupRule{GroupID: g.ID, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("0.0.0.0/0")})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		d1, _ := st.Dump(ctx)
		d2, _ := st.Dump(ctx)
		if d1 != d2 || !strings.Contains(d1, "203.0.113.1") || !strings.Contains(d1, "0.0.0.0/0") {
			t.Fatalf("dump not stable or incomplete:\n%s", d1)
		}
	})
}
