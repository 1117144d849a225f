package manager_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"novanet/internal/api"
	"novanet/internal/manager"
	"novanet/internal/model"
	"novanet/internal/store"
	"novanet/internal/store/pgtest"
)

var _ api.Backend = (*manager.Manager)(nil)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var admin = model.Scope{Admin: true, ProjectID: "admin"}

type engine struct {
	name string
	url  func(t testing.TB) string
}

var engines = []engine{
	{"sqlite", func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "n.db") }},
	{"postgres", pgtest.Start},
}

// eachEngine runs f against a fresh store on SQLite and PostgreSQL.
func eachEngine(t *testing.T, f func(t *testing.T, st *store.Store)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			st, err := store.Open(context.Background(), e.url(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			f(t, st)
		})
	}
}

func newManager(t testing.TB, st *store.Store, mod func(*manager.Options)) *manager.Manager {
	o := manager.DefaultOptions()
	o.NetworkHost = "net1"
	o.PollInterval = 50 * time.Millisecond
	if mod != nil {
		mod(&o)
	}
	return manager.New(st, o)
}

func mustNetwork(t testing.TB, m *manager.Manager, req model.NetworkCreateRequest) []model.Network {
	t.Helper()
	ns, err := m.CreateNetworks(context.Background(), req)
	if err != nil {
		t.Fatalf("create networks %+v: %v", req, err)
	}
	return ns
}

func dump(t testing.TB, st *store.Store) string {
	t.Helper()
	d, err := st.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}
