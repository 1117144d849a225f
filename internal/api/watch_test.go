package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"novanet/internal/client"
	"novanet/internal/model"
)

// TestWatchOverHTTP: a boot on host A wakes A's long poll promptly and
// leaves B's asleep.
func TestWatchOverHTTP(t *testing.T) {
	e := newEnv(t, sqliteURL(t))
	ctx := context.Background()
	if _, err := e.admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "net", FixedRangeV4: "10.0.0.0/24", Bridge: "br100", MultiHost: new(true)}); err != nil {
		t.Fatal(err)
	}
	agentA := client.New(e.srv.URL, agentAToken)
	agentB := client.New(e.srv.URL, agentBToken)
	revA, err := agentA.WaitHost(ctx, "host-a", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	revB, err := agentB.WaitHost(ctx, "host-b", 0, 0)
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		rev int64
		at  time.Time
		err error
	}
	wait := func(c *client.Client, host string, after int64, timeout time.Duration) chan result {
		ch := make(chan result, 1)
		go func() {
			rev, err := c.WaitHost(ctx, host, after, timeout)
			ch <- result{rev, time.Now(), err}
		}()
		return ch
	}
	chA := wait(agentA, "host-a", revA, 5*time.Second)
	chB := wait(agentB, "host-b", revB, 2*time.Second)
	time.Sleep(200 * time.Millisecond) // both polls are parked in the server

	select {
	case r := <-chA:
		t.Fatalf("host-a's poll returned before any change: %+v", r)
	case r := <-chB:
		t.Fatalf("host-b's poll returned before any change: %+v", r)
	default:
	}
	start := time.Now()
	if _, err := e.admin.BootInstance(ctx, model.BootRequest{Hostname: "vm1", Host: "host-a", ProjectID: "proj-a"}); err != nil {
		t.Fatal(err)
	}
	bootDone := time.Now()
	r := <-chA
	if r.err != nil || r.rev <= revA {
		t.Fatalf("host-a's poll: rev %d (was %d), err %v", r.rev, revA, r.err)
	}
	// The wake-up is measured from the end of the boot request: the
	// notification, not the allocation, is what this test times.
	if lat := r.at.Sub(bootDone); lat > 100*time.Millisecond {
		t.Errorf("host-a woke %v after the boot returned (boot took %v), want < 100ms", lat, bootDone.Sub(start))
	}
	rb := <-chB
	if rb.err != nil || rb.rev != revB {
		t.Errorf("host-b's poll: rev %d (was %d), err %v; want a timeout with the same revision", rb.rev, revB, rb.err)
	}
	if d := rb.at.Sub(start); d < 1500*time.Millisecond {
		t.Errorf("host-b's poll ended after %v, before its 2s timeout", d)
	}
	hs, err := agentA.HostState(ctx, "host-a")
	if err != nil || hs.Revision < r.rev || len(hs.Networks) == 0 || len(hs.Networks[0].Instances) != 1 {
		t.Errorf("host-a state after the boot: rev %d networks %+v err %v", hs.Revision, hs.Networks, err)
	}
}

// TestInstancesArePaged: /v1/instances answers at most MaxListLimit per
// page and the client walks the pages with markers.
func TestInstancesArePaged(t *testing.T) {
	e := newEnv(t, sqliteURL(t))
	ctx := context.Background()
	if _, err := e.admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "big", FixedRangeV4: "10.0.0.0/20", NetworkSize: 4096, Bridge: "br100", Host: "host-net"}); err != nil {
		t.Fatal(err)
	}
	const n = 2500
	for i := range n {
		if _, err := e.proj.BootInstance(ctx, model.BootRequest{Hostname: "vm", Host: "host-a"}); err != nil {
			t.Fatalf("boot %d: %v", i, err)
		}
	}
	all, err := e.proj.ListInstances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range all {
		seen[d.UUID] = true
	}
	if len(all) != n || len(seen) != n {
		t.Fatalf("listed %d (%d distinct), want %d", len(all), len(seen), n)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/instances?limit=0", nil)
	req.Header.Set("X-Auth-Token", projToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("limit=0: status %d, want 400", resp.StatusCode)
	}
}
