package lab_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"novanet/internal/lab"
)

// BenchmarkQEMUGuestBoot times `lab boot --qemu` from the API call to the
// guest's lease (kernel boot under TCG included) and then to the end of
// its three pings of the gateway; the baseline in the same run is a namespace VM's boot to
// lease on the same lab.
func BenchmarkQEMUGuestBoot(b *testing.B) {
	requireLabB(b)
	if err := lab.QEMUMissing(); err != nil {
		b.Skipf("QEMU guests: %v", err)
	}
	if _, err := lab.CheckQEMU(); err != nil { // the cached image, built outside the timing
		b.Fatal(err)
	}
	l := upB(b)
	ctx := context.Background()
	for _, kind := range []string{"namespace", "qemu"} {
		b.Run(kind, func(b *testing.B) {
			var lease, ping time.Duration
			for i := 0; i < b.N; i++ {
				name := fmt.Sprintf("%c%d", kind[0], i)
				start := time.Now()
				if _, err := l.BootMany(ctx, []lab.VMSpec{{Name: name, Host: "compute-1", QEMU: kind == "qemu"}}, 90*time.Second); err != nil {
					b.Fatal(err)
				}
				lease += time.Since(start)
				if kind == "qemu" {
					for {
						out, _ := l.Console(name)
						if strings.Contains(out, "\nnovanet-ping: 10.0.0.1 ok") {
							break
						}
						if time.Since(start) > 2*time.Minute {
							b.Fatalf("%s never pinged its gateway:\n%s", name, out)
						}
						time.Sleep(20 * time.Millisecond)
					}
					ping += time.Since(start)
				}
				b.StopTimer()
				if err := l.Delete(ctx, name); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(lease.Seconds()/float64(b.N), "s-to-lease")
			if kind == "qemu" {
				b.ReportMetric(ping.Seconds()/float64(b.N), "s-to-ping")
			}
		})
	}
}
