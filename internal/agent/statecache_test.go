package agent

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"novanet/internal/model"
	"novanet/internal/plan"
)

// cacheSteps are states one delta apart, with their deltas. The helpers
// share backing arrays between steps, so each is kept as a JSON copy
// made when it was built.
func cacheSteps(t *testing.T, n int) ([]model.HostState, []model.HostStateDelta) {
	t.Helper()
	st := protectedState(5)
	st.Host, st.Revision = "compute-1", 10
	states := []model.HostState{jsonCopy(t, st)}
	var deltas []model.HostStateDelta
	for i := range n {
		next := addProtected(st, 100+i)
		next.Revision = st.Revision + 1
		if i%3 == 2 {
			next = removeProtected(next, 0)
		}
		deltas = append(deltas, jsonCopy(t, model.Diff(st, next)))
		states = append(states, jsonCopy(t, next))
		st = next
	}
	return states, deltas
}

func jsonCopy[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameState(t *testing.T, what string, got, want model.HostState) {
	t.Helper()
	if d := model.Diff(got, want); got.Revision != want.Revision || !d.Empty() {
		b, _ := json.Marshal(d)
		t.Errorf("%s: loaded revision %d, want revision %d; they differ by %s", what, got.Revision, want.Revision, b)
	}
}

// TestStateCacheReplaysDeltas: the whole state plus the journal's deltas
// load as the last state saved, through a torn last line and a crash
// between a compaction's rename and its journal removal; compaction
// rewrites the whole state and empties the journal.
func TestStateCacheReplaysDeltas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	c := newStateCache(path)
	states, deltas := cacheSteps(t, 5)
	if err := c.saveWhole(states[0]); err != nil {
		t.Fatal(err)
	}
	for i, d := range deltas {
		if err := c.saveDelta(states[i+1], d); err != nil {
			t.Fatal(err)
		}
	}
	got, replayed, err := newStateCache(path).load()
	if err != nil || replayed != len(deltas) {
		t.Fatalf("load: replayed %d (err %v), want %d", replayed, err, len(deltas))
	}
	sameState(t, "after the deltas", got, states[len(states)-1])

	// A crash in the middle of an append leaves a torn line: the states
	// before it load.
	f, err := os.OpenFile(path+".deltas", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"host":"compute-1","from":15,"to":16,"netw`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, _, err = newStateCache(path).load()
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, "with a torn last line", got, states[len(states)-1])

	// A crash after a compaction's rename, before its journal removal:
	// the deltas the whole state already holds are skipped.
	old, err := os.ReadFile(path + ".deltas")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.compact(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".deltas"); !os.IsNotExist(err) {
		t.Errorf("the journal survived a compaction: %v", err)
	}
	if err := os.WriteFile(path+".deltas", old, 0o644); err != nil {
		t.Fatal(err)
	}
	got, replayed, err = newStateCache(path).load()
	if err != nil || replayed != 0 {
		t.Fatalf("load after compaction: replayed %d (err %v), want 0", replayed, err)
	}
	sameState(t, "after a compaction", got, states[len(states)-1])

	// A delta that does not follow the whole state ends the replay.
	if err := c.saveWhole(states[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.saveDelta(states[2], deltas[1]); err != nil {
		t.Fatal(err)
	}
	got, replayed, _ = newStateCache(path).load()
	if replayed != 0 {
		t.Errorf("a delta from revision %d was replayed onto revision %d", deltas[1].From, states[0].Revision)
	}
	sameState(t, "with a gap", got, states[0])
}

// TestStateCacheCompactsAfterItsBound: the journal is compacted once
// compactAfter deltas were saved, and a fresh agent starts from the
// last state, whether or not it was compacted.
func TestStateCacheCompactsAfterItsBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	c := newStateCache(path)
	states, deltas := cacheSteps(t, compactAfter+3)
	if err := c.saveWhole(states[0]); err != nil {
		t.Fatal(err)
	}
	compactions := 0
	for i, d := range deltas {
		if err := c.saveDelta(states[i+1], d); err != nil {
			t.Fatal(err)
		}
		if c.compactDue() {
			if err := c.compact(); err != nil {
				t.Fatal(err)
			}
			compactions++
		}
		if i == len(deltas)-1 || i == compactAfter-1 {
			opts := plan.Options{Host: "compute-1", FlatInterface: "eth2", PublicInterface: "eth0", RoutingSourceIP: netip.MustParseAddr("192.0.2.10")}
			a := New(Config{Host: "compute-1", Plan: opts, StateFile: path}, nil, nil, nil, nil)
			a.mu.Lock()
			got := a.state
			a.mu.Unlock()
			sameState(t, "a fresh agent", got, states[i+1])
		}
	}
	if compactions != 1 {
		t.Errorf("%d compactions over %d deltas, want 1", compactions, len(deltas))
	}
	var whole model.HostState
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &whole); err != nil || whole.Revision != states[compactAfter].Revision {
		t.Errorf("the whole state on disk is revision %d (err %v), want the compacted %d", whole.Revision, err, states[compactAfter].Revision)
	}
	if c.journal != 3 {
		t.Errorf("journal holds %d deltas, want 3", c.journal)
	}
}
