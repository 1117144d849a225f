// Package agent is novanet's per-host reconciler. It watches its host's
// desired state from the API, plans it with the pure planner, and makes
// the kernel match through thin appliers. It is level-triggered: each
// new state is planned whole, and every apply compares the kernel with
// the cached plan, so an agent that was down, restarted or killed at any
// point converges on its next apply. Kernel and file notifications only
// say which part to compare; none of them waits on the API, so drift is
// repaired from the cached state whatever the API is doing.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"novanet/internal/model"
	"novanet/internal/plan"
)

// API is what the agent needs from the novanet API (internal/client).
type API interface {
	HostState(ctx context.Context, host string) (model.HostState, error)
	// WatchHost long-polls for what changed in the host's state since
	// revision after (To == after: nothing did before timeout).
	WatchHost(ctx context.Context, host string, after int64, timeout time.Duration) (model.HostStateDelta, error)
	ReportApplied(ctx context.Context, host string, r model.AppliedReport) error
	RecordLease(ctx context.Context, ev model.LeaseEvent) error
	Leases(ctx context.Context, host, bridge string) ([]model.Lease, error)
}

// Links applies bridges, ports and sysctls.
type Links interface {
	// ApplyBridges: full re-checks every port in the kernel.
	ApplyBridges(ctx context.Context, bridges []plan.Bridge, full bool) error
	ApplySysctls(ctx context.Context, sysctls []plan.Sysctl) error
}

// Firewall applies the rule model. full asks it to re-read the kernel
// instead of trusting what it applied last (drift repair).
type Firewall interface {
	Apply(ctx context.Context, fw plan.Firewall, full bool) error
}

// DHCP supervises dnsmasq instances and sends releases.
type DHCP interface {
	Apply(ctx context.Context, instances []plan.Dnsmasq) error
	Release(ctx context.Context, bridge string, server netip.Addr, mac string, addr netip.Addr) error
}

// Config is the agent's wiring.
type Config struct {
	Host           string
	Plan           plan.Options
	ResyncInterval time.Duration // full resync; default 60s
	MinInterval    time.Duration // minimum time between applies; default 50ms
	// CheckInterval is how often what the kernel cannot report (sysctls
	// such as ip_forward) is re-read; default 500ms. It reads a few /proc
	// files and changes nothing when they match.
	CheckInterval time.Duration
	// FetchTimeout bounds one host state fetch; default 10s. Applying
	// never waits for it: the datapath is driven from the cached state.
	FetchTimeout time.Duration
	// StateFile caches the last host state so a restart while the API is
	// unreachable can still answer dnsmasq's init and repair drift.
	StateFile string
	Logger    *slog.Logger
	Metrics   *Metrics // optional (metrics.go)
}

// Agent reconciles one host. Two loops share its cached state: follow
// talks to the API (long-poll, fetch, report), applyLoop makes the kernel
// match the cached plan. No API call is ever made on the apply path, so
// a hung or partitioned API cannot hold back a local repair.
type Agent struct {
	cfg      Config
	api      API
	links    Links
	firewall Firewall
	dhcp     DHCP
	floating *floatingSync // nil until SetFloating (floating.go)
	cache    *stateCache   // nil without a StateFile
	log      *slog.Logger

	wake    chan struct{} // something is pending
	reports chan struct{} // a report is pending

	mu       sync.Mutex // protects the following
	state    model.HostState
	hasState bool
	plan     plan.Plan
	planErr  error
	hasPlan  bool
	pending  pending
	apiDown  bool // the last API call failed: answer dnsmasq from the cache at once
	applied  int64
	released map[string]bool // mac|ip of releases already sent
	syncs    int
	lastErr  error
	repairs  repairStats
	toReport report
	// reportFailing: the last report failed and said so at warn level;
	// later failures of the same outage go to debug.
	reportFailing bool

	// change is what plan.Update says differs between the plan of
	// revision changeFrom and plan (nil: a whole Build). A light apply
	// uses it when changeFrom is the revision applied last without error.
	change     *plan.Change
	changeFrom int64
}

