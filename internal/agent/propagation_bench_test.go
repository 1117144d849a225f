package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gnft "github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"novanet/internal/api"
	"novanet/internal/client"
	"novanet/internal/datapath/conntrack"
	"novanet/internal/datapath/dnsmasq"
	"novanet/internal/datapath/ipset"
	"novanet/internal/datapath/iptables"
	"novanet/internal/datapath/l2guard"
	"novanet/internal/datapath/link"
	"novanet/internal/datapath/nftables"
	"novanet/internal/manager"
	"novanet/internal/model"
	"novanet/internal/netnsdo"
	"novanet/internal/nettest"
	"novanet/internal/plan"
	"novanet/internal/store"
)

// A cluster for measuring how fast a security group's membership reaches
// every host: the in-process API server over SQLite and one real agent
// per host, each host a network namespace with its own bridge uplink and
// the chosen firewall driver's real appliers. Every host runs one
// instance of the default group, whose rule (tcp 22 from the group
// itself) makes every host hold the group's set.
type propagationCluster struct {
	admin *client.Client
	hosts []string
	set   string // the group's set, ipset or nft
	obs   *memberObserver
	next  netip.Addr // the next address a measured boot takes
}

// memberObserver hears every host's firewall apply and, while a change is
// being measured, reads that host's kernel set once after the apply: the
// first apply after which the kernel agrees with the change is when the
// change reached the host.
type memberObserver struct {
	mu  sync.Mutex
	cur *memberChange
}

type memberChange struct {
	addr    netip.Addr
	present bool // a boot: the address must be in the set; a delete: gone
	reached []time.Time
	left    int
	done    chan struct{}
}

func (o *memberObserver) begin(n int, addr netip.Addr, present bool) *memberChange {
	c := &memberChange{addr: addr, present: present, reached: make([]time.Time, n), left: n, done: make(chan struct{})}
	o.mu.Lock()
	o.cur = c
	o.mu.Unlock()
	return c
}

func (o *memberObserver) end() {
	o.mu.Lock()
	o.cur = nil
	o.mu.Unlock()
}

func (o *memberObserver) applied(host int, at time.Time, inSet func(netip.Addr) bool) {
	o.mu.Lock()
	c := o.cur
	pending := c != nil && c.reached[host].IsZero()
	o.mu.Unlock()
	if !pending || inSet(c.addr) != c.present {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if c.reached[host].IsZero() {
		c.reached[host] = at
		if c.left--; c.left == 0 {
			close(c.done)
		}
	}
}

// observedFirewall is the agent's firewall with the observer's hook: the
// apply's end is timed before the kernel is read, so the read costs the
// measurement nothing.
type observedFirewall struct {
	Firewall
	host  int
	obs   *memberObserver
	inSet func(netip.Addr) bool
}

func (f *observedFirewall) Apply(ctx context.Context, fw plan.Firewall, full bool) error {
	err := f.Firewall.Apply(ctx, fw, full)
	f.obs.applied(f.host, time.Now(), f.inSet)
	return err
}

// procSysctls reads the plan's sysctls on a thread inside the host's
// namespace, as an agent running there reads /proc, and hands them to the
// real applier only when one differs. Without it every read would be an
// `ip netns exec cat` (how the applier reaches another namespace's
// /proc/sys), a cost no agent on its own host pays: 200 processes per
// membership change on 100 hosts.
type procSysctls struct {
	*link.Links
	ns string
}

func (p procSysctls) ApplySysctls(ctx context.Context, sysctls []plan.Sysctl) error {
	same := true
	err := netnsdo.Do(p.ns, func() error {
		for _, s := range sysctls {
			b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(s.Key, ".", "/"))
			if err != nil || strings.Join(strings.Fields(string(b)), " ") != strings.Join(strings.Fields(s.Value), " ") {
				same = false
				return nil
			}
		}
		return nil
	})
	if err == nil && same {
		return nil
	}
	return p.Links.ApplySysctls(ctx, sysctls)
}

