package agent

import (
	"context"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"novanet/internal/model"
	"novanet/internal/plan"
	"novanet/internal/version"
)

// Metrics are one agent's Prometheus metrics, named as kube-proxy names
// its sync metrics. They are gathered by decorating the agent's API and
// appliers (Instrument) plus one call in Sync, so the reconcile loop itself
// knows nothing about them.
type Metrics struct {
	reg         *prometheus.Registry
	syncs       *prometheus.HistogramVec
	programming prometheus.Histogram
	failures    *prometheus.CounterVec
	drift       *prometheus.CounterVec
	leases      *prometheus.CounterVec

	mu       sync.Mutex          // protects the following
	seen     map[int64]time.Time // revision -> when this agent first learnt of it
	latest   int64
	counters DatapathCounters
}

// DatapathCounters read the appliers' own counts at scrape time, from the
// scrape's goroutine while the agent applies: each must be safe to call
// concurrently with its applier (dnsmasq.Supervisor's Starts and Reloads,
// iptables.Firewall's Restores and nftables.Firewall's Transactions are).
// A nil func reads as zero.
type DatapathCounters struct {
	// DnsmasqStarts and DnsmasqReloads count dnsmasq starts and SIGHUPs.
	DnsmasqStarts, DnsmasqReloads func() int64
	// FirewallRestores counts the firewall driver's kernel writes:
	// iptables-restore runs or nftables netlink transactions.
	FirewallRestores func() int64
}

