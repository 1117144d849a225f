package agent

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"novanet/internal/agent/agenttest"
	"novanet/internal/model"
	"novanet/internal/plan"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// refusingReports is the state API with an API that refuses reports.
type refusingReports struct{ *stateAPI }

func (refusingReports) ReportApplied(context.Context, string, model.AppliedReport) error {
	return errors.New("503 service unavailable")
}

// brokenBridges fails every bridge apply, like a kernel refusing a link.
type brokenBridges struct{ Links }

func (brokenBridges) ApplyBridges(context.Context, []plan.Bridge, bool) error {
	return errors.New("add bridge br100: operation not permitted")
}

// TestAgentLogsWhatFails: a failed links apply, an unsavable cached
// state and a refused report each leave a warning, with component once
// per line; none is dropped.
func TestAgentLogsWhatFails(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "blocker") // a file where the state's directory should be
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	api := refusingReports{&stateAPI{}}
	host := agenttest.NewHost()
	a := New(Config{Host: stateHost, Plan: statePlanOptions(), StateFile: filepath.Join(blocker, "state.json"),
		Logger: slog.New(slog.NewTextHandler(&out, nil))}, api, brokenBridges{host.Links}, host.Firewall, host.DHCP)
	st := hostStates()[1].st
	st.Revision = 3
	api.set(st)
	if err := a.Sync(context.Background(), true); err == nil || !strings.Contains(err.Error(), "operation not permitted") {
		t.Fatalf("sync: %v, want the bridge error", err)
	}
	log := out.String()
	for _, want := range []string{
		`level=WARN msg=sync`, `operation not permitted`,
		`level=WARN msg="cached host state not saved"`,
		`level=WARN msg="report of the applied revision failed; retrying every 2s"`, `503 service unavailable`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		if n := strings.Count(l, "component="); n != 1 {
			t.Errorf("%d components in %q, want 1", n, l)
		}
	}
}
