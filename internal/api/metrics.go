package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"novanet/internal/model"
	"novanet/internal/version"
)

// Metrics are serve's Prometheus metrics, named as kube-proxy and
// node_exporter name theirs (<namespace>_<subsystem>_<name>_<unit>, totals
// end in _total). docs/OPERATIONS.md lists each with an example alert.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	boots     prometheus.Counter
	deletes   prometheus.Counter
	allocFail *prometheus.CounterVec
}

// NewMetrics registers serve's metrics (and Go's process metrics) on a
// registry of their own.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "novanet_api_requests_total", Help: "API requests by route (the mux pattern), method and HTTP status code.",
	}, []string{"route", "method", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "novanet_api_request_duration_seconds", Help: "API request latency by route and method (watch long polls excluded).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "method"})
	m.boots = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "novanet_instance_boots_total", Help: "Instances whose networking was allocated.",
	})
	m.deletes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "novanet_instance_deletes_total", Help: "Instances whose networking was released.",
	})
	m.allocFail = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "novanet_allocation_failures_total", Help: "Allocations refused for want of addresses (reason exhausted) or by quota, by resource (fixed_ip, floating_ip).",
	}, []string{"resource", "reason"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "novanet_build_info", Help: "Always 1; the labels say which novanet serves.",
	}, []string{"version", "commit", "goversion"})
	v := version.Get()
	build.WithLabelValues(v.Version, v.Commit, v.GoVersion).Set(1)
	m.reg.MustRegister(m.requests, m.latency, m.boots, m.deletes, m.allocFail, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe records one finished request; r.Pattern is the route the mux
// chose ("" for unknown paths, reported as "unmatched").
func (m *Metrics) observe(r *http.Request, status int, d time.Duration) {
	route := r.Pattern
	if route == "" || route == "/" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
	if route != "GET /v1/hosts/{host}/watch" {
		m.latency.WithLabelValues(route, r.Method).Observe(d.Seconds())
	}
}

func (m *Metrics) failed(resource string, err error) {
	switch model.KindOf(err) {
	case model.ErrExhausted:
		m.allocFail.WithLabelValues(resource, "exhausted").Inc()
	case model.ErrQuota:
		m.allocFail.WithLabelValues(resource, "quota").Inc()
	}
}

func (s *Server) metricsRoutes() {
	usage := &usageCollector{b: s.b,
		network: prometheus.NewDesc("novanet_network_addresses", "Fixed addresses per network by state (free, used, reserved).", []string{"network", "bridge", "state"}, nil),
		pool:    prometheus.NewDesc("novanet_floating_pool_addresses", "Floating addresses per pool by state (free, allocated).", []string{"pool", "state"}, nil),
		up:      prometheus.NewDesc("novanet_store_up", "1 when the last scrape could read the store, else 0.", nil, nil),
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(usage)
	h := promhttp.HandlerFor(prometheus.Gatherers{s.metrics.reg, reg}, promhttp.HandlerOpts{ErrorLog: nil})
	s.mux.Handle("GET /metrics", h)
}

// usageCollector reads address counts from the store at scrape time.
type usageCollector struct {
	b                 Backend
	network, pool, up *prometheus.Desc
}

func (c *usageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.network
	ch <- c.pool
	ch <- c.up
}

func (c *usageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	us, err := c.b.AddressUsage(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, u := range us {
		if u.Pool != "" {
			ch <- prometheus.MustNewConstMetric(c.pool, prometheus.GaugeValue, float64(u.Free), u.Pool, "free")
			ch <- prometheus.MustNewConstMetric(c.pool, prometheus.GaugeValue, float64(u.Used), u.Pool, "allocated")
			continue
		}
		for state, n := range map[string]int{"free": u.Free, "used": u.Used, "reserved": u.Reserved} {
			ch <- prometheus.MustNewConstMetric(c.network, prometheus.GaugeValue, float64(n), u.Network, u.Bridge, state)
		}
	}
}

// meteredBackend counts boots, deletes and allocation failures where they
// happen, whichever API (/v1 or /v2.1) asked.
type meteredBackend struct {
	Backend
	m *Metrics
}

func (b meteredBackend) BootInstance(ctx context.Context, scope model.Scope, req model.BootRequest) (model.InstanceDetail, error) {
	d, err := b.Backend.BootInstance(ctx, scope, req)
	if err != nil {
		b.m.failed("fixed_ip", err)
		return d, err
	}
	b.m.boots.Inc()
	return d, nil
}

func (b meteredBackend) DeleteInstance(ctx context.Context, scope model.Scope, uuid string) error {
	err := b.Backend.DeleteInstance(ctx, scope, uuid)
	if err == nil {
		b.m.deletes.Inc()
	}
	return err
}

func (b meteredBackend) AllocateFloatingIP(ctx context.Context, scope model.Scope, pool string) (model.FloatingIP, error) {
	f, err := b.Backend.AllocateFloatingIP(ctx, scope, pool)
	if err != nil {
		b.m.failed("floating_ip", err)
	}
	return f, err
}
