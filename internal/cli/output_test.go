package cli

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"novanet/internal/lab"
)

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{"APILeased": "api_leased", "PID": "pid", "VMs": "vms", "ClientRunning": "client_running",
		"APIError": "api_error", "Name": "name", "DNS": "dns"} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLabStatusJSONShape: lab status -o json is one object, its lists
// arrays ([] when empty), the VM's own json names kept.
func TestLabStatusJSONShape(t *testing.T) {
	st := lab.Status{Name: "nnlab", Up: true, VMs: []lab.VMStatus{{VM: lab.VM{Name: "vm1", Host: "compute-1"},
		Lease: lab.Lease{Address: "10.0.0.2", At: time.Unix(0, 0).UTC()}, APILeased: true}}}
	b, err := json.Marshal(snakeJSON(reflect.ValueOf(st)))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if ns, ok := m["namespaces"].([]any); !ok || len(ns) != 0 {
		t.Errorf("namespaces = %#v, want []", m["namespaces"])
	}
	vms, _ := m["vms"].([]any)
	if len(vms) != 1 {
		t.Fatalf("vms = %#v in %s", m["vms"], b)
	}
	vm := vms[0].(map[string]any)
	lease, _ := vm["lease"].(map[string]any)
	if vm["name"] != "vm1" || vm["api_leased"] != true || lease["address"] != "10.0.0.2" || lease["at"] != "1970-01-01T00:00:00Z" || m["up"] != true {
		t.Errorf("status JSON = %s", b)
	}
}
