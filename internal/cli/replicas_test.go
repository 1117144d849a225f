package cli

import (
	"context"
	"errors"
	"fmt"
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

// Races between serve replicas sharing one PostgreSQL (issue 13). Each
// test drives real concurrent requests through three built `novanet
// serve` processes; the answers SQLite gives (one writer at a time) are
// the reference: exactly one winner, quotas never exceeded, a 4xx and
// never a 500 for the loser.

const (
	replicaProjA = "cli-replica-proj-a-0123456789"
	replicaProjB = "cli-replica-proj-b-0123456789"
)

func writeReplicaTokens(t testing.TB, dir string) {
	t.Helper()
	tokens := adminTok + " admin\n" + replicaProjA + " project proj-a\n" + replicaProjB + " project proj-b\n"
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startReplicas builds novanet and starts n serve processes on db, all
// at once (each its own exec, none waiting for another to listen).
func startReplicas(t testing.TB, bin, dir, db, prefix string, n int) ([]string, error) {
	t.Helper()
	type proc struct {
		cmd  *exec.Cmd
		addr string
		log  string
	}
	procs := make([]*proc, n)
	for i := range procs {
		name := fmt.Sprintf("%s%d", prefix, i)
		p := &proc{addr: filepath.Join(dir, name+".addr"), log: filepath.Join(dir, name+".log")}
		logf, err := os.Create(p.log)
		if err != nil {
			t.Fatal(err)
		}
		p.cmd = exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--database", db,
			"--tokens_file", filepath.Join(dir, "tokens"), "--address_file", p.addr)
		p.cmd.Stdout, p.cmd.Stderr = logf, logf
		p.cmd.Env = append(os.Environ(), "NOVANET_STATE_PATH="+dir)
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		procs[i] = p
	}
	for _, p := range procs {
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { p.cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			p.cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				p.cmd.Process.Kill()
				<-exited
			}
		})
	}
	urls := make([]string, n)
	var failed []string
	deadline := time.Now().Add(60 * time.Second)
	for i, p := range procs {
		for {
			if b, err := os.ReadFile(p.addr); err == nil && len(b) > 0 {
				urls[i] = "http://" + strings.TrimSpace(string(b))
				break
			}
			if p.cmd.ProcessState != nil || time.Now().After(deadline) {
				log, _ := os.ReadFile(p.log)
				failed = append(failed, fmt.Sprintf("replica %d did not start:\n%s", i, log))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if failed != nil {
		return urls, errors.New(strings.Join(failed, "\n"))
	}
	return urls, nil
}

// statusOf is the HTTP status of a client error (0 for a transport error).
func statusOf(err error) int {
	var he *client.HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// together runs fns at the same moment and returns their errors.
func together(fns ...func() error) []error {
	errs := make([]error, len(fns))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn()
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// TestReplicasStartTogetherOnEmptyDatabase: three serve processes started
// at once on an empty PostgreSQL database all come up (item 5), round
// after round, each on a fresh database.
func TestReplicasStartTogetherOnEmptyDatabase(t *testing.T) {
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	writeReplicaTokens(t, dir)
	for round := range 6 {
		db := pgtest.Start(t)
		urls, err := startReplicas(t, bin, dir, db, fmt.Sprintf("r%d-", round), 3)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, u := range urls {
			if err := client.New(u, adminTok).Health(context.Background()); err != nil {
				t.Fatalf("round %d: %s: %v", round, u, err)
			}
		}
	}
}

// TestReplicaRaces runs items 1-4 of issue 13 against three replicas.
func TestReplicaRaces(t *testing.T) {
	db := pgtest.Start(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	writeReplicaTokens(t, dir)
	urls, err := startReplicas(t, bin, dir, db, "serve", 3)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	admin := client.New(urls[0], adminTok)
	if _, err := admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.30.0.0/22", NetworkSize: 1024, Bridge: "br100", Host: "ctl"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateFloatingRange(ctx, model.FloatingRangeRequest{IPRange: "203.0.113.0/25", Pool: "nova"}); err != nil {
		t.Fatal(err)
	}
	proj := func(i int) *client.Client { return client.New(urls[i%len(urls)], replicaProjA) }

	t.Run("associate floating ip while the instance is deleted", func(t *testing.T) {
		for round := range 40 {
			d, err := proj(0).BootInstance(ctx, model.BootRequest{Hostname: fmt.Sprintf("a%d", round), Host: "compute-1"})
			if err != nil {
				t.Fatal(err)
			}
			f, err := proj(0).AllocateFloatingIP(ctx, "nova")
			if err != nil {
				t.Fatal(err)
			}
			errs := together(
				func() error { return proj(1).AssociateFloatingIP(ctx, f.Address, d.UUID, netip.Addr{}) },
				func() error { return proj(2).DeleteInstance(ctx, d.UUID) },
			)
			if errs[1] != nil {
				t.Fatalf("round %d: delete: %v", round, errs[1])
			}
			if errs[0] != nil && statusOf(errs[0]) != 404 {
				t.Fatalf("round %d: associate: status %d %v; want 202 or 404", round, statusOf(errs[0]), errs[0])
			}
			got, err := proj(0).GetFloatingIP(ctx, f.Address.String())
			if err != nil {
				t.Fatal(err)
			}
			if got.FixedAddress.IsValid() || got.InstanceUUID != "" {
				t.Fatalf("round %d: floating ip %s stays bound to %s (instance %q) after the instance was deleted", round, f.Address, got.FixedAddress, got.InstanceUUID)
			}
			if err := proj(0).ReleaseFloatingIP(ctx, f.Address.String()); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("eight associations of one floating ip", func(t *testing.T) {
		var insts []model.InstanceDetail
		for i := range 8 {
			d, err := proj(i).BootInstance(ctx, model.BootRequest{Hostname: fmt.Sprintf("e%d", i), Host: "compute-2"})
			if err != nil {
				t.Fatal(err)
			}
			insts = append(insts, d)
		}
		f, err := proj(0).AllocateFloatingIP(ctx, "nova")
		if err != nil {
			t.Fatal(err)
		}
		for round := range 10 {
			var fns []func() error
			for i, d := range insts {
				fns = append(fns, func() error { return proj(i).AssociateFloatingIP(ctx, f.Address, d.UUID, netip.Addr{}) })
			}
			won, winner := 0, ""
			for i, err := range together(fns...) {
				switch {
				case err == nil:
					won++
					winner = insts[i].UUID
				case statusOf(err) != 409:
					t.Fatalf("round %d: association %d: status %d %v; want 202 or 409", round, i, statusOf(err), err)
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d associations answered 202; exactly one binding can exist", round, won)
			}
			got, err := proj(0).GetFloatingIP(ctx, f.Address.String())
			if err != nil || got.InstanceUUID != winner {
				t.Fatalf("round %d: floating ip bound to %q, the 202 went to %s (%v)", round, got.InstanceUUID, winner, err)
			}
			if err := proj(0).DisassociateFloatingIP(ctx, f.Address, winner); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("floating ip quota under 64 concurrent allocations", func(t *testing.T) {
		projB := func(i int) *client.Client { return client.New(urls[i%len(urls)], replicaProjB) }
		for round := range 3 {
			var fns []func() error
			for i := range 64 {
				fns = append(fns, func() error { _, err := projB(i).AllocateFloatingIP(ctx, "nova"); return err })
			}
			ok := 0
			for i, err := range together(fns...) {
				switch {
				case err == nil:
					ok++
				case statusOf(err) != 403 || !model.IsKind(err, model.ErrQuota):
					t.Fatalf("round %d: allocation %d: status %d %v; want 200 or 403 over quota", round, i, statusOf(err), err)
				}
			}
			held, err := projB(0).ListFloatingIPs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ok != 10 || len(held) != 10 {
				t.Fatalf("round %d: %d allocations succeeded and the project holds %d; quota_floating_ips is 10", round, ok, len(held))
			}
			for _, f := range held {
				if err := projB(0).ReleaseFloatingIP(ctx, f.Address.String()); err != nil {
					t.Fatal(err)
				}
			}
		}
	})

	t.Run("boot naming a security group while it is deleted", func(t *testing.T) {
		for round := range 30 {
			name := fmt.Sprintf("web%d", round)
			g, err := proj(0).CreateSecurityGroup(ctx, name, "web servers")
			if err != nil {
				t.Fatal(err)
			}
			var booted model.InstanceDetail
			errs := together(
				func() (err error) {
					booted, err = proj(1).BootInstance(ctx, model.BootRequest{Hostname: "g" + name, Host: "compute-3", SecurityGroups: []string{name}})
					return err
				},
				func() error { return proj(2).DeleteSecurityGroup(ctx, g.ID) },
			)
			bootErr, delErr := errs[0], errs[1]
			switch {
			case bootErr == nil && statusOf(delErr) == 409:
				// The boot went first: the group is in use.
				if _, err := proj(0).GetSecurityGroup(ctx, g.ID); err != nil {
					t.Fatalf("round %d: the boot's group is gone: %v", round, err)
				}
				if err := proj(0).DeleteInstance(ctx, booted.UUID); err != nil {
					t.Fatal(err)
				}
				if err := proj(0).DeleteSecurityGroup(ctx, g.ID); err != nil {
					t.Fatal(err)
				}
			case delErr == nil && statusOf(bootErr) == 400:
				// The delete went first: the boot names no group.
			default:
				t.Fatalf("round %d: boot answered %d (%v), delete %d (%v); want one winner and a 4xx for the other", round, statusOf(bootErr), bootErr, statusOf(delErr), delErr)
			}
		}
	})
}