// New builds an agent.
func New(cfg Config, api API, links Links, fw Firewall, dhcp DHCP) *Agent {
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 60 * time.Second
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = 50 * time.Millisecond
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = 500 * time.Millisecond
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger
	a := &Agent{
		cfg: cfg, api: api, links: links, firewall: fw, dhcp: dhcp,
		log:      log.With("component", "agent", "host", cfg.Host),
		wake:     make(chan struct{}, 1),
		reports:  make(chan struct{}, 1),
		released: map[string]bool{},
	}
	if cfg.StateFile != "" {
		a.cache = newStateCache(cfg.StateFile)
	}
	a.loadCachedState()
	return a
}

// Trigger asks for an apply from the cached plan soon (full: re-read the
// kernel instead of trusting what was applied last). It makes no API
// call: a fetch happens only when the API announces a new revision.
func (a *Agent) Trigger(full bool) {
	if full {
		a.Repair(PartAll|partFull, "full resync requested")
		return
	}
	a.Repair(PartLinks, "")
}

// Repair asks for the given parts to be re-checked against the kernel
// from the cached plan; reason (may be empty) says what was seen, for the
// repair report.
func (a *Agent) Repair(parts Part, reason string) {
	a.mu.Lock()
	a.pending.add(parts, reason, time.Now())
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Run follows the API and reconciles until ctx ends. The first apply is
// full, from the cached state when there is one.
func (a *Agent) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, loop := range []func(context.Context){a.follow, a.reporter, a.checkUnwatchable} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	a.Repair(PartAll|partFull, "agent started")
	resync := time.NewTicker(a.cfg.ResyncInterval)
	defer resync.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-resync.C:
			a.Repair(PartAll|partFull, "periodic resync")
			continue
		case <-a.wake:
		}
		if wait := a.cfg.MinInterval - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		last = time.Now()
		a.applyPending(ctx)
	}
}

// checkUnwatchable asks, every CheckInterval, for a re-read of what sends
// no notification when it changes (sysctls).
func (a *Agent) checkUnwatchable(ctx context.Context) {
	t := time.NewTicker(a.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.Repair(PartSysctls, "")
		}
	}
}

// follow long-polls the API for what changed since the cached revision
// and applies that delta to the cached state, fetching the whole state
// only when it has none or the delta does not fit it; it is the only loop
// that waits on the API.
func (a *Agent) follow(ctx context.Context) {
	backoff := 200 * time.Millisecond
	fetch := true
	for ctx.Err() == nil {
		if fetch {
			if err := a.refresh(ctx); err == nil {
				fetch = false
				backoff = 200 * time.Millisecond
			} else if !a.sleep(ctx, &backoff) {
				return
			}
			continue
		}
		a.mu.Lock()
		cached := a.state
		a.mu.Unlock()
		d, err := a.api.WatchHost(ctx, a.cfg.Host, cached.Revision, 30*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.setAPIDown(true)
			if model.KindOf(err) == model.ErrConflict {
				a.log.Error("the API refuses this agent's host state protocol, or speaks another; datapath kept and served from the cached state until one side is upgraded",
					"err", err, "agent_protocol", model.HostStateProtocol, "retry_in_ms", backoff.Milliseconds())
			} else {
				a.log.Warn("watch failed; datapath kept and repaired from the cached state", "err", err, "retry_in_ms", backoff.Milliseconds())
			}
			if !a.sleep(ctx, &backoff) {
				return
			}
			fetch = true // a revision may have been missed meanwhile
			continue
		}
		a.setAPIDown(false)
		backoff = 200 * time.Millisecond
		if d.Full == nil && d.To == cached.Revision {
			continue // the poll timed out
		}
		if err := a.applyDelta(cached, d); err != nil {
			a.log.Warn("host state delta does not fit the cached state; fetching the whole state", "err", err)
			fetch = true
		}
	}
}