// newPropagationCluster brings up n hosts on driver (iptables or
// nftables) and waits until every host's set holds every member.
func newPropagationCluster(tb testing.TB, n int, driver string) *propagationCluster {
	tb.Helper()
	bins := []string{"nft", "conntrack"}
	if driver == "iptables" {
		bins = append(bins, "iptables-restore", "iptables-save", "ipset")
	}
	nettest.RequireRoot(tb, bins...)
	ctx, cancel := context.WithCancel(context.Background())
	dir := tb.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "novanet.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tokens := map[string]api.Principal{"admin-token-0123456789": {Role: api.RoleAdmin, ProjectID: "admin"}}
	hosts := make([]string, n)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("prop%03d", i)
		tokens["agent-token-"+hosts[i]] = api.Principal{Role: api.RoleAgent, Host: hosts[i]}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	hs := httptest.NewServer(api.New(manager.New(st, manager.DefaultOptions()), api.Options{Tokens: api.StaticTokens(tokens), Logger: log}))
	var agents sync.WaitGroup
	// Cleanups run last first: the agents' stop, registered after the
	// namespaces, runs before they are deleted; the server and the store
	// go last.
	tb.Cleanup(func() {
		cancel()
		hs.CloseClientConnections()
		hs.Close()
		st.Close()
	})

	admin := client.New(hs.URL, "admin-token-0123456789")
	if _, err := admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "private", Kind: model.KindFlatDHCP, FixedRangeV4: "10.0.0.0/20",
		NetworkSize: 4096, Bridge: "br100", BridgeInterface: "eth2", Host: "net"}); err != nil {
		tb.Fatal(err)
	}
	members := make([]netip.Addr, 0, n)
	for _, h := range hosts {
		d, err := admin.BootInstance(ctx, model.BootRequest{Hostname: "base-" + h, Host: h, ProjectID: "demo"})
		if err != nil {
			tb.Fatal(err)
		}
		members = append(members, d.FixedIPs[0].Address)
	}
	groups, err := admin.ListSecurityGroups(ctx, true)
	if err != nil {
		tb.Fatal(err)
	}
	var def model.SecurityGroup
	for _, g := range groups {
		if g.ProjectID == "demo" && g.Name == "default" {
			def = g
		}
	}
	if def.ID == 0 {
		tb.Fatalf("no default group of project demo in %+v", groups)
	}
	if _, err := admin.CreateSecurityGroupRule(ctx, model.SecurityGroupRule{GroupID: def.ID, Protocol: "tcp", FromPort: 22, ToPort: 22, SourceGroupID: def.ID}); err != nil {
		tb.Fatal(err)
	}

	c := &propagationCluster{admin: admin, hosts: hosts, set: plan.GroupSetName(def.ID), obs: &memberObserver{}, next: netip.MustParseAddr("10.0.10.1")}
	inSets := make([]func(netip.Addr) bool, n)
	for i, host := range hosts {
		ns := nettest.Netns(tb, "nnprop")
		nettest.Run(tb, ns, "ip", "link", "add", "eth2", "type", "veth", "peer", "name", "eth2peer")
		nettest.Run(tb, ns, "ip", "link", "set", "eth2", "up")
		h, err := netns.GetFromName(ns)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { h.Close() })
		links, err := link.NewInNamespace(ns, log)
		if err != nil {
			tb.Fatal(err)
		}
		guard := l2guard.New()
		guard.NetNS = int(h)
		var fw *InstanceFirewall
		var watch func(context.Context, func(string)) error
		switch driver {
		case "iptables":
			rules, sets := iptables.New(), ipset.New()
			rules.Netns, sets.Netns = ns, ns
			fw, watch = NewInstanceFirewall(rules, sets, guard, log), rules.Watch
			inSets[i] = ipsetProbe(tb, h, c.set)
		case "nftables":
			rules := nftables.New()
			rules.NetNS, rules.Netns = int(h), ns
			fw, watch = NewInstanceFirewall(rules, nil, guard, log), rules.Watch
			inSets[i] = nftSetProbe(tb, h, c.set)
		default:
			tb.Fatalf("firewall driver %q: use iptables or nftables", driver)
		}
		// Revocations delete conntrack entries in the host's namespace,
		// as the agent running there does.
		fw.revoke = func(ctx context.Context, fs []conntrack.Filter) (int, error) {
			var n int
			err := netnsdo.Do(ns, func() (err error) { n, err = conntrack.DeleteAll(ctx, fs); return err })
			return n, err
		}
		dhcp := dnsmasq.New(log, filepath.Join(dir, host))
		dhcp.Netns = ns
		a := New(Config{Host: host, Logger: log, Plan: plan.Options{Host: host, FlatInterface: "eth2"},
			ResyncInterval: time.Hour, CheckInterval: time.Hour, StateFile: filepath.Join(dir, host, "agent-state.json")},
			client.New(hs.URL, "agent-token-"+host).WithTimeout(10*time.Second),
			procSysctls{links, ns}, &observedFirewall{Firewall: fw, host: i, obs: c.obs, inSet: inSets[i]}, dhcp)
		agents.Add(3)
		go func() { defer agents.Done(); _ = links.Watch(ctx, func(r string) { a.Repair(PartLinks, r) }) }()
		go func() { defer agents.Done(); _ = watch(ctx, func(r string) { a.Repair(PartFirewall, r) }) }()
		go func() { defer agents.Done(); _ = a.Run(ctx) }()
	}
	tb.Cleanup(func() { cancel(); agents.Wait() })

	deadline := time.Now().Add(time.Duration(30+n/2) * time.Second)
	for i := range hosts {
		for _, m := range members {
			for !inSets[i](m) {
				if time.Now().After(deadline) {
					tb.Fatalf("%s's set %s lacks %s after setup", hosts[i], c.set, m)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	return c
}

// ipsetProbe tests an address against the host's ipset over netlink.
func ipsetProbe(tb testing.TB, ns netns.NsHandle, set string) func(netip.Addr) bool {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_NETFILTER)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.Close)
	return func(a netip.Addr) bool {
		ok, err := h.IpsetTest(set, &netlink.IPSetEntry{IP: net.IP(a.AsSlice())})
		return err == nil && ok
	}
}

// nftSetProbe looks an address up in the host's nft set of novanet's
// filter table.
func nftSetProbe(tb testing.TB, ns netns.NsHandle, set string) func(netip.Addr) bool {
	conn, err := gnft.New(gnft.WithNetNSFd(int(ns)), gnft.AsLasting())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.CloseLasting() })
	table := &gnft.Table{Name: plan.NFTTableName("filter"), Family: gnft.TableFamilyIPv4}
	var mu sync.Mutex // the probe of one host runs on its agent's apply loop only, but setup polls too
	return func(a netip.Addr) bool {
		mu.Lock()
		defer mu.Unlock()
		s, err := conn.GetSetByName(table, set)
		if err != nil {
			return false
		}
		elems, err := conn.GetSetElements(s)
		if err != nil {
			return false
		}
		want := a.AsSlice()
		return slices.ContainsFunc(elems, func(e gnft.SetElement) bool { return slices.Equal(e.Key, want) })
	}
}