// NewMetrics builds an agent's metrics on a registry of their own.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), seen: map[int64]time.Time{}}
	buckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m.syncs = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "novanet_agent_sync_duration_seconds", Help: "Time one sync took (plan and apply), by type: full (re-reads the kernel, drift repair) or light.",
		Buckets: buckets,
	}, []string{"type"})
	m.programming = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "novanet_agent_network_programming_duration_seconds", Help: "From the API announcing a new revision of this host's state (watch or fetch) to the agent applying it without error.",
		Buckets: buckets,
	})
	m.failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "novanet_agent_apply_failures_total", Help: "Failed applies by applier (sysctls, links, firewall, dnsmasq, release).",
	}, []string{"applier"})
	m.drift = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "novanet_agent_drift_repairs_total", Help: "Repairs of drift (someone else changed what the plan says), by part: sysctls, links, firewall, dhcp.",
	}, []string{"applier"})
	dnsStarts := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "novanet_agent_dnsmasq_starts_total", Help: "dnsmasq processes the agent started (first starts, restarts after an exit or an argv change).",
	}, m.datapathCount(func(c DatapathCounters) func() int64 { return c.DnsmasqStarts }))
	dnsReloads := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "novanet_agent_dnsmasq_reloads_total", Help: "SIGHUPs sent to dnsmasq for removed or changed host entries.",
	}, m.datapathCount(func(c DatapathCounters) func() int64 { return c.DnsmasqReloads }))
	fwWrites := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "novanet_agent_firewall_writes_total", Help: "Writes of the firewall driver's rule tables: iptables-restore runs (iptables) or netlink transactions (nftables), failed ones included.",
	}, m.datapathCount(func(c DatapathCounters) func() int64 { return c.FirewallRestores }))
	m.leases = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "novanet_agent_lease_events_total", Help: "dnsmasq lease events forwarded to the API, by action (add, old, del) and result (ok, error).",
	}, []string{"action", "result"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "novanet_build_info", Help: "Always 1; the labels say which novanet runs."},
		[]string{"version", "commit", "goversion"})
	v := version.Get()
	build.WithLabelValues(v.Version, v.Commit, v.GoVersion).Set(1)
	m.reg.MustRegister(m.syncs, m.programming, m.failures, m.drift, dnsStarts, dnsReloads, fwWrites, m.leases, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// ObserveRepair counts one repair of drift in part; nil-safe.
func (m *Metrics) ObserveRepair(part string) {
	if m == nil {
		return
	}
	m.drift.WithLabelValues(part).Inc()
}

// ObserveSync records one sync's duration.
func (m *Metrics) ObserveSync(full bool, start time.Time) {
	if m == nil {
		return
	}
	t := "light"
	if full {
		t = "full"
	}
	m.syncs.WithLabelValues(t).Observe(time.Since(start).Seconds())
}

// Instrument wraps the agent's API and appliers so their calls feed the
// metrics, and reads the appliers' own counts through c at each scrape.
func (m *Metrics) Instrument(api API, links Links, fw Firewall, dhcp DHCP, c DatapathCounters) (API, Links, Firewall, DHCP) {
	m.mu.Lock()
	m.counters = c
	m.mu.Unlock()
	return meteredAPI{api, m}, meteredLinks{links, m}, meteredFirewall{fw, m}, meteredDHCP{dhcp, m}
}

// datapathCount reads the counter pick chooses at scrape time; the
// applier counts since it was made, which is what a Prometheus counter
// wants (it starts at zero with the process).
func (m *Metrics) datapathCount(pick func(DatapathCounters) func() int64) func() float64 {
	return func() float64 {
		m.mu.Lock()
		read := pick(m.counters)
		m.mu.Unlock()
		if read == nil {
			return 0
		}
		return float64(read())
	}
}

// revision notes that the API announced rev.
func (m *Metrics) revision(rev int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rev > m.latest {
		m.latest = rev
		if _, ok := m.seen[rev]; !ok {
			m.seen[rev] = time.Now()
		}
	}
}

// applied observes the programming latency of every announced revision up
// to rev.
func (m *Metrics) applied(rev int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for r, at := range m.seen {
		if r <= rev {
			m.programming.Observe(time.Since(at).Seconds())
			delete(m.seen, r)
		}
	}
}

type meteredAPI struct {
	API
	m *Metrics
}

func (a meteredAPI) HostState(ctx context.Context, host string) (model.HostState, error) {
	st, err := a.API.HostState(ctx, host)
	if err == nil {
		a.m.revision(st.Revision)
	}
	return st, err
}

func (a meteredAPI) WatchHost(ctx context.Context, host string, after int64, timeout time.Duration) (model.HostStateDelta, error) {
	d, err := a.API.WatchHost(ctx, host, after, timeout)
	if err == nil && d.To != after {
		a.m.revision(d.To)
	}
	return d, err
}

func (a meteredAPI) ReportApplied(ctx context.Context, host string, r model.AppliedReport) error {
	if r.Problem == "" {
		a.m.applied(r.Revision)
	}
	return a.API.ReportApplied(ctx, host, r)
}

func (a meteredAPI) RecordLease(ctx context.Context, ev model.LeaseEvent) error {
	err := a.API.RecordLease(ctx, ev)
	result := "ok"
	if err != nil {
		result = "error"
	}
	a.m.leases.WithLabelValues(string(ev.Action), result).Inc()
	return err
}

type meteredLinks struct {
	Links
	m *Metrics
}

func (l meteredLinks) ApplyBridges(ctx context.Context, bridges []plan.Bridge, full bool) error {
	err := l.Links.ApplyBridges(ctx, bridges, full)
	if err != nil {
		l.m.failures.WithLabelValues("links").Inc()
	}
	return err
}

func (l meteredLinks) ApplySysctls(ctx context.Context, sysctls []plan.Sysctl) error {
	err := l.Links.ApplySysctls(ctx, sysctls)
	if err != nil {
		l.m.failures.WithLabelValues("sysctls").Inc()
	}
	return err
}

type meteredFirewall struct {
	Firewall
	m *Metrics
}

func (f meteredFirewall) Apply(ctx context.Context, fw plan.Firewall, full bool) error {
	err := f.Firewall.Apply(ctx, fw, full)
	if err != nil {
		f.m.failures.WithLabelValues("firewall").Inc()
		return err
	}
	return nil
}

type meteredDHCP struct {
	DHCP
	m *Metrics
}

func (d meteredDHCP) Apply(ctx context.Context, instances []plan.Dnsmasq) error {
	err := d.DHCP.Apply(ctx, instances)
	if err != nil {
		d.m.failures.WithLabelValues("dnsmasq").Inc()
	}
	return err
}

func (d meteredDHCP) Release(ctx context.Context, bridge string, server netip.Addr, mac string, addr netip.Addr) error {
	err := d.DHCP.Release(ctx, bridge, server, mac, addr)
	if err != nil {
		d.m.failures.WithLabelValues("release").Inc()
	}
	return err
}
