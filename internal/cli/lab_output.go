package cli

import (
	"encoding"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"novanet/internal/lab"
)

// printLabStatus prints `lab status` through the output layer: -o json
// the status object with snake_case keys (lists as arrays, [] when
// empty); -o value and -c the VM table; -o table the namespaces, daemons
// and VMs as three tables and how to reach the lab's API.
func printLabStatus(g *globals, st lab.Status) error {
	f, err := g.format()
	if err != nil {
		return err
	}
	switch {
	case f == "json":
		return g.writeJSON(snakeJSON(reflect.ValueOf(st)))
	case f == "value" || len(g.columns) > 0:
		return printLabVMs(g, st.VMs)
	case !st.Up:
		return printLabDown(g.stdout, st)
	}
	return printLabTables(g, st)
}

// printLabVMs is the VM table with one word a header, for -o value and -c.
func printLabVMs(g *globals, vms []lab.VMStatus) error {
	rows := make([][]string, 0, len(vms))
	for _, vm := range vms {
		rows = append(rows, []string{vm.Name, vm.Host, vm.Address, vm.Lease.Address, vm.Lease.Router, vm.Lease.DNS,
			vm.Lease.Server, vm.Client, strconv.FormatBool(vm.ClientRunning), strconv.FormatBool(vm.APILeased), vm.MAC, vm.Device})
	}
	return g.print(nil, []string{"VM", "HOST", "ALLOCATED", "GUEST_ADDRESS", "ROUTER", "DNS", "DHCP_SERVER", "CLIENT", "CLIENT_RUNNING", "STORE_LEASED", "MAC", "TAP"}, rows)
}

func printLabDown(out io.Writer, st lab.Status) error {
	fmt.Fprintf(out, "lab %s is down\n", st.Name)
	for _, ns := range st.Namespaces {
		if ns.Exists {
			fmt.Fprintf(out, "but namespace %s exists: run `novanet lab down --name %s`\n", ns.Name, st.Name)
		}
	}
	return nil
}

func printLabTables(g *globals, st lab.Status) error {
	var nsRows, daemonRows, vmRows [][]string
	for _, ns := range st.Namespaces {
		nsRows = append(nsRows, []string{ns.Name, ns.Role, strconv.FormatBool(ns.Exists)})
	}
	for _, d := range st.Daemons {
		daemonRows = append(daemonRows, []string{d.Key, strconv.Itoa(d.PID), strconv.FormatBool(d.Running)})
	}
	for _, vm := range st.VMs {
		client := vm.Client
		if !vm.ClientRunning {
			client += " (dead)"
		}
		leased := strconv.FormatBool(vm.APILeased)
		if st.APIError != "" {
			leased = "?"
		}
		vmRows = append(vmRows, []string{vm.Name, vm.Host, vm.Address, dash(vm.Lease.Address), dash(vm.Lease.Router), dash(vm.Lease.DNS),
			dash(vm.Lease.Server), client, leased, vm.MAC, vm.Device, dash(strings.Join(vm.FloatingIPs, ","))})
	}
	tables := []struct {
		header []string
		rows   [][]string
	}{
		{[]string{"NAMESPACE", "ROLE", "EXISTS"}, nsRows},
		{[]string{"DAEMON", "PID", "RUNNING"}, daemonRows},
		{[]string{"VM", "HOST", "ALLOCATED", "GUEST ADDRESS", "ROUTER", "DNS", "DHCP SERVER", "CLIENT", "STORE LEASED", "MAC", "TAP", "FLOATING"}, vmRows},
	}
	for i, t := range tables {
		if i > 0 {
			fmt.Fprintln(g.stdout)
		}
		if err := g.writeRows("table", t.header, t.rows); err != nil {
			return err
		}
	}
	if st.APIError != "" {
		fmt.Fprintf(g.stdout, "\nthe API did not answer (store view unknown): %s\n", st.APIError)
	}
	printLabAPI(g.stdout, st.Name, st.API)
	return nil
}

// printLabAPI says how to drive the lab's API: the endpoint answers inside
// the lab's namespaces.
func printLabAPI(out io.Writer, name string, a lab.APIAccess) {
	fmt.Fprintf(out, "\nAPI %s (inside the lab: novanet lab exec --name %s controller -- novanet --os-url %s --os-token TOKEN ...)\n", a.URL, name, a.URL)
	fmt.Fprintf(out, "  admin token:   %s\n", a.AdminToken)
	fmt.Fprintf(out, "  project token: %s (project %s, the VMs' project)\n", a.ProjectToken, a.ProjectID)
	fmt.Fprintf(out, "  floating pool: %s (%s), reachable from the outside host\n", a.FloatingPool, a.FloatingCIDR)
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// snakeJSON turns a value into JSON-ready maps and slices: struct fields
// by their json tag or else their name in snake_case, embedded structs
// flattened, nil slices as [], text marshalers (addresses, times) as
// their text. It lets lab.go's untagged types print in the API's style.
func snakeJSON(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	if v.Kind() != reflect.Pointer && v.Kind() != reflect.Interface && v.Type().Implements(reflect.TypeFor[json.Marshaler]()) {
		return v.Interface()
	}
	if tm, ok := v.Interface().(encoding.TextMarshaler); ok {
		b, err := tm.MarshalText()
		if err != nil {
			return fmt.Sprint(v.Interface())
		}
		return string(b)
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return snakeJSON(v.Elem())
	case reflect.Slice, reflect.Array:
		out := make([]any, 0, v.Len())
		for i := range v.Len() {
			out = append(out, snakeJSON(v.Index(i)))
		}
		return out
	case reflect.Struct:
		out := map[string]any{}
		addStructFields(out, v)
		return out
	}
	return v.Interface()
}

func addStructFields(out map[string]any, v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			addStructFields(out, v.Field(i))
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = snakeCase(f.Name)
		}
		out[name] = snakeJSON(v.Field(i))
	}
}

// snakeCase: "APILeased" -> "api_leased", "PID" -> "pid", "VMs" -> "vms".
func snakeCase(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 {
			prevLower := unicode.IsLower(rs[i-1])
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1]) && rs[i+1] != 's'
			if prevLower || nextLower && unicode.IsUpper(rs[i-1]) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
