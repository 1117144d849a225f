package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func postIdentity(t *testing.T, url, body string) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.Post(url+"/identity/v3/auth/tokens", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return resp, m
}

// TestIdentityIssuesTokensFileTokens: password auth (the password is a
// tokens-file token) and token auth answer X-Subject-Token with that
// token and a catalog of compute alone at /v2.1; the token then works on
// /v2.1; wrong passwords, other projects and agent tokens are refused in
// Keystone's error shape.
func TestIdentityIssuesTokensFileTokens(t *testing.T) {
	e := newEnv(t, sqliteURL(t))
	pw := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"alice","domain":{"name":"Default"},"password":"` + projToken + `"}}},
		"scope":{"project":{"name":"proj-a","domain":{"name":"Default"}}}}}`
	resp, body := postIdentity(t, e.srv.URL, pw)
	if resp.StatusCode != 201 || resp.Header.Get("X-Subject-Token") != projToken {
		t.Fatalf("password auth: %d %v", resp.StatusCode, body)
	}
	tok := body["token"].(map[string]any)
	catalog := tok["catalog"].([]any)
	if len(catalog) != 1 || catalog[0].(map[string]any)["type"] != "compute" {
		t.Fatalf("catalog = %v", catalog)
	}
	for _, ep := range catalog[0].(map[string]any)["endpoints"].([]any) {
		if ep.(map[string]any)["url"] != e.srv.URL+"/v2.1" {
			t.Fatalf("endpoint = %v", ep)
		}
	}
	if tok["project"].(map[string]any)["id"] != "proj-a" || tok["user"].(map[string]any)["name"] != "alice" {
		t.Fatalf("token = %v", tok)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/v2.1/os-security-groups", nil)
	req.Header.Set("X-Auth-Token", resp.Header.Get("X-Subject-Token"))
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 200 {
		t.Fatalf("issued token on /v2.1: %v %v", r, err)
	}

	resp, _ = postIdentity(t, e.srv.URL, `{"auth":{"identity":{"methods":["token"],"token":{"id":"`+adminToken+`"}}}}`)
	if resp.StatusCode != 201 || resp.Header.Get("X-Subject-Token") != adminToken {
		t.Fatalf("token auth: %d", resp.StatusCode)
	}

	for _, c := range []struct {
		body string
		code int
		want string
	}{
		{strings.Replace(pw, projToken, unknownToken, 1), 401, "not a token of serve's tokens file"},
		{strings.Replace(pw, `"name":"proj-a"`, `"name":"proj-b"`, 1), 401, "belongs to project proj-a"},
		{strings.Replace(strings.Replace(pw, projToken, agentAToken, 1), "proj-a", "admin", 1), 403, "agent tokens"},
		{`{"auth":{"identity":{"methods":["totp"]}}}`, 400, `must be ["password"] or ["token"]`},
		{`{"auth":`, 400, "malformed"},
	} {
		resp, body := postIdentity(t, e.srv.URL, c.body)
		errBody, _ := body["error"].(map[string]any)
		msg, _ := errBody["message"].(string)
		if resp.StatusCode != c.code || !strings.Contains(msg, c.want) || resp.Header.Get("X-Subject-Token") != "" {
			t.Errorf("%s: %d %v; want %d with %q", c.body, resp.StatusCode, body, c.code, c.want)
		}
	}

	var doc struct{ Version struct{ ID, Status string } }
	getJSON(t, e.srv.URL+"/identity/v3", 200, &doc)
	if doc.Version.ID != "v3.14" || doc.Version.Status != "stable" {
		t.Fatalf("GET /identity/v3 = %+v", doc)
	}
}