// applyDelta caches old (the cached state) changed by d, plans it and
// asks for it to be applied.
func (a *Agent) applyDelta(old model.HostState, d model.HostStateDelta) error {
	st, err := old.Apply(d)
	if err != nil {
		return err
	}
	a.setStateDelta(st, d)
	a.saveCachedDelta(st, d)
	a.Repair(PartAll|partState, "")
	// The apply runs meanwhile: rewriting the whole cached state now and
	// then delays the next watch, not this change.
	if a.cache != nil && a.cache.compactDue() {
		if err := a.cache.compact(); err != nil {
			a.log.Warn("cached host state not compacted", "file", a.cfg.StateFile, "err", err)
		}
	}
	return nil
}

func (a *Agent) sleep(ctx context.Context, backoff *time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(*backoff):
	}
	*backoff = min(*backoff*2, 5*time.Second)
	return true
}

func (a *Agent) setAPIDown(down bool) {
	a.mu.Lock()
	a.apiDown = down
	a.mu.Unlock()
}

// refresh fetches the host state within FetchTimeout, caches it with its
// plan and asks for it to be applied.
func (a *Agent) refresh(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(ctx, a.cfg.FetchTimeout)
	st, err := a.api.HostState(fctx, a.cfg.Host)
	cancel()
	if err != nil {
		a.setAPIDown(true)
		if ctx.Err() == nil {
			a.log.Warn("fetching host state failed; datapath kept and repaired from the cached state", "err", err)
		}
		return err
	}
	a.setState(st, true)
	a.saveCachedState(st)
	a.Repair(PartAll|partState, "")
	return nil
}

// setState caches st and its plan (planning is pure: done here, once per
// revision, not on every apply).
func (a *Agent) setState(st model.HostState, fresh bool) {
	p, err := plan.Build(st, a.cfg.Plan)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state, a.hasState = st, true
	a.plan, a.planErr, a.hasPlan = p, err, true
	a.change = nil // a whole plan: the next apply compares everything
	if fresh {
		a.apiDown = false
	}
	if err != nil {
		a.log.Error("plan failed", "err", err, "revision", st.Revision)
	}
	for _, w := range p.Warnings {
		a.log.Warn("plan", "warning", w, "revision", st.Revision)
	}
}

// setStateDelta caches st, the state delta d leads to from the cached
// one (st is the cached state's Apply(d)), and plans it incrementally
// when the cached plan is the plan of d.From: plan.Update re-plans only
// what d names, and the next light apply hands each applier only that
// (applyParts). Anything else is planned whole, as setState does.
func (a *Agent) setStateDelta(st model.HostState, d model.HostStateDelta) {
	a.mu.Lock()
	old, prev := a.state, a.plan
	ok := a.hasState && a.hasPlan && a.planErr == nil && d.Full == nil && old.Revision == d.From
	a.mu.Unlock()
	if !ok {
		a.setState(st, true)
		return
	}
	p, ch, err := plan.Update(prev, old, st, d, a.cfg.Plan)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state, a.hasState, a.apiDown = st, true, false
	a.plan, a.planErr, a.hasPlan = p, err, true
	a.change, a.changeFrom = nil, 0
	if err == nil && !ch.Full {
		a.change, a.changeFrom = &ch, old.Revision
	}
	if err != nil {
		a.log.Error("plan failed", "err", err, "revision", st.Revision)
	}
	if ch.Full {
		for _, w := range p.Warnings {
			a.log.Warn("plan", "warning", w, "revision", st.Revision)
		}
	}
}

// Sync fetches the desired state (falling back to the cached one) and
// applies all of it (agent --once, tests). Errors are logged and
// reported to the API.
func (a *Agent) Sync(ctx context.Context, full bool) error {
	ferr := a.refresh(ctx)
	a.mu.Lock()
	has := a.hasState
	a.mu.Unlock()
	if !has {
		a.log.Warn("no host state yet; nothing applied", "err", ferr)
		return ferr
	}
	parts := PartAll | partState
	if full {
		parts |= partFull
	}
	a.Repair(parts, "")
	err := a.applyPending(ctx)
	a.sendReport(ctx)
	if err == nil && ferr != nil {
		return ferr
	}
	return err
}

