package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"novanet/internal/lab"
)

// listings are every command that prints a list, with the token that may
// run it.
var listings = []struct {
	admin bool
	args  []string
}{
	{true, []string{"network", "list"}},
	{true, []string{"fixed-ip", "list"}},
	{true, []string{"fixed-ip", "list", "--all"}},
	{false, []string{"floating-ip", "list"}},
	{true, []string{"floating-ip", "list", "--all"}},
	{true, []string{"floating-ip", "pools"}},
	{false, []string{"secgroup", "list"}},
	{true, []string{"secgroup", "list", "--all"}},
	{false, []string{"instance", "list"}},
	{true, []string{"host", "list"}},
	{true, []string{"lease", "list"}},
}

// jsonList runs a listing with -o json and returns its elements; it fails
// the test unless stdout is one valid JSON array (never null).
func jsonList(t *testing.T, auth []string, args []string) []json.RawMessage {
	t.Helper()
	code, out, errs := runCLI(t, append(append(append([]string{}, auth...), args...), "-o", "json")...)
	name := strings.Join(args, " ")
	if code != 0 {
		t.Fatalf("novanet %s -o json: exit %d, stderr %q", name, code, errs)
	}
	if !json.Valid([]byte(out)) {
		t.Fatalf("novanet %s -o json printed invalid JSON:\n%s", name, out)
	}
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(out), &list); err != nil || list == nil {
		t.Fatalf("novanet %s -o json is not an array (%v):\n%s", name, err, out)
	}
	return list
}

// TestListingsPrintJSON: every listing prints a JSON array, [] when the
// server has nothing to list and the objects themselves once it has.
func TestListingsPrintJSON(t *testing.T) {
	srv, _ := newServer(t)
	a := []string{"--os-url", srv.URL, "--os-token", adminTok}
	p := []string{"--os-url", srv.URL, "--os-token", projTok}
	auth := func(admin bool) []string {
		if admin {
			return a
		}
		return p
	}
	for _, l := range listings {
		list := jsonList(t, auth(l.admin), l.args)
		// A project's listing of groups makes its default group.
		if len(list) != 0 && l.args[0] != "secgroup" {
			t.Errorf("novanet %s -o json on an empty server: %d elements, want []", strings.Join(l.args, " "), len(list))
		}
	}
	code, out, _ := runCLI(t, append(a, "lease", "list", "-o", "json")...)
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("lease list -o json with no leases = %q, want []", out)
	}

	for _, args := range [][]string{
		append(a, "network", "create", "--label", "private", "--fixed_range_v4", "10.0.0.0/24", "--bridge", "br100", "--host", "ctl"),
		append(a, "floating-ip", "create-range", "--ip_range", "203.0.113.0/30", "--pool", "nova"),
		append(p, "instance", "boot", "vm1", "--host", "compute-1"),
		append(p, "floating-ip", "allocate", "--pool", "nova"),
	} {
		if code, _, errs := runCLI(t, args...); code != 0 {
			t.Fatalf("novanet %s: exit %d %q", strings.Join(args[4:], " "), code, errs)
		}
	}
	for _, l := range listings {
		if l.args[0] == "lease" {
			continue // nothing leases without a dnsmasq
		}
		list := jsonList(t, auth(l.admin), l.args)
		for _, e := range list {
			if e[0] != '{' && e[0] != '"' {
				t.Errorf("novanet %s -o json: element %s is neither an object nor a name", strings.Join(l.args, " "), e)
			}
		}
		if len(list) == 0 {
			t.Errorf("novanet %s -o json lists nothing after boot", strings.Join(l.args, " "))
		}
	}
}

// TestLabStatusJSON: lab status -o json goes through the output layer:
// one valid object, empty lists [], for a lab that is up and one that is
// down; -c picks the JSON's fields.
func TestLabStatusJSON(t *testing.T) {
	up := lab.Status{Name: "nnq", Up: true, VMs: []lab.VMStatus{{VM: lab.VM{Name: "vm1", Host: "compute-1"},
		Lease: lab.Lease{Address: "10.0.0.2", At: time.Unix(0, 0).UTC()}, APILeased: true}}}
	for _, st := range []lab.Status{up, {Name: "nnq"}} {
		var out bytes.Buffer
		if err := printLabStatus(&globals{output: "json", stdout: &out}, st); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if !json.Valid(out.Bytes()) || json.Unmarshal(out.Bytes(), &m) != nil {
			t.Fatalf("lab status -o json is not one JSON object:\n%s", out.String())
		}
		for _, k := range []string{"namespaces", "daemons", "vms"} {
			if _, ok := m[k].([]any); !ok {
				t.Errorf("lab status -o json: %s = %#v, want an array\n%s", k, m[k], out.String())
			}
		}
		if m["name"] != "nnq" || m["up"] != st.Up {
			t.Errorf("lab status -o json = %s", out.String())
		}
	}
	var out bytes.Buffer
	if err := printLabStatus(&globals{output: "json", columns: []string{"up"}, stdout: &out}, up); err != nil || strings.TrimSpace(out.String()) != `{
  "up": true
}` {
		t.Errorf("lab status -o json -c up = %q, %v", out.String(), err)
	}
}

// TestLabStatusTable: -o table keeps the three tables, the VM's lease and
// how to reach the API; a lab that is down says so and names leftovers.
func TestLabStatusTable(t *testing.T) {
	st := lab.Status{Name: "nnq", Up: true,
		Namespaces: []lab.NamespaceStatus{{Name: "nnq-controller", Role: "controller", Exists: true}},
		Daemons:    []lab.DaemonStatus{{Key: "serve", PID: 42, Running: true}},
		VMs: []lab.VMStatus{{VM: lab.VM{Name: "vm1", Host: "compute-1", Client: "udhcpc"},
			Lease: lab.Lease{Address: "10.0.0.2"}, FloatingIPs: []string{"203.0.113.1"}}},
		API: lab.APIAccess{URL: "http://192.0.2.1:8774", AdminToken: "adm"}}
	var out bytes.Buffer
	if err := printLabStatus(&globals{output: "table", stdout: &out}, st); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"NAMESPACE", "nnq-controller  controller  true",
		"\n\nDAEMON  PID  RUNNING\nserve   42   true\n", "GUEST ADDRESS", "udhcpc (dead)", "203.0.113.1", "API http://192.0.2.1:8774", "admin token:   adm"} {
		if !strings.Contains(text, want) {
			t.Errorf("lab status table lacks %q:\n%s", want, text)
		}
	}
	out.Reset()
	down := lab.Status{Name: "nnq", Namespaces: []lab.NamespaceStatus{{Name: "nnq-switch", Exists: true}}}
	if err := printLabStatus(&globals{output: "table", stdout: &out}, down); err != nil ||
		out.String() != "lab nnq is down\nbut namespace nnq-switch exists: run `novanet lab down --name nnq`\n" {
		t.Errorf("lab status of a lab that is down = %q, %v", out.String(), err)
	}
}
