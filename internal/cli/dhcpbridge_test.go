package cli

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"novanet/internal/dhcpbridge"
	"novanet/internal/model"
)

type leaseRecorder struct {
	mu     sync.Mutex
	events []model.LeaseEvent
}

func (l *leaseRecorder) HandleLease(_ context.Context, ev model.LeaseEvent) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
	return nil
}

func (l *leaseRecorder) Leases(context.Context, string) ([]model.Lease, error) {
	return []model.Lease{{MAC: "fa:16:3e:00:00:01", Address: netip.MustParseAddr("10.0.0.3"), Hostname: "vm1"}}, nil
}

// TestDhcpbridgeCommand: the hidden `novanet dhcpbridge` reaches the
// agent socket, prints init leases, and fails with a message (exit 1)
// when no agent listens.
func TestDhcpbridgeCommand(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	t.Setenv(dhcpbridge.SocketEnv, sock)
	if code, _, errOut := runCLI(t, "dhcpbridge", "add", "fa:16:3e:00:00:01", "10.0.0.3"); code != 1 || !strings.Contains(errOut, "is novanet agent running") {
		t.Errorf("without an agent: exit %d, stderr %q", code, errOut)
	}

	ln, err := dhcpbridge.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	rec := &leaseRecorder{}
	go func() { _ = dhcpbridge.Serve(ctx, ln, rec); close(done) }()
	defer func() { cancel(); <-done }()

	if code, out, errOut := runCLI(t, "dhcpbridge", "add", "fa:16:3e:00:00:01", "10.0.0.3", "vm1"); code != 0 || out != "" {
		t.Fatalf("add: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	want := model.LeaseEvent{Action: model.LeaseAdd, MAC: "fa:16:3e:00:00:01", Address: netip.MustParseAddr("10.0.0.3"), Hostname: "vm1"}
	rec.mu.Lock()
	got := rec.events
	rec.mu.Unlock()
	if len(got) != 1 || got[0] != want {
		t.Errorf("events = %+v, want %+v", got, want)
	}
	code, out, errOut := runCLI(t, "dhcpbridge", "init")
	if f := strings.Fields(out); code != 0 || len(f) != 5 || f[1] != "fa:16:3e:00:00:01" || f[2] != "10.0.0.3" || f[3] != "vm1" {
		t.Errorf("init: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
