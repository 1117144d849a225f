package manager_test

import (
	"context"
	"fmt"
	"testing"

	"novanet/internal/manager"
	"novanet/internal/model"
	"novanet/internal/store"
)

// BenchmarkAllocateDeallocate boots and deletes one instance in a /16
// that already has N allocated addresses (pre-filled with SQL): the cost
// must not grow with N.
func BenchmarkAllocateDeallocate(b *testing.B) { benchAllocate(b, false) }

// BenchmarkAllocate times the boot (allocation) alone; the delete that
// keeps N constant runs with the timer stopped.
func BenchmarkAllocate(b *testing.B) { benchAllocate(b, true) }

func benchAllocate(b *testing.B, allocOnly bool) {
	ctx := context.Background()
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			for _, n := range []int{100, 10000, 60000} {
				b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
					st, err := store.Open(ctx, e.url(b))
					if err != nil {
						b.Fatal(err)
					}
					defer st.Close()
					m := newManager(b, st, func(o *manager.Options) { o.ForceDHCPRelease = true })
					ns := mustNetwork(b, m, model.NetworkCreateRequest{Label: "big", FixedRangeV4: "10.0.0.0/16", NetworkSize: 65536, Bridge: "br100"})
					_, err = st.DB().ExecContext(ctx, st.Rebind(`UPDATE fixed_ips SET allocated = TRUE, instance_uuid = 'prefill-' || CAST(id AS TEXT)
						WHERE id IN (SELECT id FROM fixed_ips WHERE network_id = ? AND NOT reserved ORDER BY id LIMIT ?)`), ns[0].ID, n)
					if err != nil {
						b.Fatal(err)
					}
					p := model.Scope{ProjectID: "p"}
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						d, err := m.BootInstance(ctx, p, model.BootRequest{Hostname: "vm", Host: "c1"})
						if err != nil {
							b.Fatal(err)
						}
						if allocOnly {
							b.StopTimer()
						}
						if err := m.DeleteInstance(ctx, p, d.UUID); err != nil {
							b.Fatal(err)
						}
						if allocOnly {
							b.StartTimer()
						}
					}
				})
			}
		})
	}
}
