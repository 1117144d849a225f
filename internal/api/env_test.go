package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"novanet/internal/api"
	"novanet/internal/client"
	"novanet/internal/manager"
	"novanet/internal/store"
)

const (
	adminToken   = "admin-token-0123456789"
	projToken    = "proj-a-token-0123456789"
	projBToken   = "proj-b-token-0123456789"
	agentAToken  = "agent-a-token-0123456789"
	agentBToken  = "agent-b-token-0123456789"
	unknownToken = "nobody-token-0123456789"
)

// env is a real server: API over a real manager over a real store.
type env struct {
	srv   *httptest.Server
	st    *store.Store
	m     *manager.Manager // the server's, for calls that bypass HTTP
	admin *client.Client
	proj  *client.Client
	projB *client.Client
}

func sqliteURL(t testing.TB) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "novanet.db")
}

func newEnv(t testing.TB, dbURL string) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("open store %s: %v", dbURL, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	m := manager.New(st, manager.DefaultOptions())
	tokens := api.StaticTokens(map[string]api.Principal{
		adminToken:  {Role: api.RoleAdmin, ProjectID: "admin"},
		projToken:   {Role: api.RoleProject, ProjectID: "proj-a"},
		projBToken:  {Role: api.RoleProject, ProjectID: "proj-b"},
		agentAToken: {Role: api.RoleAgent, Host: "host-a"},
		agentBToken: {Role: api.RoleAgent, Host: "host-b"},
	})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(api.New(m, api.Options{Tokens: tokens, Logger: log}))
	t.Cleanup(srv.Close)
	return &env{
		srv: srv, st: st, m: m,
		admin: client.New(srv.URL, adminToken),
		proj:  client.New(srv.URL, projToken),
		projB: client.New(srv.URL, projBToken),
	}
}
