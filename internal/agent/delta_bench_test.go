package agent

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"novanet/internal/api"
	"novanet/internal/client"
	"novanet/internal/datapath/ipset"
	"novanet/internal/datapath/iptables"
	"novanet/internal/datapath/l2guard"
	"novanet/internal/datapath/nftables"
	"novanet/internal/manager"
	"novanet/internal/model"
	"novanet/internal/nettest"
	"novanet/internal/plan"
	"novanet/internal/store"
)

// BenchmarkConvergeFromAPI: one more instance on a host already serving
// n, measured from the API's commit of the boot to the new dnsmasq host
// entry: the watch, the transfer and decode of the answer, planning and
// the light apply, against a real server (API, manager, SQLite store)
// over HTTP and the real appliers in a namespace with a real dnsmasq.
// path=delta takes the watch's delta and applies it to the cached state;
// path=full is the fetch path before host state deltas (the watch's
// revision, then the whole state fetched and decoded).
//
// driver=rules is the iptables rules driver alone, as first measured;
// driver=iptables and driver=nftables are the instance firewall the
// agent runs for each firewall_driver (rules, source-group sets, the L2
// guard and the revocation diff).
func BenchmarkConvergeFromAPI(b *testing.B) {
	nettest.RequireRoot(b, "dnsmasq", "iptables-restore", "iptables-save", "ipset", "nft")
	for _, n := range []int{100, 1000, 5000} {
		srv := newBenchServer(b, n)
		for _, driver := range []string{"rules", "iptables", "nftables"} {
			for _, path := range []string{"delta", "full"} {
				b.Run(fmt.Sprintf("instances=%d/driver=%s/path=%s", n, driver, path), func(b *testing.B) {
					srv.converge(b, driver, path == "full")
				})
			}
		}
	}
}

// benchFirewall is the firewall applier of a driver (see
// BenchmarkConvergeFromAPI), acting on the calling thread's namespace.
func benchFirewall(driver string, log *slog.Logger) Firewall {
	switch driver {
	case "iptables":
		return NewInstanceFirewall(iptables.New(), ipset.New(), l2guard.New(), log)
	case "nftables":
		return NewInstanceFirewall(nftables.New(), nil, l2guard.New(), log)
	}
	return iptables.New()
}

type benchServer struct {
	m    *manager.Manager
	api  *client.Client
	boot int
}

const benchHost = "compute-1"

func newBenchServer(b *testing.B, n int) *benchServer {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "novanet.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	m := manager.New(st, manager.DefaultOptions())
	srv := httptest.NewServer(api.New(m, api.Options{
		Tokens: api.StaticTokens(map[string]api.Principal{"bench-admin-token-0123": {Role: api.RoleAdmin, ProjectID: "admin"}}),
		Logger: slog.New(slog.DiscardHandler)}))
	b.Cleanup(srv.Close)
	if _, err := m.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/16", NetworkSize: 65536,
		Bridge: "br100", MultiHost: new(true)}); err != nil {
		b.Fatal(err)
	}
	s := &benchServer{m: m, api: client.New(srv.URL, "bench-admin-token-0123")}
	for range n {
		s.bootOne(b)
	}
	return s
}

func (s *benchServer) bootOne(b *testing.B) {
	s.boot++
	if _, err := s.m.BootInstance(context.Background(), model.Scope{Admin: true, ProjectID: "admin"},
		model.BootRequest{ProjectID: "p1", Hostname: fmt.Sprintf("vm-%d", s.boot), Host: benchHost}); err != nil {
		b.Fatal(err)
	}
}