// applyPending applies what is pending from the cached plan.
func (a *Agent) applyPending(ctx context.Context) error {
	a.mu.Lock()
	pd := a.pending
	a.pending = pending{}
	p, perr, has, rev := a.plan, a.planErr, a.hasPlan, a.state.Revision
	var change *plan.Change
	if pd.parts&partState != 0 {
		if a.change != nil && pd.parts&partFull == 0 && a.changeFrom == a.applied && a.applied != 0 && a.lastErr == nil {
			change = a.change
		}
		a.change = nil
	}
	a.mu.Unlock()
	if pd.parts == 0 || !has {
		return nil
	}
	if perr != nil {
		a.log.Warn("host state not planned; nothing applied", "revision", rev, "err", perr)
		a.queueReport(rev, perr, "", false)
		return perr
	}
	start := time.Now()
	defer a.cfg.Metrics.ObserveSync(pd.parts&partFull != 0, start)
	err := a.applyParts(ctx, p, pd.parts, change)
	done := a.takeChanges()
	a.mu.Lock()
	a.syncs++
	a.lastErr = err
	if err == nil && pd.parts&partState != 0 {
		a.applied = rev
	}
	a.mu.Unlock()
	drift := a.noteRepair(pd, done, start)
	a.queueReport(rev, err, drift, pd.parts&partFull != 0)
	if pd.parts == PartSysctls && len(done) == 0 && err == nil {
		return nil // the 500 ms check found nothing: not worth a line
	}
	lvl := slog.LevelDebug
	switch {
	case err != nil:
		lvl = slog.LevelWarn
	case pd.parts&partFull != 0:
		lvl = slog.LevelInfo
	}
	a.log.Log(ctx, lvl, "sync", "revision", rev, "parts", pd.parts.String(), "changes", len(done),
		"dnsmasq", len(p.Dnsmasq), "duration_ms", float64(time.Since(start).Microseconds())/1000, "err", err)
	return err
}

// apply runs every applier on p as a sync after a new revision does
// (benchmarks): a light one trusts what was applied last.
func (a *Agent) apply(ctx context.Context, p plan.Plan, full bool) error {
	parts := PartAll | partState
	if full {
		parts |= partFull
	}
	return a.applyParts(ctx, p, parts, nil)
}

// applyChange runs every applier on p, the plan.Update of the plan
// applied last, from ch (benchmarks).
func (a *Agent) applyChange(ctx context.Context, p plan.Plan, ch plan.Change) error {
	return a.applyParts(ctx, p, PartAll|partState, &ch)
}

// The appliers' incremental paths; an applier without one is given the
// whole plan.
type (
	portApplier interface {
		ApplyPorts(ctx context.Context, changes []plan.PortChange) error
	}
	firewallChanger interface {
		ApplyChange(ctx context.Context, fw plan.Firewall, ch plan.Change) error
	}
	hostsApplier interface {
		ApplyHosts(ctx context.Context, instances []plan.Dnsmasq, changes []plan.HostsChange) error
	}
)

