// Package manager is novanet's network manager: it carves networks,
// allocates and releases fixed and floating addresses, keeps security
// groups, and computes each host's desired state (model.HostState) from
// the store. Every change runs in one store transaction that also bumps
// the revision of exactly the hosts whose state it alters; WaitHost
// wakes on those bumps (in-process at once, from other server processes
// sharing PostgreSQL by polling). The manager knows nothing of Linux.
package manager

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"novanet/internal/model"
	"novanet/internal/store"
)

// Options are the server-side nova.conf options the manager follows.
type Options struct {
	// NetworkHost is the default single-host network host (network_host).
	NetworkHost                string
	DHCPDomain                 string        // dhcp_domain
	DHCPLeaseTime              int           // dhcp_lease_time, seconds
	ForceDHCPRelease           bool          // force_dhcp_release
	FixedIPDisassociateTimeout time.Duration // fixed_ip_disassociate_timeout
	AllowSameNetTraffic        bool          // allow_same_net_traffic
	AutoAssignFloatingIP       bool          // auto_assign_floating_ip
	DefaultFloatingPool        string        // default_floating_pool
	// PublicInterface is the default interface of floating ranges.
	PublicInterface         string // public_interface
	QuotaFloatingIPs        int    // quota_floating_ips; negative = unlimited
	QuotaSecurityGroups     int    // quota_security_groups per project; negative = unlimited
	QuotaSecurityGroupRules int    // quota_security_group_rules per group; negative = unlimited
	CreateUniqueMACAttempts int    // create_unique_mac_address_attempts
	// FlatNetworkBridge is the bridge of flat/flatdhcp networks created
	// without one (flat_network_bridge; "" = the request must name one).
	FlatNetworkBridge       string
	DefaultAvailabilityZone string // default_availability_zone (metadata)
	// The defaults of network create for what a request leaves empty, as
	// nova's create_networks took them from nova.conf.
	FixedRange  netip.Prefix // fixed_range; invalid = the request must give one
	NumNetworks int          // num_networks (1)
	NetworkSize int          // network_size (256; the whole range if smaller)
	// MultiHost makes networks created without a host multi-host
	// (multi_host; a request naming a host stays single-host).
	MultiHost bool
	// FlatNetworkDNS is dns1 of networks created without one
	// (flat_network_dns; invalid = none, guests use their dnsmasq).
	FlatNetworkDNS netip.Addr
	// PeriodicInterval is how often RunPeriodic runs its tasks (10s).
	PeriodicInterval time.Duration
	// PollInterval is how often WaitHost re-reads the store for changes
	// made by other server processes (300ms).
	PollInterval time.Duration
	Logger       *slog.Logger
}

// DefaultOptions returns nova's defaults.
func DefaultOptions() Options {
	return Options{
		NetworkHost:                "",
		DHCPDomain:                 model.DefaultDHCPDomain,
		DHCPLeaseTime:              model.DefaultDHCPLeaseTime,
		ForceDHCPRelease:           false,
		FixedIPDisassociateTimeout: 600 * time.Second,
		AllowSameNetTraffic:        true,
		AutoAssignFloatingIP:       false,
		DefaultFloatingPool:        "nova",
		PublicInterface:            "eth0",
		QuotaFloatingIPs:           10,
		QuotaSecurityGroups:        10,
		QuotaSecurityGroupRules:    20,
		CreateUniqueMACAttempts:    5,
		NumNetworks:                1,
		NetworkSize:                256,
		PeriodicInterval:           10 * time.Second,
		PollInterval:               300 * time.Millisecond,
	}
}

// Manager implements the API's backend over a store.
type Manager struct {
	st   *store.Store
	opts Options
	log  *slog.Logger

	mu       sync.Mutex // protects the following
	watchers map[string]chan struct{}
	// agentVersions caches what ReportAgentVersion last wrote per host.
	agentVersions map[string]string
}

