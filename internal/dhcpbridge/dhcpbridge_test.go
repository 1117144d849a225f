package dhcpbridge

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"novanet/internal/model"
)

// recorder is a Handler that keeps what it was given.
type recorder struct {
	mu     sync.Mutex
	events []model.LeaseEvent
	bridge string
}

func (r *recorder) HandleLease(_ context.Context, ev model.LeaseEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) Leases(_ context.Context, bridge string) ([]model.Lease, error) {
	r.mu.Lock()
	r.bridge = bridge
	r.mu.Unlock()
	return []model.Lease{
		{MAC: "fa:16:3e:00:00:01", Address: netip.MustParseAddr("10.0.0.3"), Hostname: "vm1"},
		{MAC: "fa:16:3e:00:00:02", Address: netip.MustParseAddr("10.0.0.4")},
	}, nil
}

func (r *recorder) LeaseTime() time.Duration { return 300 * time.Second }

func startServer(t testing.TB, h Handler) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = Serve(ctx, ln, h); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	t.Setenv(SocketEnv, path)
	return path
}

func TestEventsReachTheHandler(t *testing.T) {
	rec := &recorder{}
	startServer(t, rec)
	for _, args := range [][]string{
		{"add", "FA:16:3E:00:00:01", "10.0.0.3", "vm1"},
		{"old", "fa:16:3e:00:00:01", "10.0.0.3"},
		{"del", "fa:16:3e:00:00:01", "10.0.0.3", "vm1"},
		{"add", "fa:16:3e:00:00:01", "fd00::3"}, // IPv6: ignored
		{"tftp", "1234", "10.0.0.3", "/file"},   // not ours: ignored
	} {
		var out, errb bytes.Buffer
		if code := Main(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
	}
	want := []model.LeaseEvent{
		{Action: model.LeaseAdd, MAC: "fa:16:3e:00:00:01", Address: netip.MustParseAddr("10.0.0.3"), Hostname: "vm1"},
		{Action: model.LeaseOld, MAC: "fa:16:3e:00:00:01", Address: netip.MustParseAddr("10.0.0.3")},
		{Action: model.LeaseDel, MAC: "fa:16:3e:00:00:01", Address: netip.MustParseAddr("10.0.0.3"), Hostname: "vm1"},
	}
	if len(rec.events) != len(want) {
		t.Fatalf("events = %+v", rec.events)
	}
	for i := range want {
		if rec.events[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, rec.events[i], want[i])
		}
	}
}

func TestInitPrintsLeasesInDnsmasqFormat(t *testing.T) {
	rec := &recorder{}
	startServer(t, rec)
	t.Setenv(BridgeEnv, "br100")
	var out, errb bytes.Buffer
	before := time.Now().Unix()
	if code := Main([]string{"init"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || rec.bridge != "br100" {
		t.Fatalf("init printed %q for bridge %q", out.String(), rec.bridge)
	}
	f := strings.Fields(lines[0])
	if len(f) != 5 || f[1] != "fa:16:3e:00:00:01" || f[2] != "10.0.0.3" || f[3] != "vm1" || f[4] != "*" {
		t.Errorf("line %q", lines[0])
	}
	var exp int64
	for _, c := range f[0] {
		exp = exp*10 + int64(c-'0')
	}
	if exp < before+299 || exp > before+302 {
		t.Errorf("expiry %d not now+300", exp)
	}
	if f := strings.Fields(lines[1]); f[3] != "*" {
		t.Errorf("no-name lease %q, want * as hostname", lines[1])
	}
}

func TestBadInputsAndMissingAgent(t *testing.T) {
	t.Setenv(SocketEnv, filepath.Join(t.TempDir(), "nobody.sock"))
	for _, args := range [][]string{
		{},
		{"add"},
		{"add", "not-a-mac", "10.0.0.3"},
		{"frobnicate"},
		{"add", "fa:16:3e:00:00:01", "10.0.0.3"}, // no agent listening
	} {
		var out, errb bytes.Buffer
		if code := Main(args, &out, &errb); code == 0 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want failure with a message", args, code, errb.String())
		}
	}
}

func TestSecondListenerIsRefused(t *testing.T) {
	path := startServer(t, &recorder{})
	// Other local users must not forge lease events.
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, %v; want 0600", fi.Mode(), err)
	}
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Listen: %v", err)
	}
}

