// Package agent is novanet's per-host reconciler. It watches its host's
// desired state from the API, plans it with the pure planner, and makes
// the kernel match through thin appliers. It is level-triggered: every
// sync recomputes the whole plan, so an agent that was down, restarted or
// killed at any point converges on its next sync. While the API cannot be
// reached it keeps the datapath as it is (dnsmasq keeps answering) and
// repairs drift from the last state it saw.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"novanet/internal/model"
	"novanet/internal/plan"
)

// API is what the agent needs from the novanet API (internal/client).
type API interface {
	HostState(ctx context.Context, host string) (model.HostState, error)
	WaitHost(ctx context.Context, host string, after int64, timeout time.Duration) (int64, error)
	ReportApplied(ctx context.Context, host string, revision int64, problem string) error
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
	MinInterval    time.Duration // minimum time between syncs; default 50ms
	// StateFile caches the last host state so a restart while the API is
	// unreachable can still answer dnsmasq's init and repair drift.
	StateFile string
	Logger    *slog.Logger
	Metrics   *Metrics // optional (metrics.go)
}

// Agent reconciles one host.
type Agent struct {
	cfg      Config
	api      API
	links    Links
	firewall Firewall
	dhcp     DHCP
	log      *slog.Logger

	dirty chan bool // true = full resync

	mu       sync.Mutex // protects the following
	state    model.HostState
	hasState bool
	applied  int64
	released map[string]bool // mac|ip of releases already sent
	syncs    int
	lastErr  error
}

// New builds an agent.
func New(cfg Config, api API, links Links, fw Firewall, dhcp DHCP) *Agent {
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 60 * time.Second
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = 50 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	a := &Agent{
		cfg: cfg, api: api, links: links, firewall: fw, dhcp: dhcp,
		log:      log.With("component", "agent", "host", cfg.Host),
		dirty:    make(chan bool, 1),
		released: map[string]bool{},
	}
	a.loadCachedState()
	return a
}

// Trigger asks for a sync soon (full: re-read the kernel too).
func (a *Agent) Trigger(full bool) {
	select {
	case a.dirty <- full:
	default:
		if full {
			// A pending light sync would lose the full flag: replace it.
			select {
			case <-a.dirty:
			default:
			}
			select {
			case a.dirty <- true:
			default:
			}
		}
	}
}

// Run watches and reconciles until ctx ends. The first sync is full.
func (a *Agent) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.watch(ctx) }()
	defer wg.Wait()

	a.Trigger(true)
	resync := time.NewTicker(a.cfg.ResyncInterval)
	defer resync.Stop()
	var last time.Time
	for {
		var full bool
		select {
		case <-ctx.Done():
			return nil
		case <-resync.C:
			full = true
		case full = <-a.dirty:
		}
		if wait := a.cfg.MinInterval - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		// Coalesce whatever arrived meanwhile.
		select {
		case f := <-a.dirty:
			full = full || f
		default:
		}
		last = time.Now()
		a.Sync(ctx, full)
	}
}

// watch long-polls the API for revisions newer than the one we hold.
func (a *Agent) watch(ctx context.Context) {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		a.mu.Lock()
		known := a.state.Revision
		if !a.hasState {
			known = 0 // any revision the server has is news
		}
		a.mu.Unlock()
		rev, err := a.api.WaitHost(ctx, a.cfg.Host, known, 30*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("watch failed; datapath left as is", "err", err, "retry_in_s", backoff.Seconds())
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 200 * time.Millisecond
		if rev != known {
			a.Trigger(false)
			// Let the sync pick the new state before polling again, so we
			// do not spin on a revision we already know is newer.
			a.waitApplied(ctx, rev)
		}
	}
}

