package lab_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"novanet/internal/lab"
	"novanet/internal/model"
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

// TestAgentMemory5000 measures the resident memory of an agent serving
// 5,000 instances (multi-host: compute-1 is gateway and DHCP server for
// all of them). It is a measurement, run by bench/agent-memory.sh.
func TestAgentMemory5000(t *testing.T) {
	if os.Getenv("NOVANET_BENCH") != "1" {
		t.Skip("set NOVANET_BENCH=1 (bench/agent-memory.sh) to run the agent memory measurement")
	}
	requireLab(t)
	o := fastOptions()
	o.MultiHost = true
	o.FixedRange = "10.0.0.0/16"
	l := up(t, o)
	ctx := context.Background()
	c := l.Client()
	const n = 5000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if _, err := c.BootInstance(ctx, model.BootRequest{Hostname: fmt.Sprintf("vm%d", i), Host: "compute-1", ProjectID: "demo"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	dir := filepath.Join(l.Dir, "compute-1", "networks", "nova-br100.hosts.d")
	deadline := time.Now().Add(60 * time.Second)
	for {
		entries, _ := os.ReadDir(dir)
		if len(entries) >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("compute-1 serves %d entries after 60s, want %d", len(entries), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // a resync with everything in place
	pid := l.State().PIDs["agent-compute-1"]
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			t.Logf("RESULT agent serving %d instances: %s", n, strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")))
		}
	}
}
