package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"novanet/internal/datapath/conntrack"
	"novanet/internal/plan"
)

// RuleApplier applies the tables of the rule model (internal/datapath/iptables).
type RuleApplier interface {
	Apply(ctx context.Context, fw plan.Firewall, full bool) error
}

// SetApplier keeps the address sets the rules name (internal/datapath/ipset).
type SetApplier interface {
	// Ensure creates and fills the sets; it destroys none.
	Ensure(ctx context.Context, sets []plan.AddrSet, full bool) error
	// Prune destroys owned sets no longer planned.
	Prune(ctx context.Context, sets []plan.AddrSet) error
}

// GuardApplier programs the L2 anti-spoofing (internal/datapath/l2guard).
type GuardApplier interface {
	Apply(guard plan.L2Guard, full bool) error
}

// InstanceFirewall is the agent's Firewall for the iptables driver: the
// L2 guard, then sets (a new rule must find its set), then the rules, then the sets no
// rule names any more, then the conntrack entries of what the change
// revoked, so an open connection a removed rule or member had allowed
// stops too.
type InstanceFirewall struct {
	rules RuleApplier
	// sets is nil when the rule applier holds the sets itself (nftables).
	sets  SetApplier
	guard GuardApplier
	// retire removes what the other firewall driver left (a host switched
	// between iptables and nftables); nil once it has succeeded.
	retire func(context.Context) error
	// revoke deletes conntrack entries (conntrack.DeleteAll).
	revoke func(context.Context, []conntrack.Filter) (int, error)
	log    *slog.Logger

	mu   sync.Mutex
	last *plan.Firewall // what was applied last; nil after a start
}

// NewInstanceFirewall wires the appliers. sets may be nil: the rule
// applier then keeps the sets its rules name (the nftables driver).
func NewInstanceFirewall(rules RuleApplier, sets SetApplier, guard GuardApplier, log *slog.Logger) *InstanceFirewall {
	if log == nil {
		log = slog.Default()
	}
	return &InstanceFirewall{rules: rules, sets: sets, guard: guard, revoke: conntrack.DeleteAll, log: log.With("component", "firewall")}
}

// RetireOther makes every apply, until one succeeds at it, remove what
// the other firewall driver left, after this driver's rules are in
// place (so the host is never without them).
func (f *InstanceFirewall) RetireOther(retire func(context.Context) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retire = retire
}

// Apply makes the kernel match fw and revokes what it no longer allows.
func (f *InstanceFirewall) Apply(ctx context.Context, fw plan.Firewall, full bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	// The guard does not depend on the rules: a failure of one leaves the
	// other to be applied.
	var errs []error
	if err := f.guard.Apply(fw.Guard, full); err != nil {
		errs = append(errs, fmt.Errorf("l2 guard: %w", err))
	}
	if f.sets != nil {
		if err := f.sets.Ensure(ctx, fw.Sets, full); err != nil {
			// Rules naming a missing set would fail to restore: stop here.
			return errors.Join(append(errs, fmt.Errorf("address sets: %w", err))...)
		}
	}
	if err := f.rules.Apply(ctx, fw, full); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if f.sets != nil {
		if err := f.sets.Prune(ctx, fw.Sets); err != nil {
			errs = append(errs, fmt.Errorf("address sets: %w", err))
		}
	}
	if f.retire != nil {
		if err := f.retire(ctx); err != nil {
			errs = append(errs, fmt.Errorf("removing the other firewall driver's rules: %w", err))
		} else {
			f.log.Info("removed what the other firewall driver left")
			f.retire = nil
		}
	}
	if f.last != nil {
		if revs := plan.Revocations(*f.last, fw); len(revs) > 0 {
			filters := make([]conntrack.Filter, len(revs))
			for i, r := range revs {
				filters[i] = conntrack.Filter{Proto: r.Proto, OrigSrc: r.Src, OrigDst: r.Dst, DstPort: r.DstPort}
			}
			n, err := f.revoke(ctx, filters)
			f.log.Info("revoked connections", "filters", len(filters), "entries", n, "err", err)
			if err != nil {
				errs = append(errs, fmt.Errorf("conntrack: %w", err))
			}
		}
	}
	f.last = &fw
	return errors.Join(errs...)
}
