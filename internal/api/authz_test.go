package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"novanet/internal/client"
	"novanet/internal/model"
	"novanet/internal/store/pgtest"
)

// Issue 13, items 13 and 14, on both engines.

func runLeaseReporter(t *testing.T, dbURL string) {
	e := newEnv(t, dbURL)
	ctx := context.Background()
	agentA := client.New(e.srv.URL, agentAToken)
	agentB := client.New(e.srv.URL, agentBToken)
	if _, err := e.admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "mh", FixedRangeV4: "10.7.0.0/24", Bridge: "br100", MultiHost: new(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "sh", FixedRangeV4: "10.8.0.0/24", Bridge: "br101", Host: "host-b"}); err != nil {
		t.Fatal(err)
	}
	// Multi-host: host-a's dnsmasq serves the instance booted on host-a.
	d, err := e.proj.BootInstance(ctx, model.BootRequest{Hostname: "vm1", Host: "host-a", Network: "mh"})
	if err != nil {
		t.Fatal(err)
	}
	ev := model.LeaseEvent{Action: model.LeaseAdd, MAC: d.VIFs[0].MAC, Address: d.FixedIPs[0].Address}
	evB := ev
	evB.Host = "host-b"
	if err := agentB.RecordLease(ctx, evB); !model.IsKind(err, model.ErrForbidden) {
		t.Fatalf("host-b's agent reported a lease of host-a's address: %v, want 403", err)
	}
	ev.Host = "host-a"
	if err := agentA.RecordLease(ctx, ev); err != nil {
		t.Fatalf("host-a's agent reporting its own lease: %v", err)
	}
	// Deleted: the address waits for its lease to end, and only host-a
	// may end it.
	if err := e.proj.DeleteInstance(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	evB.Action, ev.Action = model.LeaseDel, model.LeaseDel
	if err := agentB.RecordLease(ctx, evB); !model.IsKind(err, model.ErrForbidden) {
		t.Fatalf("host-b's agent freed host-a's deleted instance's address: %v, want 403", err)
	}
	if f, err := e.admin.GetFixedIP(ctx, d.FixedIPs[0].Address); err != nil || !f.Leased {
		t.Fatalf("after host-b's refused del: %+v, %v; want still leased", f, err)
	}
	if err := agentA.RecordLease(ctx, ev); err != nil {
		t.Fatalf("host-a's agent ending its lease: %v", err)
	}
	// Single-host: only the network host reports.
	s, err := e.proj.BootInstance(ctx, model.BootRequest{Hostname: "vm2", Host: "host-a", Network: "sh"})
	if err != nil {
		t.Fatal(err)
	}
	sev := model.LeaseEvent{Action: model.LeaseAdd, MAC: s.VIFs[0].MAC, Address: s.FixedIPs[0].Address, Host: "host-a"}
	if err := agentA.RecordLease(ctx, sev); !model.IsKind(err, model.ErrForbidden) {
		t.Fatalf("compute host-a's agent reported a lease of network host host-b: %v, want 403", err)
	}
	sev.Host = "host-b"
	if err := agentB.RecordLease(ctx, sev); err != nil {
		t.Fatalf("network host host-b's agent: %v", err)
	}
}

func TestLeaseReporterSQLite(t *testing.T)   { runLeaseReporter(t, sqliteURL(t)) }
func TestLeaseReporterPostgres(t *testing.T) { runLeaseReporter(t, pgtest.Start(t)) }

// TestProjectNetworkViewHidesAdminFields: as nova's network_dict, a
// project sees what a network is, not how the datapath serves it.
func TestProjectNetworkViewHidesAdminFields(t *testing.T) {
	e := newEnv(t, sqliteURL(t))
	ctx := context.Background()
	if _, err := e.admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100", Host: "host-a", BridgeInterface: "eth1"}); err != nil {
		t.Fatal(err)
	}
	admin := []string{"host", "bridge", "bridge_interface", "dhcp_start", "project_id", "multi_host", "vlan", "injected", "mtu", "dhcp_server", "enable_dhcp", "created_at", "kind", "numeric_id"}
	for _, path := range []string{"/v2.1/os-networks", "/v2.1/os-networks/private"} {
		for _, tc := range []struct {
			token string
			admin bool
		}{{projToken, false}, {adminToken, true}} {
			req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
			req.Header.Set("X-Auth-Token", tc.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Networks []map[string]any `json:"networks"`
				Network  map[string]any   `json:"network"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
			}
			n := body.Network
			if n == nil && len(body.Networks) == 1 {
				n = body.Networks[0]
			}
			if n["cidr"] != "10.0.0.0/24" || n["label"] != "private" || n["gateway"] != "10.0.0.1" {
				t.Errorf("GET %s: %v lacks the user fields", path, n)
			}
			for _, k := range admin {
				if _, ok := n[k]; ok != tc.admin {
					t.Errorf("GET %s with admin=%v: field %q present=%v", path, tc.admin, k, ok)
				}
			}
		}
	}
	// The native API hides the same facts from a project.
	nets, err := e.proj.ListNetworks(ctx)
	if err != nil || len(nets) != 1 {
		t.Fatal(nets, err)
	}
	if n := nets[0]; n.Host != "" || n.Bridge != "" || n.BridgeInterface != "" || n.DHCPStart.IsValid() || n.CIDR.String() != "10.0.0.0/24" {
		t.Errorf("GET /v1/networks as a project: %+v", n)
	}
}
