package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"novanet/internal/api"
	"novanet/internal/client"
	"novanet/internal/manager"
	"novanet/internal/model"
	"novanet/internal/store"
)

// countingTransport counts the requests a real client sends.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestRenewalsAreNotForwarded: dnsmasq reports every renewal as "old";
// once the API has recorded a lease, its renewals stay on the host.
func TestRenewalsAreNotForwarded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "novanet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := manager.New(st, manager.DefaultOptions())
	srv := httptest.NewServer(api.New(m, api.Options{Tokens: api.StaticTokens(map[string]api.Principal{
		"admin-token-0123456789": {Role: api.RoleAdmin, ProjectID: "admin"},
		"agent-token-0123456789": {Role: api.RoleAgent, Host: "net"},
	})}))
	defer srv.Close()
	admin := client.New(srv.URL, "admin-token-0123456789")
	if _, err := admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100", Host: "net"}); err != nil {
		t.Fatal(err)
	}
	d, err := admin.BootInstance(ctx, model.BootRequest{Hostname: "vm1", Host: "c1", ProjectID: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	addr, mac := d.FixedIPs[0].Address, d.VIFs[0].MAC

	counter := &countingTransport{}
	agentAPI := client.New(srv.URL, "agent-token-0123456789").WithHTTPClient(&http.Client{Transport: counter})
	a := New(Config{Host: "net"}, agentAPI, nil, nil, nil)
	h := a.Leases()
	go h.Forward(ctx)

	waitLeased := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			f, err := admin.GetFixedIP(ctx, addr)
			if err == nil && f.Leased == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("leased never became %t: %+v %v", want, f, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ev := model.LeaseEvent{Action: model.LeaseAdd, MAC: mac, Address: addr, Hostname: "vm1"}
	if err := h.HandleLease(ctx, ev); err != nil {
		t.Fatal(err)
	}
	waitLeased(true)
	time.Sleep(50 * time.Millisecond)
	sent := counter.n.Load()
	ev.Action = model.LeaseOld
	for range 20 {
		if err := h.HandleLease(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if extra := counter.n.Load() - sent; extra != 0 {
		t.Errorf("20 renewals of a recorded lease sent %d requests to the API", extra)
	}
	ev.Action = model.LeaseDel
	if err := h.HandleLease(ctx, ev); err != nil {
		t.Fatal(err)
	}
	waitLeased(false)
	// After a del, a renewal ("old" after a dnsmasq restart) goes through.
	ev.Action = model.LeaseOld
	if err := h.HandleLease(ctx, ev); err != nil {
		t.Fatal(err)
	}
	waitLeased(true)
}