// New returns a manager over st. Zero numeric and string option fields
// take their defaults; booleans are taken as given, so start from
// DefaultOptions().
func New(st *store.Store, opts Options) *Manager {
	d := DefaultOptions()
	if opts.DHCPDomain == "" {
		opts.DHCPDomain = d.DHCPDomain
	}
	if opts.DHCPLeaseTime <= 0 {
		opts.DHCPLeaseTime = d.DHCPLeaseTime
	}
	if opts.FixedIPDisassociateTimeout <= 0 {
		opts.FixedIPDisassociateTimeout = d.FixedIPDisassociateTimeout
	}
	if opts.DefaultFloatingPool == "" {
		opts.DefaultFloatingPool = d.DefaultFloatingPool
	}
	if opts.PublicInterface == "" {
		opts.PublicInterface = d.PublicInterface
	}
	if opts.CreateUniqueMACAttempts <= 0 {
		opts.CreateUniqueMACAttempts = d.CreateUniqueMACAttempts
	}
	if opts.QuotaFloatingIPs == 0 {
		opts.QuotaFloatingIPs = d.QuotaFloatingIPs
	}
	if opts.QuotaSecurityGroups == 0 {
		opts.QuotaSecurityGroups = d.QuotaSecurityGroups
	}
	if opts.QuotaSecurityGroupRules == 0 {
		opts.QuotaSecurityGroupRules = d.QuotaSecurityGroupRules
	}
	if opts.NumNetworks <= 0 {
		opts.NumNetworks = d.NumNetworks
	}
	if opts.NetworkSize <= 0 {
		opts.NetworkSize = d.NetworkSize
	}
	if opts.PeriodicInterval <= 0 {
		opts.PeriodicInterval = d.PeriodicInterval
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = d.PollInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{st: st, opts: opts, log: opts.Logger.With("component", "manager"), watchers: map[string]chan struct{}{}}
}

// Options returns the effective options.
func (m *Manager) Options() Options { return m.opts }

// Close releases nothing today; it exists so callers need not change when
// the manager grows background state.
func (m *Manager) Close() error { return nil }

// change collects the hosts a transaction bumped and what changed in
// each one's state (the change log's scopes, changelog.go).
type change struct {
	hosts  []string
	revs   map[string][]int64         // the revisions each host got in this transaction
	scopes map[string]map[string]bool // host -> scopes; none recorded = scopeAll
}

// bump moves the revisions of hosts inside tx. Call it before other
// writes: it takes the host rows' locks in a fixed order. What changed
// is said with touch (or the helpers of changelog.go); a host bumped
// without a scope gets the whole state on its next watch.
func (c *change) bump(ctx context.Context, tx *store.Tx, hosts ...string) error {
	revs, err := tx.BumpHostRevisions(ctx, hosts...)
	if c.revs == nil {
		c.revs = map[string][]int64{}
	}
	for h, r := range revs {
		c.hosts = append(c.hosts, h)
		c.revs[h] = append(c.revs[h], r)
	}
	return err
}

// update runs fn in a write transaction, records its change log in the
// same transaction and, once committed, wakes the watchers of the hosts
// it bumped.
func (m *Manager) update(ctx context.Context, fn func(tx *store.Tx, c *change) error) error {
	var c *change
	err := m.st.Update(ctx, func(tx *store.Tx) error {
		c = &change{}
		if err := fn(tx, c); err != nil {
			return err
		}
		return c.record(ctx, tx)
	})
	if err == nil && c != nil {
		m.notify(c.hosts...)
	}
	return constraintConflict(err)
}

// constraintConflict turns a constraint the database enforced into a 409.
// The manager checks before it writes, under the locks the decision
// needs; a violation that still gets through means a concurrent change
// the checks could not see (the same uuid booted twice at once, say), and
// the client's answer is to look again, not a 500 with the database's
// text in it.
func constraintConflict(err error) error {
	if err == nil || model.KindOf(err) != 0 {
		return err
	}
	if store.IsUniqueViolation(err) || store.IsForeignKeyViolation(err) {
		return model.Errorf(model.ErrConflict, "the request conflicts with a change made at the same time (a name, address or object it names was taken or removed meanwhile): read the current state and retry")
	}
	return err
}

func (m *Manager) view(ctx context.Context, fn func(tx *store.Tx) error) error {
	return m.st.View(ctx, fn)
}

func (m *Manager) watchChan(host string) chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch, ok := m.watchers[host]
	if !ok {
		ch = make(chan struct{})
		m.watchers[host] = ch
	}
	return ch
}

func (m *Manager) notify(hosts ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range hosts {
		if ch, ok := m.watchers[h]; ok {
			close(ch)
			delete(m.watchers, h)
		}
	}
}

// allHosts lists every known host plus extra, for changes that alter
// every host's state (the fixed ranges in the cluster options).
func allHosts(ctx context.Context, tx *store.Tx, extra ...string) ([]string, error) {
	hs, err := tx.ListHosts(ctx)
	if err != nil {
		return nil, err
	}
	out := append([]string(nil), extra...)
	for _, h := range hs {
		out = append(out, h.Name)
	}
	return out, nil
}