// propagation is one change as every host saw it: each host's delay from
// the API call's return to the first apply after which its kernel set
// agreed (zero when the host was there before the call returned).
type propagation struct {
	perHost      []time.Duration
	beforeReturn int
}

func (p propagation) all() time.Duration { return slices.Max(p.perHost) }

// change boots a new member of the group on host i (boot) or deletes it,
// and waits until every host's set agrees.
func (c *propagationCluster) change(tb testing.TB, i int, boot bool, uuid *string) propagation {
	tb.Helper()
	ctx := context.Background()
	addr := c.next
	if !boot {
		addr = c.next.Prev()
	}
	ch := c.obs.begin(len(c.hosts), addr, boot)
	defer c.obs.end()
	host := c.hosts[i%len(c.hosts)]
	var err error
	if boot {
		var d model.InstanceDetail
		d, err = c.admin.BootInstance(ctx, model.BootRequest{Hostname: fmt.Sprintf("m%d", i), Host: host, ProjectID: "demo", FixedAddress: addr})
		*uuid = d.UUID
		c.next = c.next.Next()
	} else {
		err = c.admin.DeleteInstance(ctx, *uuid)
	}
	returned := time.Now()
	if err != nil {
		tb.Fatal(err)
	}
	select {
	case <-ch.done:
	case <-time.After(30 * time.Second):
		c.obs.mu.Lock()
		var missing []string
		for j, t := range ch.reached {
			if t.IsZero() {
				missing = append(missing, c.hosts[j])
			}
		}
		c.obs.mu.Unlock()
		tb.Fatalf("%s (present=%v) had not reached %d hosts' sets 30 s after the API call: %v", addr, boot, len(missing), missing)
	}
	var p propagation
	for _, t := range ch.reached {
		d := t.Sub(returned)
		if d < 0 {
			d = 0
			p.beforeReturn++
		}
		p.perHost = append(p.perHost, d)
	}
	return p
}

