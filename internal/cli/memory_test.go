package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"novanet/internal/client"
	"novanet/internal/model"
)

// TestServeMemory starts `novanet serve` on SQLite, fills a /16 with
// 60,000 allocated addresses and reports the server's resident memory.
// It takes minutes, so it runs only with NOVANET_MEMCHECK=1 (see
// bench/serve-memory.sh). NOVANET_MEMCHECK_COUNT overrides the count.
func TestServeMemory(t *testing.T) {
	if os.Getenv("NOVANET_MEMCHECK") != "1" {
		t.Skip("set NOVANET_MEMCHECK=1 (bench/serve-memory.sh) to run the serve memory check")
	}
	count := 60000
	if v := os.Getenv("NOVANET_MEMCHECK_COUNT"); v != "" {
		count, _ = strconv.Atoi(v)
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte(adminTok+" admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url, pid := startServe(t, bin, dir, "serve", "sqlite://"+filepath.Join(dir, "novanet.db"))
	ctx := context.Background()
	c := client.New(url, adminTok)
	if _, err := c.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "big", FixedRangeV4: "10.128.0.0/16", NetworkSize: 65536, Bridge: "br100", Host: "ctl"}); err != nil {
		t.Fatal(err)
	}
	rssAfterCreate := vmRSS(t, pid)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(count) {
					return
				}
				_, err := c.BootInstance(ctx, model.BootRequest{Hostname: fmt.Sprintf("vm%d", i), Host: fmt.Sprintf("compute-%d", w%8), ProjectID: "proj"})
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	elapsed := time.Since(start)
	// Exercise the big reads too: the network host's state and a list.
	if _, err := c.HostState(ctx, "ctl"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListInstances(ctx); err != nil {
		t.Fatal(err)
	}
	rss := vmRSS(t, pid)
	t.Logf("serve memory: VmRSS %d MiB after network create, %d MiB with %d allocated addresses (booted in %v, %.0f/s)",
		rssAfterCreate>>10, rss>>10, count, elapsed.Round(time.Second), float64(count)/elapsed.Seconds())
	fmt.Printf("RESULT serve VmRSS_kB=%d addresses=%d boot_seconds=%.1f\n", rss, count, elapsed.Seconds())
	if rss > 128<<10 {
		t.Errorf("serve uses %d MiB resident, target < 128 MiB", rss>>10)
	}
}

// vmRSS returns the resident set size of pid in kB.
func vmRSS(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}
