package store_test

import (
	"os"
	"path/filepath"
	"testing"

	"novanet/internal/store/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func sqliteURL(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "novanet.db") }

func TestSQLite(t *testing.T) { runConformance(t, sqliteURL) }
