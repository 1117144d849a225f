package lab_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"novanet/internal/lab"
)

// agentMetrics scrapes the agent of host (metrics_listen 127.0.0.1:9775
// in the host's namespace) and returns the samples by name{labels}.
func agentMetrics(t *testing.T, l *lab.Lab, host string) map[string]float64 {
	t.Helper()
	ns, err := l.Namespace(host)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := lab.In(ns, "busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:9775/metrics")
		if err == nil {
			out = b
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scrape the agent of %s: %v", host, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	m := map[string]float64{}
	sample := regexp.MustCompile(`^([a-z_:]+(?:\{.*\})?) (\S+)$`)
	for _, line := range strings.Split(out, "\n") {
		if s := sample.FindStringSubmatch(line); s != nil {
			v, _ := strconv.ParseFloat(s[2], 64)
			m[s[1]] = v
		}
	}
	return m
}

// TestAgentMetricsMoveAfterABoot: every agent serves /metrics with the
// sync, programming-latency, dnsmasq and lease metrics, and booting a VM
// moves them: the compute applies the new revision (programming
// latency observed), the controller's dnsmasq leases it (a lease event).
func TestAgentMetricsMoveAfterABoot(t *testing.T) {
	t.Setenv("NOVANET_METRICS_LISTEN", "127.0.0.1:9775") // each agent on its own namespace's loopback
	l := up(t, fastOptions())
	// Wait for the first full syncs (the agents just started).
	full := `novanet_agent_sync_duration_seconds_count{type="full"}`
	var ctl0, cmp0 map[string]float64
	for deadline := time.Now().Add(20 * time.Second); ; {
		ctl0, cmp0 = agentMetrics(t, l, "controller"), agentMetrics(t, l, "compute-1")
		if cmp0[full] >= 1 && ctl0["novanet_agent_dnsmasq_starts_total"] >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("compute-1 full syncs %v, controller dnsmasq starts %v; want both >= 1 (the controller runs the network's dnsmasq)",
				cmp0[full], ctl0["novanet_agent_dnsmasq_starts_total"])
		}
		time.Sleep(200 * time.Millisecond)
	}
	found := false
	for k, v := range cmp0 {
		found = found || strings.HasPrefix(k, "novanet_build_info{") && v == 1
	}
	if !found {
		t.Errorf("compute-1's agent has no novanet_build_info")
	}

	boot(t, l, "vm1", "compute-1")
	lease := `novanet_agent_lease_events_total{action="add",result="ok"}`
	prog := "novanet_agent_network_programming_duration_seconds_count"
	light := `novanet_agent_sync_duration_seconds_count{type="light"}`
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctl, cmp := agentMetrics(t, l, "controller"), agentMetrics(t, l, "compute-1")
		ok := ctl[lease] > ctl0[lease] && cmp[prog] > cmp0[prog] && cmp[light] > cmp0[light]
		if ok {
			if cmp["novanet_agent_network_programming_duration_seconds_sum"] <= 0 {
				t.Errorf("programming latency sum %v", cmp["novanet_agent_network_programming_duration_seconds_sum"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a boot: controller lease events %v -> %v; compute-1 programming count %v -> %v, light syncs %v -> %v",
				ctl0[lease], ctl[lease], cmp0[prog], cmp[prog], cmp0[light], cmp[light])
		}
		time.Sleep(200 * time.Millisecond)
	}
}
