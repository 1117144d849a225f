package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"novanet/internal/store"
	"novanet/internal/store/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func sqliteURL(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "novanet.db") }

func TestSQLite(t *testing.T) { runConformance(t, sqliteURL) }

// A path with URI metacharacters opens exactly that file (a '#' once cut
// the path short and opened another database).
func TestSQLitePathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a#1?b%20c")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "n.db")
	st, err := store.Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the database is not at %s: %v", path, err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "a")); err == nil {
		t.Errorf("a database was opened at the path cut at '#'")
	}
}
