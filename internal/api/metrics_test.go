package api_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"novanet/internal/model"
	"novanet/internal/store/pgtest"
)

// scrape returns the value of every sample on /metrics ("name{labels}"
// as Prometheus prints it).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	sample := regexp.MustCompile(`^([a-z_:]+(?:\{.*\})?) (\S+)$`)
	for _, line := range strings.Split(string(b), "\n") {
		if m := sample.FindStringSubmatch(line); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("sample %q: %v", line, err)
			}
			out[m[1]] = v
		}
	}
	return out
}

// TestMetricsMoveAfterABoot: /metrics (no token) names serve's metrics
// and their values move with a boot, a delete, an exhausted network and
// a floating allocation.
func TestMetricsMoveAfterABoot(t *testing.T) { testMetricsMove(t, sqliteURL(t)) }

func TestMetricsMoveAfterABootPostgres(t *testing.T) { testMetricsMove(t, pgtest.Start(t)) }

func testMetricsMove(t *testing.T, dbURL string) {
	e := newEnv(t, dbURL)
	ctx := context.Background()
	if _, err := e.admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "tiny", FixedRangeV4: "10.0.0.0/29", Bridge: "br100", Host: "host-a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateFloatingRange(ctx, model.FloatingRangeRequest{IPRange: "203.0.113.0/30", Pool: "nova"}); err != nil {
		t.Fatal(err)
	}
	before := scrape(t, e.srv.URL)
	for _, name := range []string{`novanet_build_info`, `novanet_store_up`, `go_goroutines`} {
		found := false
		for k := range before {
			found = found || strings.HasPrefix(k, name)
		}
		if !found {
			t.Errorf("no %s in /metrics", name)
		}
	}
	freeKey := `novanet_network_addresses{bridge="br100",network="tiny",state="free"}`
	usedKey := `novanet_network_addresses{bridge="br100",network="tiny",state="used"}`
	if before[usedKey] != 0 || before[freeKey] == 0 || before[`novanet_floating_pool_addresses{pool="nova",state="free"}`] == 0 {
		t.Fatalf("before: free %v used %v pool %v", before[freeKey], before[usedKey], before[`novanet_floating_pool_addresses{pool="nova",state="free"}`])
	}

	d, err := e.proj.BootInstance(ctx, model.BootRequest{Hostname: "vm1", Host: "host-a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.proj.AllocateFloatingIP(ctx, ""); err != nil {
		t.Fatal(err)
	}
	var exhausted error
	for i := 0; i < 10 && exhausted == nil; i++ {
		_, exhausted = e.proj.BootInstance(ctx, model.BootRequest{Hostname: "fill", Host: "host-a"})
	}
	if exhausted == nil {
		t.Fatal("a /29 never ran out")
	}
	if err := e.proj.DeleteInstance(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, e.srv.URL)
	checks := []struct {
		key  string
		want func(before, after float64) bool
	}{
		{`novanet_instance_boots_total`, func(b, a float64) bool { return a-b >= 2 }},
		{`novanet_instance_deletes_total`, func(b, a float64) bool { return a-b == 1 }},
		{`novanet_allocation_failures_total{reason="exhausted",resource="fixed_ip"}`, func(b, a float64) bool { return a-b == 1 }},
		{usedKey, func(b, a float64) bool { return a > b }},
		{freeKey, func(b, a float64) bool { return a < b }},
		{`novanet_floating_pool_addresses{pool="nova",state="allocated"}`, func(b, a float64) bool { return a == 1 }},
		{`novanet_api_requests_total{code="201",method="POST",route="POST /v1/instances"}`, func(b, a float64) bool { return a-b >= 2 }},
		{`novanet_api_requests_total{code="409",method="POST",route="POST /v1/instances"}`, func(b, a float64) bool { return a-b == 1 }},
		{`novanet_api_request_duration_seconds_count{method="POST",route="POST /v1/instances"}`, func(b, a float64) bool { return a-b >= 3 }},
	}
	for _, c := range checks {
		if !c.want(before[c.key], after[c.key]) {
			t.Errorf("%s: %v -> %v", c.key, before[c.key], after[c.key])
		}
	}
}
