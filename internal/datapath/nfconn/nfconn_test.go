package nfconn

import (
	"sync"
	"testing"

	"github.com/google/nftables"
)

// TestAddSetNumbersSetsPerApplier: sets without an ID get this applier's
// own numbers (unique within its batches), a set with one keeps it, and
// appliers building batches at once do not share a counter (go test
// -race fails on google/nftables' own).
func TestAddSetNumbersSetsPerApplier(t *testing.T) {
	table := &nftables.Table{Name: "nnk-ids", Family: nftables.TableFamilyIPv4}
	var wg sync.WaitGroup
	ids := make([][]uint32, 2)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var l Lasting
			c, err := nftables.New() // no socket until a flush: nothing is sent
			if err != nil {
				t.Error(err)
				return
			}
			for _, s := range []*nftables.Set{
				{Table: table, Name: "a", KeyType: nftables.TypeIPAddr},
				{Table: table, Name: "b", KeyType: nftables.TypeIPAddr, ID: 42},
				{Table: table, Name: "c", KeyType: nftables.TypeIPAddr},
			} {
				if err := l.AddSet(c, s, nil); err != nil {
					t.Error(err)
					return
				}
				ids[i] = append(ids[i], s.ID)
			}
		}()
	}
	wg.Wait()
	for i, got := range ids {
		if len(got) != 3 || got[0] != 1 || got[1] != 42 || got[2] != 2 {
			t.Errorf("applier %d numbered its sets %v, want [1 42 2]", i, got)
		}
	}
}
