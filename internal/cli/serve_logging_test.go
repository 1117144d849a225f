package cli

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"novanet/internal/config"
	"novanet/internal/model"
	"novanet/internal/store"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// openTestStore is a fresh SQLite store in the test's directory.
func openTestStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "novanet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestServeManagerLogsComponentOnce: serve's manager lines name their
// component once (they carried component=serve component=manager
// component=manager when serve's logger was handed on).
func TestServeManagerLogsComponentOnce(t *testing.T) {
	cfg, err := config.Load(config.Sources{Overrides: map[string][]string{"host": {"ctl"}, "my_ip": {"192.0.2.10"}}})
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	base, err := newLogger(&out, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	m := newServeManager(openTestStore(t), cfg, base)
	if _, err := m.CreateNetworks(context.Background(), model.NetworkCreateRequest{
		Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	found := false
	for _, l := range lines {
		if n := strings.Count(l, "component="); n != 1 {
			t.Errorf("%d components in %q, want 1", n, l)
		}
		if strings.Contains(l, `msg="created network"`) {
			found = true
			if !strings.Contains(l, "component=manager") {
				t.Errorf("manager line without component=manager: %q", l)
			}
		}
	}
	if !found {
		t.Fatalf("no created network line in the manager's log:\n%s", out.String())
	}
}

// TestServeManagerLogsComponentOnceJSON: the JSON handler (log_format = json) sees the
// same single component key.
func TestServeManagerLogsComponentOnceJSON(t *testing.T) {
	cfg, err := config.Load(config.Sources{Overrides: map[string][]string{"host": {"ctl"}, "my_ip": {"192.0.2.10"}}})
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	m := newServeManager(openTestStore(t), cfg, slog.New(slog.NewJSONHandler(&out, nil)))
	if _, err := m.CreateNetworks(context.Background(), model.NetworkCreateRequest{
		Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100"}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); strings.Count(got, `"component":"manager"`) != 1 || strings.Count(got, `"component"`) != 1 {
		t.Errorf("want one component key, manager, in %s", got)
	}
}
