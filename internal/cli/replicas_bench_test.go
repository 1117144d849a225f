package cli

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"novanet/internal/client"
	"novanet/internal/model"
	"novanet/internal/store/pgtest"
)

// BenchmarkBootDeleteReplicas: 64 clients boot and delete instances
// through three serve replicas on one PostgreSQL, and, in the same run,
// through one serve on SQLite (issue 13's shared-database speed). Each
// client boots, and deletes every instance it booted right after, so the
// network's occupancy stays flat. It reports boots per second and the
// boot latency's p50 and p99 as the clients saw them (HTTP included).
// Run with -benchtime 1x; NOVANET_BENCH_BOOTS sets the boots per client
// (default 60).
func BenchmarkBootDeleteReplicas(b *testing.B) {
	perClient := 60
	if v, err := strconv.Atoi(os.Getenv("NOVANET_BENCH_BOOTS")); err == nil && v > 0 {
		perClient = v
	}
	dir := b.TempDir()
	bin := buildNovanet(b, dir)
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte(adminTok+" admin\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	pg := pgtest.Start(b)
	for _, engine := range []struct {
		name     string
		db       string
		replicas int
	}{
		{"postgres-3-replicas", pg, 3},
		{"sqlite-1-server", "sqlite://" + filepath.Join(dir, "novanet.db"), 1},
	} {
		b.Run(engine.name, func(b *testing.B) {
			// The first server migrates the empty database alone, so a
			// baseline without the migration lock measures too.
			urls, err := startReplicas(b, bin, dir, engine.db, engine.name+"-first", 1)
			if err != nil {
				b.Fatal(err)
			}
			if engine.replicas > 1 {
				more, err := startReplicas(b, bin, dir, engine.db, engine.name+"-more", engine.replicas-1)
				if err != nil {
					b.Fatal(err)
				}
				urls = append(urls, more...)
			}
			for range b.N {
				benchBootDelete(b, urls, 64, perClient)
			}
		})
	}
}

// buildNovanet builds cmd/novanet into dir (buildBinary for benchmarks).
func buildNovanet(tb testing.TB, dir string) string {
	tb.Helper()
	bin := filepath.Join(dir, "novanet")
	out, err := exec.Command("go", "build", "-o", bin, "novanet/cmd/novanet").CombinedOutput()
	if err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var benchNets int

func benchBootDelete(b *testing.B, urls []string, clients, perClient int) {
	ctx := context.Background()
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	hc := &http.Client{Transport: tr}
	admin := client.New(urls[0], adminTok).WithHTTPClient(hc)
	// A deleted instance's address waits fixed_ip_disassociate_timeout
	// before reuse: a /16 holds every boot of a run.
	benchNets++
	label := fmt.Sprintf("bench%d", benchNets)
	req := model.NetworkCreateRequest{Label: label, FixedRangeV4: fmt.Sprintf("10.%d.0.0/16", 100+benchNets), NetworkSize: 65536, Bridge: "br100", Host: "ctl"}
	if os.Getenv("NOVANET_BENCH_MULTIHOST") != "" {
		// No network host whose revision every boot bumps: each compute
		// host serves its own instances.
		req.Host, req.MultiHost = "", new(true)
	}
	if _, err := admin.CreateNetworks(ctx, req); err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var lat []time.Duration
	var failed error
	var wg sync.WaitGroup
	start := time.Now()
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client.New(urls[w%len(urls)], adminTok).WithHTTPClient(hc)
			mine := make([]time.Duration, 0, perClient)
			for i := range perClient {
				t0 := time.Now()
				d, err := c.BootInstance(ctx, model.BootRequest{Hostname: fmt.Sprintf("w%d-%d", w, i), Host: fmt.Sprintf("compute-%d", w%8), ProjectID: "proj", Network: label})
				mine = append(mine, time.Since(t0))
				if err == nil {
					err = c.DeleteInstance(ctx, d.UUID)
				}
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed != nil {
		b.Fatal(failed)
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "boots/s")
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
