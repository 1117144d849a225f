package lab_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"novanet/internal/lab"
)

// BenchmarkBootStorm boots 100 VMs at once, spread over both computes,
// and times until every one holds its DHCP lease; the baseline in the
// same run is one VM booted alone.
func BenchmarkBootStorm(b *testing.B) {
	requireLabB(b)
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("vms=%d", n), func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				l := upB(b)
				specs := make([]lab.VMSpec, n)
				for j := range specs {
					host := "compute-1"
					if j%2 == 1 {
						host = "compute-2"
					}
					specs[j] = lab.VMSpec{Name: fmt.Sprintf("v%d", j), Host: host}
				}
				b.StartTimer()
				start := time.Now()
				if _, err := l.BootMany(context.Background(), specs, 30*time.Second); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				b.StopTimer()
				if err := l.Down(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/storm")
		})
	}
}

func requireLabB(b *testing.B) { b.Helper(); requireTools(b) }