// run makes changes membership changes (boot, delete, boot, ...), each
// on the next host in turn. Each change starts on idle agents: an agent
// spaces its applies MinInterval (50 ms) apart, so a change made right
// after another would also time that spacing.
func (c *propagationCluster) run(tb testing.TB, changes int) []propagation {
	var uuid string
	out := make([]propagation, 0, changes)
	for i := range changes {
		time.Sleep(100 * time.Millisecond)
		out = append(out, c.change(tb, i/2, i%2 == 0, &uuid))
	}
	if changes%2 == 1 { // leave the cluster as it was
		c.change(tb, changes/2, false, &uuid)
	}
	return out
}

func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func summarize(ps []propagation) (all, perHost []time.Duration, before int) {
	for _, p := range ps {
		all = append(all, p.all())
		perHost = append(perHost, p.perHost...)
		before += p.beforeReturn
	}
	return all, perHost, before
}

// BenchmarkGroupMembershipPropagation: a member joins or leaves a
// security group (its instance booted on one host, then deleted) and
// every host protecting the group must change its kernel set. Each change
// is timed from the API call's return until the last host's set agrees;
// p50, p99 and max over the changes are reported (and the per-host p99
// over every host of every change). hosts=1 is the baseline: the same
// path with no fan-out. Each round makes max(b.N, 60) changes, so the
// default -benchtime gives 60.
func BenchmarkGroupMembershipPropagation(b *testing.B) {
	for _, driver := range []string{"iptables", "nftables"} {
		for _, n := range []int{1, 100} {
			b.Run(fmt.Sprintf("driver=%s/hosts=%d", driver, n), func(b *testing.B) {
				c := newPropagationCluster(b, n, driver)
				changes := max(b.N, 60)
				b.ResetTimer()
				ps := c.run(b, changes)
				b.StopTimer()
				all, perHost, before := summarize(ps)
				b.ReportMetric(float64(quantile(all, 0.5).Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(quantile(all, 0.99).Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(slices.Max(all).Microseconds())/1000, "max-ms")
				b.ReportMetric(float64(quantile(perHost, 0.99).Microseconds())/1000, "host-p99-ms")
				b.ReportMetric(float64(changes), "changes")
				var boots, deletes []time.Duration
				for i, d := range all {
					if i%2 == 0 {
						boots = append(boots, d)
					} else {
						deletes = append(deletes, d)
					}
				}
				b.Logf("%s, %d hosts, %d changes: every host's set agreed p50 %v, p99 %v, max %v after the API call returned (boots p50 %v max %v, deletes p50 %v max %v); per host p99 %v; %d host applies came before the call returned",
					driver, n, changes, quantile(all, 0.5), quantile(all, 0.99), slices.Max(all),
					quantile(boots, 0.5), slices.Max(boots), quantile(deletes, 0.5), slices.Max(deletes), quantile(perHost, 0.99), before)
			})
		}
	}
}

// The short variant for CI: 10 hosts, 10 membership changes on each
// driver. Every change must reach every host's kernel set (30 s bound),
// and within 2 s: the target is one second, and a loaded CI machine gets
// twice that before the test calls it a regression.
func TestGroupMembershipPropagation(t *testing.T) {
	for _, driver := range []string{"iptables", "nftables"} {
		t.Run(driver, func(t *testing.T) {
			c := newPropagationCluster(t, 10, driver)
			ps := c.run(t, 10)
			all, perHost, _ := summarize(ps)
			t.Logf("%s, 10 hosts, 10 changes: every host's set agreed p50 %v, max %v after the API call; per host p99 %v",
				driver, quantile(all, 0.5), slices.Max(all), quantile(perHost, 0.99))
			for i, p := range ps {
				if p.all() > 2*time.Second {
					t.Errorf("change %d (boot=%v) reached the last of 10 hosts %v after the API call; the target is 1 s", i, i%2 == 0, p.all())
				}
			}
		})
	}
}
