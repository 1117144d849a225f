package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"novanet/internal/client"
	"novanet/internal/model"
)

// An agent naming another host state protocol is refused on every host
// resource with a 409 that names both versions and says what to upgrade;
// the answer names the server's protocol.
func TestHostProtocolRefused(t *testing.T) {
	e := newEnv(t, sqliteURL(t))
	for _, path := range []string{"/v1/hosts/host-a/state", "/v1/hosts/host-a/watch?after=0&timeout=0", "/v1/hosts/host-a/applied"} {
		method := http.MethodGet
		var body io.Reader
		if strings.HasSuffix(path, "applied") {
			method, body = http.MethodPost, strings.NewReader(`{"revision":1}`)
		}
		req, _ := http.NewRequest(method, e.srv.URL+path, body)
		req.Header.Set("X-Auth-Token", agentAToken)
		req.Header.Set(model.HostProtocolHeader, "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("%s %s with protocol 1: %d, want 409", method, path, resp.StatusCode)
		}
		for _, w := range []string{"protocol 1", "server speaks 2", "upgrade the older side"} {
			if !strings.Contains(string(msg), w) {
				t.Errorf("%s %s with protocol 1: %s, want it to name %q", method, path, msg, w)
			}
		}
		if got := resp.Header.Get(model.HostProtocolHeader); got != "2" {
			t.Errorf("%s %s answers protocol %q, want 2", method, path, got)
		}
	}
	// The client speaks the server's protocol: the watch hands it a delta.
	d, err := client.New(e.srv.URL, agentAToken).WatchHost(context.Background(), "host-a", 0, 0)
	if err != nil || d.Host != "host-a" {
		t.Fatalf("watch of a same-protocol agent: %+v, %v", d, err)
	}
}

// The client refuses a server that names no protocol (protocol 1) or
// another one, naming both versions, as a conflict the agent reports.
func TestClientRefusesOtherHostProtocol(t *testing.T) {
	for _, answer := range []string{"", "3"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if answer != "" {
				w.Header().Set(model.HostProtocolHeader, answer)
			}
			if r.Header.Get(model.HostProtocolHeader) != "2" {
				t.Errorf("the client sent protocol %q, want 2", r.Header.Get(model.HostProtocolHeader))
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"revision":1,"host":"h"}`)
		}))
		c := client.New(srv.URL, agentAToken)
		_, err := c.HostState(context.Background(), "h")
		_, werr := c.WatchHost(context.Background(), "h", 0, 0)
		srv.Close()
		want := "protocol " + answer
		if answer == "" {
			want = "(it speaks 1)"
		}
		for _, err := range []error{err, werr} {
			if model.KindOf(err) != model.ErrConflict || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "agent speaks 2") || !strings.Contains(err.Error(), "upgrade") {
				t.Errorf("against a server answering protocol %q: %v, want a conflict naming %q, the agent's 2 and what to upgrade", answer, err, want)
			}
		}
	}
}