func (a *Agent) waitApplied(ctx context.Context, rev int64) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		a.mu.Lock()
		have := a.hasState && a.state.Revision >= rev
		a.mu.Unlock()
		if have {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Sync fetches the desired state (falling back to the cached one), plans
// and applies it. Errors are logged once here and reported to the API.
func (a *Agent) Sync(ctx context.Context, full bool) error {
	start := time.Now()
	defer a.cfg.Metrics.ObserveSync(full, start)
	st, err := a.api.HostState(ctx, a.cfg.Host)
	fresh := err == nil
	if err != nil {
		a.mu.Lock()
		has := a.hasState
		st = a.state
		a.mu.Unlock()
		if !has {
			a.log.Warn("no host state yet; nothing applied", "err", err)
			return err
		}
		if !full {
			// Keep the datapath as it is until the API is back; only attach
			// taps that appeared meanwhile, from the cached plan.
			if p, perr := plan.Build(st, a.cfg.Plan); perr == nil {
				_ = a.links.ApplyBridges(ctx, p.Bridges, false)
			}
			return err
		}
		a.log.Warn("api unreachable; repairing drift from the cached state", "err", err, "revision", st.Revision)
	} else {
		a.mu.Lock()
		a.state, a.hasState = st, true
		a.mu.Unlock()
		a.saveCachedState(st)
	}

	p, err := plan.Build(st, a.cfg.Plan)
	if err != nil {
		a.report(ctx, fresh, st.Revision, err)
		a.log.Error("plan failed", "err", err, "revision", st.Revision)
		return err
	}
	for _, w := range p.Warnings {
		a.log.Warn("plan", "warning", w, "revision", st.Revision)
	}
	err = a.apply(ctx, p, full)
	a.report(ctx, fresh, st.Revision, err)
	a.mu.Lock()
	a.syncs++
	a.lastErr = err
	if err == nil {
		a.applied = st.Revision
	}
	a.mu.Unlock()
	lvl := slog.LevelDebug
	if full || err != nil {
		lvl = slog.LevelInfo
	}
	a.log.Log(ctx, lvl, "sync", "revision", st.Revision, "full", full, "networks", len(st.Networks),
		"dnsmasq", len(p.Dnsmasq), "duration_s", time.Since(start).Seconds(), "err", err)
	return err
}

// apply runs the appliers in dependency order. Independent steps still
// run when one fails, so one bad piece does not block the rest.
func (a *Agent) apply(ctx context.Context, p plan.Plan, full bool) error {
	var errs []error
	if err := a.links.ApplySysctls(ctx, p.Sysctls); err != nil {
		errs = append(errs, fmt.Errorf("sysctls: %w", err))
	}
	if err := a.links.ApplyBridges(ctx, p.Bridges, full); err != nil {
		errs = append(errs, fmt.Errorf("links: %w", err))
	}
	if err := a.firewall.Apply(ctx, p.Firewall, full); err != nil {
		errs = append(errs, fmt.Errorf("firewall: %w", err))
	}
	// Releases go before new host entries, so a recycled address is not
	// refused by dnsmasq as "leased to" the deleted instance.
	a.sendReleases(ctx, p.Releases)
	if err := a.dhcp.Apply(ctx, p.Dnsmasq); err != nil {
		errs = append(errs, fmt.Errorf("dnsmasq: %w", err))
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

func (a *Agent) report(ctx context.Context, fresh bool, rev int64, err error) {
	if !fresh {
		return
	}
	problem := ""
	if err != nil {
		problem = err.Error()
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if rerr := a.api.ReportApplied(rctx, a.cfg.Host, rev, problem); rerr != nil {
		a.log.Debug("report applied revision failed", "err", rerr)
	}
}

// Status is a snapshot for operators and tests.
type Status struct {
	Revision        int64
	AppliedRevision int64
	Syncs           int
	LastError       string
}

// Status returns the agent's current status.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Status{Revision: a.state.Revision, AppliedRevision: a.applied, Syncs: a.syncs}
	if a.lastErr != nil {
		s.LastError = a.lastErr.Error()
	}
	return s
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
	if a.cfg.StateFile == "" {
		return
	}
	b, err := os.ReadFile(a.cfg.StateFile)
	if err != nil {
		return
	}
	var st model.HostState
	if err := json.Unmarshal(b, &st); err != nil || st.Host != a.cfg.Host {
		return
	}
	a.state, a.hasState = st, true
}

func (a *Agent) saveCachedState(st model.HostState) {
	if a.cfg.StateFile == "" {
		return
	}
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	tmp := a.cfg.StateFile + ".tmp"
	if err := os.MkdirAll(filepath.Dir(a.cfg.StateFile), 0o755); err != nil {
		return
	}
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return
	}
	_ = os.Rename(tmp, a.cfg.StateFile)
}
