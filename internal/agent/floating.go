package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"novanet/internal/datapath/conntrack"
	"novanet/internal/plan"
)

// FloatingAddrs holds the floating /32s on their interfaces
// (internal/datapath/link.Floating).
type FloatingAddrs interface {
	Apply(ctx context.Context, floats []plan.FloatingAddr, full bool) error
}

// floatingSync applies a plan's floating addresses and, for every mapping
// that went away or moved to another fixed address, deletes its conntrack
// entries: the nat rules are consulted only for a flow's first packet, so
// without this an established connection would keep reaching the old
// instance after a disassociation or a re-association.
type floatingSync struct {
	addrs FloatingAddrs
	// deleteFlows is conntrack.Delete in the agent's namespace.
	deleteFlows func(ctx context.Context, f conntrack.Filter) (int, error)
	// applied maps each floating address to the fixed address of the
	// last applied plan; pending are the mappings whose flows are still
	// to be deleted (retried on the next sync when conntrack failed).
	applied map[netip.Addr]netip.Addr
	pending map[netip.Addr]bool
}

// SetFloating gives the agent its floating address applier. Mappings of
// the cached host state count as applied, so flows of an association
// removed while the agent was down are still deleted.
func (a *Agent) SetFloating(addrs FloatingAddrs) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.floating = &floatingSync{addrs: addrs, deleteFlows: conntrack.Delete,
		applied: map[netip.Addr]netip.Addr{}, pending: map[netip.Addr]bool{}}
	for _, f := range a.state.FloatingIPs {
		a.floating.applied[f.Address] = f.FixedAddress
	}
}

// applyFloating runs after the firewall: the rules of a removed mapping
// are gone by then, so no new packet recreates an entry with the old NAT.
func (a *Agent) applyFloating(ctx context.Context, p plan.Plan, full bool) error {
	a.mu.Lock()
	fs := a.floating
	a.mu.Unlock()
	if fs == nil {
		return nil
	}
	var errs []error
	next := make(map[netip.Addr]netip.Addr, len(p.FloatingAddrs))
	for _, fa := range p.FloatingAddrs {
		next[fa.Address.Addr()] = fa.Fixed
	}
	if err := fs.addrs.Apply(ctx, p.FloatingAddrs, full); err != nil {
		errs = append(errs, err)
	}
	for float, fixed := range fs.applied {
		if next[float] != fixed {
			fs.pending[float] = true
		}
	}
	fs.applied = next
	for float := range fs.pending {
		if err := fs.dropFlows(ctx, float); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(fs.pending, float)
		a.log.Info("deleted the flows of a floating ip's old mapping", "floating", float, "now", next[float])
	}
	return errors.Join(errs...)
}

// dropFlows deletes the flows NATed through float: those addressed to it
// (from outside, from other instances, from this host) and those SNATed
// to it (the instance's own connections out).
func (fs *floatingSync) dropFlows(ctx context.Context, float netip.Addr) error {
	for _, f := range []conntrack.Filter{{OrigDst: float}, {ReplyDst: float}} {
		if _, err := fs.deleteFlows(ctx, f); err != nil {
			return fmt.Errorf("delete the flows of floating ip %s: %w", float, err)
		}
	}
	return nil
}
