package agent

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"novanet/internal/api"
	"novanet/internal/client"
	"novanet/internal/datapath/dnsmasq"
	"novanet/internal/datapath/iptables"
	"novanet/internal/datapath/link"
	"novanet/internal/manager"
	"novanet/internal/model"
	"novanet/internal/nettest"
	"novanet/internal/plan"
	"novanet/internal/store"
)

// hangable answers like h until hang is set; then, like a SIGSTOPped
// serve, it accepts requests and never answers them.
type hangable struct {
	h       http.Handler
	hang    atomic.Bool
	release chan struct{} // closed when the test ends
}

func (s *hangable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.hang.Load() {
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
		return
	}
	s.h.ServeHTTP(w, r)
}

// TestLocalRepairsNeedNoAPI: a compute agent with real appliers in a
// namespace. A tap appearing is attached with no HTTP request at all;
// with the API hung, a tap pulled out of the bridge, a flushed chain and
// a removed uplink are still repaired within the second, and dnsmasq's
// init is answered from the cache at once.
func TestLocalRepairsNeedNoAPI(t *testing.T) {
	nettest.RequireRoot(t, "iptables", "iptables-restore", "iptables-save")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "novanet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := manager.New(st, manager.DefaultOptions())
	srv := &hangable{h: api.New(m, api.Options{Tokens: api.StaticTokens(map[string]api.Principal{
		"admin-token-0123456789": {Role: api.RoleAdmin, ProjectID: "admin"},
		"agent-token-0123456789": {Role: api.RoleAgent, Host: "c1"},
	})}), release: make(chan struct{})}
	hs := httptest.NewServer(srv)
	defer func() {
		cancel()
		close(srv.release)
		hs.CloseClientConnections()
		hs.Close()
	}()
	admin := client.New(hs.URL, "admin-token-0123456789")
	if _, err := admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24",
		Bridge: "br100", BridgeInterface: "eth2", Host: "net"}); err != nil {
		t.Fatal(err)
	}
	d, err := admin.BootInstance(ctx, model.BootRequest{Hostname: "vm1", Host: "c1", ProjectID: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	tap := d.VIFs[0].Device

	ns := nettest.Netns(t, "nnlocal")
	nettest.Run(t, ns, "ip", "link", "add", "eth2", "type", "veth", "peer", "name", "eth2peer")
	nettest.Run(t, ns, "ip", "link", "set", "eth2", "up")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	links, err := link.NewInNamespace(ns, log)
	if err != nil {
		t.Fatal(err)
	}
	fw := iptables.New()
	fw.Netns = ns
	dhcp := dnsmasq.New(log, t.TempDir())
	dhcp.Netns = ns
	counter := &countingTransport{}
	agentAPI := client.New(hs.URL, "agent-token-0123456789").WithHTTPClient(&http.Client{Transport: counter}).WithTimeout(time.Second)
	a := New(Config{Host: "c1", Logger: log, Plan: plan.Options{Host: "c1", FlatInterface: "eth2"},
		ResyncInterval: time.Hour, FetchTimeout: time.Second}, agentAPI, links, fw, dhcp)
	go func() { _ = links.Watch(ctx, func(r string) { a.Repair(PartLinks, r) }) }()
	go func() { _ = fw.Watch(ctx, func(r string) { a.Repair(PartFirewall, r) }) }()
	go func() { _ = a.Run(ctx) }()

	within := func(what string, d time.Duration, ok func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > d {
				t.Fatalf("%s: not within %s", what, d)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(start)
	}
	has := func(args []string, want string) func() bool {
		return func() bool {
			out, _ := nettest.Cmd(ns, args...).CombinedOutput()
			return strings.Contains(string(out), want)
		}
	}
	within("bridge up with eth2", 5*time.Second, has([]string{"ip", "link", "show", "eth2"}, "master br100"))
	within("first revision applied", 5*time.Second, func() bool { return a.Status().AppliedRevision > 0 })
	time.Sleep(300 * time.Millisecond) // the long poll is parked now

	sent := counter.n.Load()
	nettest.Run(t, ns, "ip", "link", "add", tap, "type", "veth", "peer", "name", "vm1eth0")
	took := within("new tap attached", 3*time.Second, has([]string{"ip", "link", "show", tap}, "master br100"))
	time.Sleep(200 * time.Millisecond)
	if extra := counter.n.Load() - sent; extra != 0 {
		t.Errorf("a tap appearing sent %d HTTP requests; want none", extra)
	}
	t.Logf("tap attached %s after it appeared, no HTTP request", took.Round(time.Millisecond))

	// No feedback loop: the appliers' own changes notify too, and once
	// converged an idle second changes nothing and restores nothing.
	links.TakeChanges()
	fw.TakeChanges()
	time.Sleep(time.Second)
	if ch := append(links.TakeChanges(), fw.TakeChanges()...); len(ch) != 0 {
		t.Errorf("idle for a second, the agent changed %q; want nothing", ch)
	}

	// The API hangs; local repairs go on.
	srv.hang.Store(true)
	for _, f := range []struct {
		name   string
		inject []string
		check  func() bool
	}{
		{"tap unbridged", []string{"ip", "link", "set", tap, "nomaster"}, has([]string{"ip", "link", "show", tap}, "master br100")},
		{"uplink unbridged", []string{"ip", "link", "set", "eth2", "nomaster"}, has([]string{"ip", "link", "show", "eth2"}, "master br100")},
		{"FORWARD flushed", []string{"iptables", "-F", "FORWARD"}, has([]string{"iptables", "-S", "FORWARD"}, "-j nova-filter-top")},
	} {
		before := a.Status().Repairs
		nettest.Run(t, ns, f.inject...)
		took := within(f.name+" repaired with the API hung", 3*time.Second, f.check)
		within(f.name+" counted", time.Second, func() bool { return a.Status().Repairs > before })
		t.Logf("%s: repaired in %s with the API hung; last drift: %s", f.name, took.Round(time.Millisecond), a.Status().LastDrift)
	}
	start := time.Now()
	if _, err := a.Leases().Leases(ctx, "br100"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("dnsmasq init waited %s on the hung API", took)
	}
}
