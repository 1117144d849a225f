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
		if err := f.revokeAll(ctx, plan.Revocations(*f.last, fw)); err != nil {
			errs = append(errs, err)
		}
	}
	f.last = &fw
	return errors.Join(errs...)
}

// The appliers' incremental paths (plan.Update's Change); an applier
// without one is given the whole plan.
type (
	changeRuleApplier interface {
		ApplyChange(ctx context.Context, fw plan.Firewall, ch plan.Change) error
	}
	changeSetApplier interface {
		ApplyChange(ctx context.Context, want []plan.AddrSet, changes []plan.SetChange) error
	}
	changeGuardApplier interface {
		ApplyChange(want plan.L2Guard, ch plan.GuardChange) error
	}
)

// ApplyChange applies fw, the plan.Update of the firewall applied last,
// from ch: the guard ports, set members and instance chains it names,
// and the conntrack entries the change revokes (plan.ChangeRevocations),
// so one more instance costs the same at 5,000 as at 100. Anything it
// cannot trust (nothing applied yet, the other driver still to retire, a
// full change) goes through Apply.
func (f *InstanceFirewall) ApplyChange(ctx context.Context, fw plan.Firewall, ch plan.Change) error {
	f.mu.Lock()
	if ch.Full || f.last == nil || f.retire != nil {
		f.mu.Unlock()
		return f.Apply(ctx, fw, false)
	}
	defer f.mu.Unlock()
	var errs []error
	var err error
	if g, ok := f.guard.(changeGuardApplier); ok {
		err = g.ApplyChange(fw.Guard, ch.Guard)
	} else {
		err = f.guard.Apply(fw.Guard, false)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("l2 guard: %w", err))
	}
	if f.sets != nil && len(ch.Sets) > 0 {
		if s, ok := f.sets.(changeSetApplier); ok {
			err = s.ApplyChange(ctx, fw.Sets, ch.Sets)
		} else {
			err = f.sets.Ensure(ctx, fw.Sets, false)
		}
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("address sets: %w", err))...)
		}
	}
	if r, ok := f.rules.(changeRuleApplier); ok {
		err = r.ApplyChange(ctx, fw, ch)
	} else {
		err = f.rules.Apply(ctx, fw, false)
	}
	if err != nil {
		// f.last stays: the agent's next apply is a whole one, which
		// revokes from there.
		return errors.Join(append(errs, err)...)
	}
	if err := f.revokeAll(ctx, plan.ChangeRevocations(fw, ch)); err != nil {
		errs = append(errs, err)
	}
	f.last = &fw
	return errors.Join(errs...)
}

func (f *InstanceFirewall) revokeAll(ctx context.Context, revs []plan.Revocation) error {
	if len(revs) == 0 {
		return nil
	}
	filters := make([]conntrack.Filter, len(revs))
	for i, r := range revs {
		filters[i] = conntrack.Filter{Proto: r.Proto, OrigSrc: r.Src, OrigDst: r.Dst, DstPort: r.DstPort}
	}
	n, err := f.revoke(ctx, filters)
	f.log.Info("revoked connections", "filters", len(filters), "entries", n, "err", err)
	if err != nil {
		return fmt.Errorf("conntrack: %w", err)
	}
	return nil
}
