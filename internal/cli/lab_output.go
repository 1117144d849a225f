package cli

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"novanet/internal/lab"
)

// labStatusOutput prints `lab status` with -o json or -o value and reports
// whether it did (-o table is lab.go's own layout). JSON is the status
// object with snake_case keys (lists as arrays, [] when empty); value and
// -c work on the VM table.
func labStatusOutput(cmd *cobra.Command, st lab.Status) (bool, error) {
	format, _ := cmd.Flags().GetString("output")
	columns, _ := cmd.Flags().GetStringSlice("column")
	g := &globals{output: format, columns: columns, stdout: cmd.OutOrStdout()}
	f, err := g.format()
	if err != nil || f == "table" && len(columns) == 0 {
		return err != nil, err
	}
	if f == "json" {
		return true, g.writeJSON(snakeJSON(reflect.ValueOf(st)))
	}
	rows := make([][]string, 0, len(st.VMs))
	for _, vm := range st.VMs {
		rows = append(rows, []string{vm.Name, vm.Host, vm.Address, vm.Lease.Address, vm.Lease.Router, vm.Lease.DNS,
			vm.Lease.Server, vm.Client, strconv.FormatBool(vm.ClientRunning), strconv.FormatBool(vm.APILeased), vm.MAC, vm.Device})
	}
	return true, g.print(nil, []string{"VM", "HOST", "ALLOCATED", "GUEST_ADDRESS", "ROUTER", "DNS", "DHCP_SERVER", "CLIENT", "CLIENT_RUNNING", "STORE_LEASED", "MAC", "TAP"}, rows)
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