// applyParts runs the appliers of parts in dependency order. Independent
// steps still run when one fails, so one bad piece does not block the
// rest. A change (light syncs after plan.Update) lets each applier touch
// only the entries it names and trust the rest as last applied; full
// syncs, drift repairs and resyncs pass none and compare everything.
func (a *Agent) applyParts(ctx context.Context, p plan.Plan, parts Part, change *plan.Change) error {
	if change != nil && (change.Full || parts&partFull != 0) {
		change = nil
	}
	var errs []error
	full := parts&partFull != 0
	if parts&PartSysctls != 0 {
		if err := a.links.ApplySysctls(ctx, p.Sysctls); err != nil {
			errs = append(errs, fmt.Errorf("sysctls: %w", err))
		}
	}
	if parts&PartLinks != 0 {
		var err error
		if pa, ok := a.links.(portApplier); ok && change != nil {
			err = pa.ApplyPorts(ctx, change.Ports)
		} else {
			err = a.links.ApplyBridges(ctx, p.Bridges, full)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("links: %w", err))
		}
	}
	if parts&PartFirewall != 0 {
		var err error
		if fc, ok := a.firewall.(firewallChanger); ok && change != nil {
			err = fc.ApplyChange(ctx, p.Firewall, *change)
		} else {
			// A firewall event re-reads the kernel: another program changed it.
			err = a.firewall.Apply(ctx, p.Firewall, full || parts&partState == 0)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("firewall: %w", err))
		}
	}
	if parts&(PartLinks|PartFirewall) != 0 {
		if err := a.applyFloating(ctx, p, full); err != nil {
			errs = append(errs, fmt.Errorf("floating ips: %w", err))
		}
	}
	if parts&PartDHCP != 0 {
		// Releases go before new host entries, so a recycled address is
		// not refused by dnsmasq as "leased to" the deleted instance.
		a.sendReleases(ctx, p.Releases)
		if r, ok := a.dhcp.(interface{ Recheck() }); ok && full {
			r.Recheck() // re-read the host entries, not only what the watch saw
		}
		var err error
		if ha, ok := a.dhcp.(hostsApplier); ok && change != nil {
			err = ha.ApplyHosts(ctx, p.Dnsmasq, change.Hosts)
		} else {
			err = a.dhcp.Apply(ctx, p.Dnsmasq)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("dnsmasq: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (a *Agent) sendReleases(ctx context.Context, rel []plan.Release) {
	live := map[string]bool{}
	for _, r := range rel {
		key := r.MAC + "|" + r.Address.String()
		live[key] = true
		a.mu.Lock()
		done := a.released[key]
		a.mu.Unlock()
		if done {
			continue
		}
		if err := a.dhcp.Release(ctx, r.Bridge, r.Server, r.MAC, r.Address); err != nil {
			a.log.Warn("dhcp release failed; will retry", "bridge", r.Bridge, "address", r.Address, "mac", r.MAC, "err", err)
			continue
		}
		a.log.Info("released lease", "bridge", r.Bridge, "address", r.Address, "mac", r.MAC)
		a.mu.Lock()
		a.released[key] = true
		a.mu.Unlock()
	}
	a.mu.Lock()
	for k := range a.released {
		if !live[k] {
			delete(a.released, k)
		}
	}
	a.mu.Unlock()
}

// cachedLeases answers dnsmasq's init from the last known state when the
// API cannot.
func (a *Agent) cachedLeases(bridge string) []model.Lease {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []model.Lease
	for _, n := range a.state.Networks {
		if n.Network.Bridge != bridge || !n.ServesDHCP {
			continue
		}
		for _, h := range n.DHCPHosts {
			out = append(out, model.Lease{MAC: h.MAC, Address: h.Address, Hostname: h.Hostname})
		}
	}
	return out
}

func (a *Agent) loadCachedState() {
	if a.cache == nil {
		return
	}
	st, replayed, err := a.cache.load()
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("cached host state unreadable; starting without it", "file", a.cfg.StateFile, "err", err)
		}
		return
	}
	if st.Host != a.cfg.Host {
		a.log.Warn("cached host state is another host's; starting without it", "file", a.cfg.StateFile, "cached_host", st.Host)
		return
	}
	if replayed > 0 {
		a.log.Info("cached host state loaded", "file", a.cfg.StateFile, "revision", st.Revision, "deltas_replayed", replayed)
	}
	a.setState(st, false)
}

// saveCachedState writes the whole state (after a whole fetch).
func (a *Agent) saveCachedState(st model.HostState) {
	if a.cache == nil {
		return
	}
	if err := a.cache.saveWhole(st); err != nil {
		// The datapath is unaffected; only a restart while the API is
		// down would start from an older state (or none).
		a.log.Warn("cached host state not saved", "file", a.cfg.StateFile, "revision", st.Revision, "err", err)
	}
}

// saveCachedDelta journals d, which led to st, before it is applied: a
// restart after the apply starts from st.
func (a *Agent) saveCachedDelta(st model.HostState, d model.HostStateDelta) {
	if a.cache == nil {
		return
	}
	if err := a.cache.saveDelta(st, d); err != nil {
		a.log.Warn("cached host state not saved", "file", a.cfg.StateFile, "revision", st.Revision, "err", err)
	}
}