// A script speaking another lease socket protocol (an old one names
// none) is refused with both versions and what to upgrade, and the
// handler sees nothing.
func TestAgentRefusesOtherProtocol(t *testing.T) {
	rec := &recorder{}
	path := startServer(t, rec)
	for _, c := range []struct {
		line string
		want []string
	}{
		{`{"action":"add","mac":"fa:16:3e:00:00:01","address":"10.0.0.3"}`, []string{"protocol 1", "agent 2", "upgrade the script"}},
		{`{"protocol":3,"action":"add","mac":"fa:16:3e:00:00:01","address":"10.0.0.3"}`, []string{"protocol 3", "agent 2", "upgrade the agent"}},
	} {
		resp := rawCall(t, path, c.line)
		for _, w := range c.want {
			if !strings.Contains(resp.Error, w) {
				t.Errorf("answer to %s: %q, want it to name %q", c.line, resp.Error, w)
			}
		}
	}
	if len(rec.events) != 0 {
		t.Errorf("refused requests reached the handler: %v", rec.events)
	}
}

// The script refuses an agent that answers in another protocol (an old
// agent names none) and says which side to upgrade.
func TestScriptRefusesOtherProtocol(t *testing.T) {
	for _, c := range []struct {
		answer string
		want   []string
	}{
		{`{}`, []string{"protocol 1", "script 2", "upgrade the agent"}},
		{`{"protocol":3}`, []string{"protocol 3", "script 2", "upgrade this script"}},
	} {
		path := filepath.Join(t.TempDir(), "agent.sock")
		ln, err := Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			var req request
			_ = json.NewDecoder(conn).Decode(&req)
			conn.Write([]byte(c.answer + "\n"))
		}()
		t.Setenv(SocketEnv, path)
		err = Run([]string{"add", "fa:16:3e:00:00:01", "10.0.0.3"}, io.Discard)
		ln.Close()
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("script against an agent answering %s: %v, want an error naming %q", c.answer, err, w)
			}
		}
	}
}

func rawCall(t *testing.T, path, line string) response {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte(line + "\n"))
	var resp response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

// A bad event is refused by the script before it dials, and by the
// agent's socket from a script that did not check, with the words the
// API's lease endpoint uses (model.ParseLeaseEvent), and reaches no
// handler.
func TestBadEventsRefusedWithTheModelsWords(t *testing.T) {
	rec := &recorder{}
	path := startServer(t, rec)
	for _, c := range []struct{ action, mac, addr, want string }{
		{"add", "fa:16:3e:zz:00:01", "10.0.0.3", `MAC address "fa:16:3e:zz:00:01" is malformed`},
		{"add", "01:00:5e:00:00:01", "10.0.0.3", "is a multicast or broadcast address"},
		{"old", "00:00:00:00:00:00", "10.0.0.3", "is all zeros"},
		{"del", "fa:16:3e:00:00:01", "10.0.0.300", `address "10.0.0.300" is not an IPv4 address`},
	} {
		_, modelErr := model.ParseLeaseEvent(c.action, c.mac, c.addr, "")
		if modelErr == nil || !strings.Contains(modelErr.Error(), c.want) {
			t.Fatalf("model: %v, want %q", modelErr, c.want)
		}
		line, _ := json.Marshal(request{Protocol: Protocol, Action: c.action, MAC: c.mac, Address: c.addr})
		if resp := rawCall(t, path, string(line)); resp.Error != modelErr.Error() {
			t.Errorf("socket answer to %s: %q, want the model's %q", line, resp.Error, modelErr)
		}
		var out, errb bytes.Buffer
		if code := Main([]string{c.action, c.mac, c.addr}, &out, &errb); code == 0 || !strings.Contains(errb.String(), modelErr.Error()) {
			t.Errorf("script %s %s %s: exit %d, stderr %q; want the model's %q", c.action, c.mac, c.addr, code, errb.String(), modelErr)
		}
	}
	if len(rec.events) != 0 {
		t.Errorf("refused events reached the handler: %v", rec.events)
	}
}
