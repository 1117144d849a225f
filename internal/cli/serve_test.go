package cli

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"novanet/internal/client"
	"novanet/internal/model"
	"novanet/internal/store/pgtest"
)

// buildBinary builds cmd/novanet into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go toolchain not on PATH: cannot build novanet for the multi-process test")
	}
	bin := filepath.Join(dir, "novanet")
	out, err := exec.Command("go", "build", "-o", bin, "novanet/cmd/novanet").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startServe runs `novanet serve` and returns its base URL and pid.
func startServe(t *testing.T, bin, dir, name, db string) (string, int) {
	t.Helper()
	addrFile := filepath.Join(dir, name+".addr")
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--database", db,
		"--tokens_file", filepath.Join(dir, "tokens"), "--address_file", addrFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "NOVANET_STATE_PATH="+dir)
	// A test binary killed at its timeout runs no cleanup: the kernel
	// then ends serve too instead of leaving it running for good.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("%s did not shut down within 15s of SIGINT", name)
		}
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return "http://" + strings.TrimSpace(string(b)), cmd.Process.Pid
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, name+".log"))
	t.Fatalf("%s did not start listening:\n%s", name, log)
	return "", 0
}

// TestTwoServersOnePostgres: 64 clients boot instances through two serve
// processes sharing one PostgreSQL until the /22 is exhausted, deleting
// some as they go. No address or MAC is ever held twice, and exhaustion
// is a clean 409.
func TestTwoServersOnePostgres(t *testing.T) {
	db := pgtest.Start(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte(adminTok+" admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url1, _ := startServe(t, bin, dir, "serve1", db)
	url2, _ := startServe(t, bin, dir, "serve2", db)
	urls := []string{url1, url2}
	// A deadlock between the servers (or inside their connection pools)
	// must fail here with the servers' logs, not hang until go test's
	// own timeout kills everything without a word.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	defer func() {
		if ctx.Err() != nil {
			for _, n := range []string{"serve1", "serve2"} {
				log, _ := os.ReadFile(filepath.Join(dir, n+".log"))
				t.Logf("%s log (last 4 KiB):\n%s", n, log[max(0, len(log)-4096):])
			}
		}
	}()
	admin := client.New(urls[0], adminTok)
	nets, err := admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "big", FixedRangeV4: "10.20.0.0/22", NetworkSize: 1024, Bridge: "br100", Host: "ctl"})
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu        sync.Mutex
		addrs     = map[netip.Addr]string{} // live address -> instance
		macs      = map[string]string{}     // live MAC -> instance
		problems  []string
		boots     int
		deletes   int
		exhausted int
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client.New(urls[w%2], adminTok)
			var mine []model.InstanceDetail
			for i := 0; ; i++ {
				d, err := c.BootInstance(ctx, model.BootRequest{Hostname: fmt.Sprintf("w%d-%d", w, i), Host: fmt.Sprintf("compute-%d", w%4), ProjectID: "proj"})
				if err != nil {
					var he *client.HTTPError
					if errors.As(err, &he) && he.Status == 409 && model.IsKind(err, model.ErrExhausted) {
						mu.Lock()
						exhausted++
						mu.Unlock()
						return
					}
					fail("worker %d boot %d: %v", w, i, err)
					return
				}
				if len(d.FixedIPs) != 1 || len(d.VIFs) != 1 {
					fail("boot %s: %d fixed IPs, %d VIFs", d.UUID, len(d.FixedIPs), len(d.VIFs))
					return
				}
				a, mac := d.FixedIPs[0].Address, d.VIFs[0].MAC
				mu.Lock()
				boots++
				if other, ok := addrs[a]; ok {
					problems = append(problems, fmt.Sprintf("address %s handed to %s while %s holds it", a, d.UUID, other))
				}
				if other, ok := macs[mac]; ok {
					problems = append(problems, fmt.Sprintf("MAC %s handed to %s while %s holds it", mac, d.UUID, other))
				}
				addrs[a], macs[mac] = d.UUID, d.UUID
				mu.Unlock()
				mine = append(mine, d)
				if rand.IntN(4) == 0 {
					k := rand.IntN(len(mine))
					victim := mine[k]
					mine = append(mine[:k], mine[k+1:]...)
					// Forget it before the delete: once the delete commits
					// the address may legitimately go to someone else.
					mu.Lock()
					delete(addrs, victim.FixedIPs[0].Address)
					delete(macs, victim.VIFs[0].MAC)
					deletes++
					mu.Unlock()
					if err := client.New(urls[(w+1)%2], adminTok).DeleteInstance(ctx, victim.UUID); err != nil {
						fail("delete %s: %v", victim.UUID, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("boots %d, deletes %d, exhausted answers %d, live %d", boots, deletes, exhausted, len(addrs))
	if exhausted != 64 {
		t.Errorf("%d workers ended on exhaustion, want 64", exhausted)
	}
	// The final database agrees with what the clients were told.
	all, err := admin.ListInstances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seenA, seenM := map[netip.Addr]bool{}, map[string]bool{}
	for _, d := range all {
		for _, f := range d.FixedIPs {
			if seenA[f.Address] {
				t.Errorf("final state: address %s held twice", f.Address)
			}
			seenA[f.Address] = true
			if !nets[0].CIDR.Contains(f.Address) {
				t.Errorf("final state: address %s outside %s", f.Address, nets[0].CIDR)
			}
			if addrs[f.Address] != d.UUID {
				t.Errorf("final state: %s holds %s, clients were told %q", d.UUID, f.Address, addrs[f.Address])
			}
		}
		for _, v := range d.VIFs {
			if seenM[v.MAC] {
				t.Errorf("final state: MAC %s held twice", v.MAC)
			}
			seenM[v.MAC] = true
		}
	}
	if len(all) != len(addrs) {
		t.Errorf("final state has %d instances, clients hold %d", len(all), len(addrs))
	}
	if len(all) == 0 {
		t.Error("no instance live at exhaustion")
	}
}
