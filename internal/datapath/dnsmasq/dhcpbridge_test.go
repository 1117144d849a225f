package dnsmasq_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"novanet/internal/datapath/dnsmasq"
	"novanet/internal/dhcpbridge"
	"novanet/internal/model"
	"novanet/internal/plan"
)

const mac3 = "fa:16:3e:00:00:03"

// TestMain lets this test binary be dnsmasq's --dhcp-script: run through
// a link named novanet-dhcpbridge it is the real dhcpbridge.Main, as the
// novanet binary is (cmd/novanet dispatches the same way), without
// building the whole binary inside a test.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "novanet-dhcpbridge" {
		os.Exit(dhcpbridge.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// agentRecorder is the agent's side of the socket: it records events and
// answers init with the leases it was given.
type agentRecorder struct {
	mu     sync.Mutex
	events []model.LeaseEvent
	inits  []string // bridges asked for
	leases []model.Lease
}

func (a *agentRecorder) HandleLease(_ context.Context, ev model.LeaseEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, ev)
	return nil
}

func (a *agentRecorder) Leases(_ context.Context, bridge string) ([]model.Lease, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inits = append(a.inits, bridge)
	return a.leases, nil
}

func (a *agentRecorder) has(want model.LeaseEvent) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.events, want)
}

func (a *agentRecorder) initCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.inits)
}

// withScript points the plan's --dhcp-script at script.
func withScript(ds []plan.Dnsmasq, script string) []plan.Dnsmasq {
	for i := range ds {
		for j, arg := range ds[i].Args {
			if strings.HasPrefix(arg, "--dhcp-script=") {
				ds[i].Args[j] = "--dhcp-script=" + script
			}
		}
	}
	return ds
}

// TestDHCPBridgeEndToEnd runs real dnsmasq with the real dhcpbridge as its
// script against a live agent socket: init hands dnsmasq the leases the
// agent knows (proved by a release of one of them producing del), a
// client's lease reaches the handler as add with MAC, address and
// hostname, a changed entry is served after the supervisor's SIGHUP, and
// Watch reports a killed dnsmasq.
func TestDHCPBridgeEndToEnd(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	self, err := os.Executable()
	must(t, err)
	script := filepath.Join(r.dir, "novanet-dhcpbridge")
	must(t, os.Symlink(self, script))
	agent := &agentRecorder{leases: []model.Lease{{MAC: mac2, Address: a("10.0.0.4"), Hostname: "vm2"}}}
	sock := filepath.Join(r.dir, "run", "agent.sock")
	ln, err := dhcpbridge.Listen(sock)
	must(t, err)
	served := make(chan struct{})
	go func() { _ = dhcpbridge.Serve(ctx, ln, agent); close(served) }()
	defer func() { cancel(); <-served }()
	// dnsmasq inherits the supervisor's environment and passes it on.
	t.Setenv(dhcpbridge.SocketEnv, sock)

	s := dnsmasq.New(nil, r.dir)
	s.Netns = r.srv
	// The steps before the kill below can take more than StableAfter on
	// a loaded machine; the kill must count as a death soon after start.
	s.StableAfter = time.Minute
	t.Cleanup(func() { _ = s.Apply(context.Background(), nil) })
	h1 := model.DHCPHost{MAC: mac1, Hostname: "vm1", Address: a("10.0.0.3")}
	h2 := model.DHCPHost{MAC: mac2, Hostname: "vm2", Address: a("10.0.0.4")}
	must(t, s.Apply(ctx, withScript(r.dnsmasqPlan(t, h1, h2), script)))
	if n := agent.initCount(); n != 1 || agent.inits[0] != "br100" {
		t.Fatalf("init calls for bridges %v, want one for br100", agent.inits)
	}

	if got := r.lease(t, mac1); !strings.HasPrefix(got, "10.0.0.3 ") {
		t.Fatalf("vm1 lease = %q", got)
	}
	add := model.LeaseEvent{Action: model.LeaseAdd, MAC: mac1, Address: a("10.0.0.3"), Hostname: "vm1"}
	waitFor(t, "add event for vm1 at the agent", func() bool { return agent.has(add) })

	// vm2's lease exists only because init reported it: releasing it
	// makes dnsmasq drop it and say so.
	must(t, s.Release(ctx, "br100", a("10.0.0.1"), mac2, a("10.0.0.4")))
	del := model.LeaseEvent{Action: model.LeaseDel, MAC: mac2, Address: a("10.0.0.4"), Hostname: "vm2"}
	waitFor(t, "del event for the released vm2 lease", func() bool { return agent.has(del) })
	// The address is free at once: a new VM gets it right away (dnsmasq
	// refuses an address another MAC still leases).
	h3 := model.DHCPHost{MAC: mac3, Hostname: "vm3", Address: a("10.0.0.4")}
	must(t, s.Apply(ctx, withScript(r.dnsmasqPlan(t, h1, h3), script)))
	if got := r.lease(t, mac3); !strings.HasPrefix(got, "10.0.0.4 ") {
		t.Fatalf("vm3 got %q right after vm2's release, want 10.0.0.4", got)
	}

	// vm1 moves to another address while dnsmasq still holds its lease:
	// the changed file needs a SIGHUP, and the old lease must not keep it
	// on 10.0.0.3.
	h1.Address = a("10.0.0.5")
	must(t, s.Apply(ctx, withScript(r.dnsmasqPlan(t, h1, h3), script)))
	if s.Reloads() != 2 {
		t.Errorf("reloads = %d after changing an entry, want 2 (vm2 removed, then vm1 changed)", s.Reloads())
	}
	if got := r.lease(t, mac1); !strings.HasPrefix(got, "10.0.0.5 ") {
		t.Errorf("vm1 after its entry changed got %q, want 10.0.0.5", got)
	}

	// Watch notices a dead dnsmasq within its interval. It died right
	// after its start, so the supervisor backs off for a second, and
	// Watch stays quiet until the backoff has passed.
	notified := make(chan struct{}, 1)
	go s.Watch(ctx, 50*time.Millisecond, func() {
		select {
		case notified <- struct{}{}:
		default:
		}
	})
	must(t, syscall.Kill(r.pid(t), syscall.SIGKILL))
	select {
	case <-notified:
	case <-time.After(3 * time.Second):
		t.Fatal("Watch did not report the killed dnsmasq")
	}
	err = s.Apply(ctx, withScript(r.dnsmasqPlan(t, h1, h3), script))
	if err == nil || !strings.Contains(err.Error(), "next start attempt") {
		t.Fatalf("apply right after a death soon after start: %v, want the backoff", err)
	}
	refused := time.Now()
	<-notified // may hold a second notification from before the apply
	select {
	case <-notified:
	case <-time.After(3 * time.Second):
		t.Fatal("Watch did not report the dead dnsmasq after the backoff")
	}
	if waited := time.Since(refused); waited < 800*time.Millisecond {
		t.Errorf("Watch asked for a repair %s after the refused start, within the 1 s backoff", waited)
	}
	must(t, s.Apply(ctx, withScript(r.dnsmasqPlan(t, h1, h3), script)))
	if n := agent.initCount(); n != 2 {
		t.Errorf("init calls = %d after the restart, want 2", n)
	}
}
