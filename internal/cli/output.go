package cli

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"text/tabwriter"
	"unicode"
)

// The output layer every command prints through, as openstackclient's:
// -o table (default) a table, -o json the API's objects (a list as an
// array, [] when empty; a single object as an object), -o value the bare
// cells separated by spaces, one row a line; -c picks and orders columns
// (a list's headers, an object's field names), case-insensitively.

// field is one row of a single object's FIELD VALUE table.
type field struct {
	Name  string
	Value string
}

func (g *globals) format() (string, error) {
	switch g.output {
	case "table", "":
		return "table", nil
	case "json", "value":
		return g.output, nil
	}
	return "", usagef("--output %q is unknown; use table, json or value", g.output)
}

// print writes a list: v (a slice) as a JSON array, else the rows.
func (g *globals) print(v any, header []string, rows [][]string) error {
	f, err := g.format()
	if err != nil {
		return err
	}
	if f == "json" {
		return g.writeJSON(emptyAsArray(v))
	}
	header, rows, err = g.pick(header, rows)
	if err != nil {
		return err
	}
	return g.writeRows(f, header, rows)
}

// printObject writes one object: v as a JSON object, else FIELD VALUE rows.
func (g *globals) printObject(v any, fields []field) error {
	f, err := g.format()
	if err != nil {
		return err
	}
	if f == "json" {
		return g.writeJSON(v)
	}
	names := make([]string, len(fields))
	values := make([]string, len(fields))
	for i, fl := range fields {
		names[i], values[i] = fl.Name, fl.Value
	}
	names, picked, err := g.pick(names, [][]string{values})
	if err != nil {
		return err
	}
	if f == "value" {
		return g.writeRows(f, nil, transpose(picked))
	}
	rows := make([][]string, len(names))
	for i := range names {
		rows[i] = []string{names[i], picked[0][i]}
	}
	return g.writeRows(f, []string{"FIELD", "VALUE"}, rows)
}

func transpose(rows [][]string) [][]string {
	if len(rows) == 0 {
		return nil
	}
	out := make([][]string, len(rows[0]))
	for i, cell := range rows[0] {
		out[i] = []string{cell}
	}
	return out
}

// pick keeps the columns -c names, in its order.
func (g *globals) pick(header []string, rows [][]string) ([]string, [][]string, error) {
	if len(g.columns) == 0 {
		return header, rows, nil
	}
	idx := make([]int, 0, len(g.columns))
	for _, c := range g.columns {
		i := -1
		for j, h := range header {
			if strings.EqualFold(h, c) || strings.EqualFold(strings.ReplaceAll(h, " ", "_"), c) {
				i = j
			}
		}
		if i < 0 {
			return nil, nil, usagef("-c %q: no such column; this command has %s", c, strings.ToLower(strings.Join(header, ", ")))
		}
		idx = append(idx, i)
	}
	h := make([]string, len(idx))
	for k, i := range idx {
		h[k] = header[i]
	}
	out := make([][]string, len(rows))
	for r, row := range rows {
		out[r] = make([]string, len(idx))
		for k, i := range idx {
			out[r][k] = row[i]
		}
	}
	return h, out, nil
}

func (g *globals) writeRows(format string, header []string, rows [][]string) error {
	if format == "value" {
		for _, r := range rows {
			if _, err := fmt.Fprintln(g.stdout, strings.Join(r, " ")); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func (g *globals) writeJSON(v any) error {
	if len(g.columns) > 0 {
		var err error
		if v, err = g.pickJSON(v); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// emptyAsArray turns a nil slice into an empty one so it encodes as [].
func emptyAsArray(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice && rv.IsNil() {
		return reflect.MakeSlice(rv.Type(), 0, 0).Interface()
	}
	return v
}

// done prints a confirmation line (with -o json an object saying what
// was done, with -o value nothing).
func (g *globals) done(format string, args ...any) error {
	f, err := g.format()
	if err != nil {
		return err
	}
	switch f {
	case "json":
		return g.writeJSON(map[string]string{"result": fmt.Sprintf(format, args...)})
	case "value":
		return nil
	}
	fmt.Fprintf(g.stdout, format+"\n", args...)
	return nil
}

// pickJSON keeps the -c fields of an object or of each object of a list
// (by JSON key, case-insensitively).
func (g *globals) pickJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return nil, err
	}
	pickOne := func(m map[string]any) (map[string]any, error) {
		out := map[string]any{}
		for _, c := range g.columns {
			found := false
			for k, val := range m {
				if strings.EqualFold(k, c) {
					out[k], found = val, true
				}
			}
			if !found {
				keys := make([]string, 0, len(m))
				for k := range m {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				return nil, usagef("-c %q: no such field; the JSON has %s", c, strings.Join(keys, ", "))
			}
		}
		return out, nil
	}
	switch x := generic.(type) {
	case map[string]any:
		return pickOne(x)
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				return generic, nil
			}
			p, err := pickOne(m)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, nil
	}
	return generic, nil
}

// snakeJSON turns a value into JSON-ready maps and slices: struct fields
// by their json tag or else their name in snake_case, embedded structs
// flattened, nil slices as [], text marshalers (addresses, times) as
// their text. It lets internal/lab's untagged types print in the API's style.
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
