package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"testing"

	"novanet/internal/datapath/conntrack"
	"novanet/internal/model"
	"novanet/internal/plan"
)

// heldAddrs records what the agent asked to hold (the real applier is
// tested in internal/datapath/link and end to end in internal/lab).
type heldAddrs struct{ last []plan.FloatingAddr }

func (h *heldAddrs) Apply(_ context.Context, f []plan.FloatingAddr, _ bool) error {
	h.last = f
	return nil
}

func floatingPlan(pairs ...string) plan.Plan {
	var p plan.Plan
	for i := 0; i+1 < len(pairs); i += 2 {
		p.FloatingAddrs = append(p.FloatingAddrs, plan.FloatingAddr{
			InterfaceAddr: plan.InterfaceAddr{Interface: "eth0", Address: netip.PrefixFrom(netip.MustParseAddr(pairs[i]), 32)},
			Fixed:         netip.MustParseAddr(pairs[i+1])})
	}
	return p
}

// Flows are deleted for mappings that went or moved, not for new or
// unchanged ones; a failed deletion is retried on the next sync; a
// restarted agent knows the mappings of its cached state.
func TestFloatingFlowDeletion(t *testing.T) {
	ctx := context.Background()
	a := New(Config{Host: "net1", Logger: slog.New(slog.DiscardHandler)}, nil, nil, nil, nil)
	a.state = model.HostState{Host: "net1", FloatingIPs: []model.HostFloatingIP{
		{Address: netip.MustParseAddr("198.51.100.9"), FixedAddress: netip.MustParseAddr("10.0.0.9")}}}
	held := &heldAddrs{}
	a.SetFloating(held)
	var deleted []conntrack.Filter
	fail := false
	a.floating.deleteFlows = func(_ context.Context, f conntrack.Filter) (int, error) {
		if fail {
			return 0, errors.New("conntrack: no such file")
		}
		deleted = append(deleted, f)
		return 1, nil
	}
	step := func(p plan.Plan, want ...string) {
		t.Helper()
		deleted = nil
		err := a.applyFloating(ctx, p, false)
		if fail != (err != nil) {
			t.Fatalf("applyFloating: %v", err)
		}
		var got []string
		for _, f := range deleted {
			if f.OrigDst.IsValid() {
				got = append(got, "orig-dst "+f.OrigDst.String())
			} else {
				got = append(got, "reply-dst "+f.ReplyDst.String())
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("deleted %v, want %v", got, want)
		}
		if !slices.Equal(held.last, p.FloatingAddrs) {
			t.Errorf("held %v, want %v", held.last, p.FloatingAddrs)
		}
	}
	// The cached mapping .9 is gone from the first plan.
	step(floatingPlan("198.51.100.3", "10.0.0.2"), "orig-dst 198.51.100.9", "reply-dst 198.51.100.9")
	step(floatingPlan("198.51.100.3", "10.0.0.2", "198.51.100.4", "10.0.0.3"))
	// .3 moves to another instance.
	step(floatingPlan("198.51.100.3", "10.0.0.5", "198.51.100.4", "10.0.0.3"), "orig-dst 198.51.100.3", "reply-dst 198.51.100.3")
	// .4 goes while conntrack fails: retried on the next sync.
	fail = true
	step(floatingPlan("198.51.100.3", "10.0.0.5"))
	fail = false
	step(floatingPlan("198.51.100.3", "10.0.0.5"), "orig-dst 198.51.100.4", "reply-dst 198.51.100.4")
	step(floatingPlan("198.51.100.3", "10.0.0.5"))
}
