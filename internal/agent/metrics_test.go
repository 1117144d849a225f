package agent

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netns"

	"novanet/internal/datapath/conntrack"
	"novanet/internal/datapath/ipset"
	"novanet/internal/datapath/iptables"
	"novanet/internal/datapath/l2guard"
	"novanet/internal/nettest"
	"novanet/internal/plan"
)

// scrape returns the value of the unlabelled sample name on m's handler.
func scrape(m *Metrics, name string) (string, error) {
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no sample %s in:\n%s", name, rec.Body.String())
}

func mustScrape(t *testing.T, m *Metrics, name string) string {
	v, err := scrape(m, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMetricsReadApplierCountsWhileApplying: scrapes read the firewall
// driver's write count from their own goroutine while the agent applies
// (go test -race proves that safe), and serve the applier's own count.
func TestMetricsReadApplierCountsWhileApplying(t *testing.T) {
	nettest.RequireRoot(t, "iptables-restore", "iptables-save", "ipset", "nft")
	ns := nettest.Netns(t, "nnkmet")
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rules, sets, guard := iptables.New(), ipset.New(), l2guard.New()
	rules.Netns, sets.Netns, guard.NetNS = ns, ns, int(h)
	inst := NewInstanceFirewall(rules, sets, guard, nil)
	inst.revoke = func(context.Context, []conntrack.Filter) (int, error) { return 0, nil }

	m := NewMetrics()
	_, _, fw, _ := m.Instrument(nil, nil, inst, nil, DatapathCounters{FirewallRestores: rules.Restores})
	opts := plan.Options{Host: "compute-1", FlatInterface: "eth2", PublicInterface: "eth0", RoutingSourceIP: netip.MustParseAddr("192.0.2.10")}
	var plans []plan.Firewall
	for _, st := range []int{3, 4} {
		p, err := plan.Build(protectedState(st), opts)
		if err != nil {
			t.Fatal(err)
		}
		plans = append(plans, p.Firewall)
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
				if _, err := scrape(m, "novanet_agent_firewall_writes_total"); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	ctx := context.Background()
	for i := range 6 {
		if err := fw.Apply(ctx, plans[i%2], false); err != nil {
			close(done)
			wg.Wait()
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	close(done)
	wg.Wait()

	if rules.Restores() == 0 {
		t.Fatal("six applies of two different plans ran no iptables-restore")
	}
	if got, want := mustScrape(t, m, "novanet_agent_firewall_writes_total"), fmt.Sprint(rules.Restores()); got != want {
		t.Errorf("novanet_agent_firewall_writes_total = %s, want the applier's %s", got, want)
	}
	// Counters nobody wired read as zero rather than failing the scrape.
	if got := mustScrape(t, m, "novanet_agent_dnsmasq_starts_total"); got != "0" {
		t.Errorf("unwired novanet_agent_dnsmasq_starts_total = %s, want 0", got)
	}
}
