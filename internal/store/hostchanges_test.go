package store_test

import (
	"context"
	"testing"

	"novanet/internal/store"
	"novanet/internal/store/pgtest"
)

func TestSQLiteHostChanges(t *testing.T)   { testHostChanges(t, sqliteURL) }
func TestPostgresHostChanges(t *testing.T) { testHostChanges(t, pgtest.Start) }

// The change log is written in the bump's transaction, read back by
// revision range with the number of revisions it covers, dropped with a
// rolled-back transaction, and pruned relative to each host's revision.
func testHostChanges(t *testing.T, open opener) {
	ctx := context.Background()
	st := openStore(t, open(t))
	bump := func(scopes map[string][]string) map[string]int64 {
		t.Helper()
		var revs map[string]int64
		err := st.Update(ctx, func(tx *store.Tx) error {
			var hosts []string
			for h := range scopes {
				hosts = append(hosts, h)
			}
			var err error
			if revs, err = tx.BumpHostRevisions(ctx, hosts...); err != nil {
				return err
			}
			var cs []store.HostChange
			for h, ss := range scopes {
				for _, s := range ss {
					cs = append(cs, store.HostChange{Host: h, Revision: revs[h], Scope: s})
				}
			}
			return tx.InsertHostChanges(ctx, cs)
		})
		if err != nil {
			t.Fatal(err)
		}
		return revs
	}
	if r := bump(map[string][]string{"a": {"vif:1:m1"}, "b": {"all"}}); r["a"] != 1 || r["b"] != 1 {
		t.Fatalf("first bump revisions %v, want 1 each", r)
	}
	bump(map[string][]string{"a": {"vif:1:m2", "group:3", "vif:1:m2"}})
	// A failed transaction leaves neither the bump nor its log.
	if err := st.Update(ctx, func(tx *store.Tx) error {
		revs, err := tx.BumpHostRevisions(ctx, "a")
		if err != nil {
			return err
		}
		if err := tx.InsertHostChanges(ctx, []store.HostChange{{Host: "a", Revision: revs["a"], Scope: "all"}}); err != nil {
			return err
		}
		return errRollback
	}); err != errRollback {
		t.Fatal(err)
	}
	var cs []store.HostChange
	var covered int
	read := func(host string, from, to int64) {
		t.Helper()
		if err := st.View(ctx, func(tx *store.Tx) error {
			var err error
			cs, covered, err = tx.HostChanges(ctx, host, from, to)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	read("a", 0, 2)
	want := []store.HostChange{{"a", 1, "vif:1:m1"}, {"a", 2, "group:3"}, {"a", 2, "vif:1:m2"}}
	if covered != 2 || len(cs) != len(want) {
		t.Fatalf("log of a (0,2]: %v covering %d revisions, want %v covering 2", cs, covered, want)
	}
	for i := range want {
		if cs[i] != want[i] {
			t.Fatalf("log of a (0,2]: %v, want %v", cs, want)
		}
	}
	if rev, err := st.Revision(ctx, "a"); err != nil || rev != 2 {
		t.Fatalf("revision of a = %d, %v; want 2 (the rolled-back bump undone)", rev, err)
	}
	read("a", 1, 2)
	if covered != 1 || len(cs) != 2 {
		t.Fatalf("log of a (1,2]: %v covering %d, want 2 rows of revision 2", cs, covered)
	}
	for range 3 {
		bump(map[string][]string{"a": {"floating:192.0.2.1"}})
	}
	var pruned int64
	if err := st.Update(ctx, func(tx *store.Tx) error {
		var err error
		pruned, err = tx.PruneHostChanges(ctx, 2)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// a is at 5: revisions 1..3 go (4 rows), b (at 1) keeps its row.
	if pruned != 4 {
		t.Errorf("pruned %d rows, want 4", pruned)
	}
	read("a", 0, 5)
	if covered != 2 {
		t.Errorf("after pruning the log of a covers %d revisions, want 2 (4 and 5)", covered)
	}
	read("b", 0, 1)
	if covered != 1 || cs[0].Scope != "all" {
		t.Errorf("log of b after pruning: %v, want its one row", cs)
	}
}

var errRollback = rollbackError{}

type rollbackError struct{}

func (rollbackError) Error() string { return "roll back" }
