package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"novanet/internal/client"
	"novanet/internal/model"
	"novanet/internal/store/pgtest"
	"novanet/internal/version"
)

func getJSON(t *testing.T, url string, wantStatus int, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: status %d, want %d", url, resp.StatusCode, wantStatus)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// TestVersionDocuments: GET / lists v2.1 (with novanet's own version) and
// GET /v2.1/ is nova's version document, both without a token, capped at
// the last microversion that served the nova-network proxies.
func TestVersionDocuments(t *testing.T) {
	e := newEnv(t, sqliteURL(t))
	var root struct {
		Versions []struct {
			ID, Status, Version string
			Links               []struct{ Rel, Href string }
		}
		Novanet version.Info
	}
	getJSON(t, e.srv.URL+"/", http.StatusMultipleChoices, &root)
	if root.Novanet != version.Get() {
		t.Errorf("GET / novanet = %+v, want %+v", root.Novanet, version.Get())
	}
	if len(root.Versions) == 0 || root.Versions[0].ID != "v2.1" || root.Versions[0].Version != "2.35" ||
		root.Versions[0].Links[0].Href != e.srv.URL+"/v2.1/" {
		t.Errorf("GET / versions = %+v", root.Versions)
	}
	for _, path := range []string{"/v2.1/", "/v2.1", "/v2/"} {
		var doc struct {
			Version struct {
				ID, Status, Version string
				MinVersion          string                        `json:"min_version"`
				MediaTypes          []struct{ Base, Type string } `json:"media-types"`
			}
		}
		getJSON(t, e.srv.URL+path, 200, &doc)
		if doc.Version.ID != "v2.1" || doc.Version.Status != "CURRENT" || doc.Version.MinVersion != "2.1" ||
			doc.Version.Version != "2.35" || len(doc.Version.MediaTypes) != 1 {
			t.Errorf("GET %s = %+v", path, doc)
		}
	}
}

// TestHostListCarriesAgentVersion: an agent's applied report carries its
// version, which GET /v1/hosts shows with its roles; project tokens are
// refused.
func TestHostListCarriesAgentVersion(t *testing.T) { testHostList(t, sqliteURL(t)) }

func TestHostListCarriesAgentVersionPostgres(t *testing.T) { testHostList(t, pgtest.Start(t)) }

func testHostList(t *testing.T, dbURL string) {
	e := newEnv(t, dbURL)
	if _, err := e.admin.CreateNetworks(context.Background(), model.NetworkCreateRequest{Label: "n", FixedRangeV4: "10.0.0.0/28", Bridge: "br100", Host: "host-a"}); err != nil {
		t.Fatal(err)
	}
	if rows, err := e.admin.ListFixedIPs(context.Background(), "n", true, false); err != nil || len(rows) != 16 {
		t.Fatalf("fixed-ips of a /28: %d rows, %v", len(rows), err)
	}
	ctx := context.Background()
	agent := client.New(e.srv.URL, agentAToken)
	if err := agent.ReportApplied(ctx, "host-a", 0, "dnsmasq: exit 2"); err != nil {
		t.Fatal(err)
	}
	hs, err := e.admin.ListHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].Host != "host-a" || hs[0].Version != version.String() || hs[0].Problem != "dnsmasq: exit 2" ||
		hs[0].LastSeen.IsZero() || len(hs[0].Roles) != 1 || hs[0].Roles[0] != "network" {
		t.Fatalf("hosts = %+v", hs)
	}
	if _, err := e.proj.ListHosts(ctx); err == nil {
		t.Fatal("a project token listed hosts")
	}
}