func (s *benchServer) converge(b *testing.B, driver string, fullFetch bool) {
	ctx := context.Background()
	// The appliers run on this thread, inside the namespace; HTTP dials
	// run on the transport's own threads (the server's loopback in the
	// test's namespace).
	dir, links, dhcp, leave := benchHostNamespace(b, "nnd-conv")
	defer leave()
	quiet := slog.New(slog.DiscardHandler)
	defer func() { _ = dhcp.Apply(context.Background(), nil) }()
	opts := plan.Options{Host: benchHost, FlatInterface: "eth2", PublicInterface: "eth2",
		RoutingSourceIP: netip.MustParseAddr("192.0.2.10"), NetworksPath: dir, DHCPBridge: "/bin/true"}
	a := New(Config{Host: benchHost, Plan: opts, Logger: quiet, StateFile: filepath.Join(dir, "state.json")}, nil, links, benchFirewall(driver, quiet), dhcp)
	st, err := s.api.HostState(ctx, benchHost)
	if err != nil {
		b.Fatal(err)
	}
	a.setState(st, true)
	a.Repair(PartAll|partState|partFull, "bench start")
	if err := a.applyPending(ctx); err != nil {
		b.Fatal(err)
	}
	var last model.HostState
	var watching, planning, saving, applying, compacting time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		s.bootOne(b)
		b.StartTimer()
		t0 := time.Now()
		a.mu.Lock()
		cached := a.state
		a.mu.Unlock()
		d, err := s.api.WatchHost(ctx, benchHost, cached.Revision, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if fullFetch {
			whole, err := s.api.HostState(ctx, benchHost)
			if err != nil {
				b.Fatal(err)
			}
			a.setState(whole, true)
			last = whole
		} else {
			next, err := cached.Apply(d)
			if err != nil {
				b.Fatal(err)
			}
			if d.Full != nil {
				b.Fatalf("the watch sent the whole state for one boot")
			}
			a.setStateDelta(next, d)
			last = next
		}
		t2 := time.Now()
		// As the follow loop: the state is saved for a restart while the
		// API is down before it is applied.
		if fullFetch {
			a.saveCachedState(last)
		} else {
			a.saveCachedDelta(last, d)
		}
		t3 := time.Now()
		a.Repair(PartAll|partState, "")
		if err := a.applyPending(ctx); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		watching, planning, saving, applying = watching+t1.Sub(t0), planning+t2.Sub(t1), saving+t3.Sub(t2), applying+t4.Sub(t3)
		// The follow loop compacts the journal while the apply runs; it
		// delays the next watch, not this change: timed apart.
		b.StopTimer()
		if a.cache.compactDue() {
			if err := a.cache.compact(); err != nil {
				b.Fatal(err)
			}
			compacting += time.Since(t4)
		}
		b.StartTimer()
	}
	b.StopTimer()
	// Where the time goes: the watch (its HTTP round trip and the
	// server's answer), fetching/decoding/applying the state and
	// planning, saving the cached state, and the appliers.
	b.ReportMetric(float64(watching.Microseconds())/float64(b.N)/1000, "watch-ms/op")
	b.ReportMetric(float64(planning.Microseconds())/float64(b.N)/1000, "fetch+plan-ms/op")
	b.ReportMetric(float64(saving.Microseconds())/float64(b.N)/1000, "save-ms/op")
	b.ReportMetric(float64(applying.Microseconds())/float64(b.N)/1000, "apply-ms/op")
	b.ReportMetric(float64(compacting.Microseconds())/float64(b.N)/1000, "compact-ms/op")
	newest := last.Networks[0].Instances
	mac := newest[len(newest)-1].MAC
	for _, in := range newest {
		if in.Hostname == fmt.Sprintf("vm-%d", s.boot) {
			mac = in.MAC
		}
	}
	if !hostsEntryExists(dir, mac) {
		b.Errorf("no dnsmasq host entry for the last instance's MAC %s under %s", mac, dir)
	}
}

func hostsEntryExists(dir, mac string) bool {
	found := false
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return nil
		}
		if data, err := os.ReadFile(path); err == nil && strings.Contains(string(data), mac) {
			found = true
		}
		return nil
	})
	return found
}
