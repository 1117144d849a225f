package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"novanet/internal/model"
)

// Input hygiene the JSON decoder does not do on its own: it turns invalid
// UTF-8 into U+FFFD without a word, and it decodes "\u0000" into a NUL
// that PostgreSQL refuses (a 500) and SQLite stores. Both are refused
// with a 400 naming where they were, before the backend is called.

// checkBodyText refuses a body that is not UTF-8.
func checkBodyText(data []byte) error {
	if utf8.Valid(data) {
		return nil
	}
	at := 0
	for at < len(data) {
		r, n := utf8.DecodeRune(data[at:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		at += n
	}
	return invalid("request body is not valid UTF-8 (first bad byte at offset %d): send UTF-8 JSON", at)
}

// checkNoNUL walks a decoded value and names the first string field that
// holds a NUL character.
func checkNoNUL(v any) error {
	if path := nulPath(reflect.ValueOf(v), ""); path != "" {
		return invalid("%s contains a NUL character (\\u0000): remove it", path)
	}
	return nil
}

func nulPath(v reflect.Value, path string) string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return ""
		}
		return nulPath(v.Elem(), path)
	case reflect.String:
		if strings.IndexByte(v.String(), 0) >= 0 {
			return fieldName(path)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := f.Name
			if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == "-" {
				continue
			} else if tag != "" {
				name = tag
			}
			sub := path
			if !f.Anonymous {
				sub = joinPath(path, name)
			}
			if p := nulPath(v.Field(i), sub); p != "" {
				return p
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 { // json.RawMessage: decoded later
			return ""
		}
		for i := range v.Len() {
			if p := nulPath(v.Index(i), path+"["+strconv.Itoa(i)+"]"); p != "" {
				return p
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			if k.Kind() == reflect.String && strings.IndexByte(k.String(), 0) >= 0 {
				return fieldName(joinPath(path, "(a key)"))
			}
			if p := nulPath(v.MapIndex(k), joinPath(path, k.String())); p != "" {
				return p
			}
		}
	}
	return ""
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func fieldName(path string) string {
	if path == "" {
		return "the request body"
	}
	return "field " + strconv.Quote(path)
}

// checkURLText refuses a path or query that decodes to NUL or invalid
// UTF-8: it would reach the store as part of a name or id.
func checkURLText(r *http.Request) error {
	bad := func(s string) bool { return !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 }
	if bad(r.URL.Path) {
		return invalid("the URL path %q holds a NUL or invalid UTF-8 (after %%-decoding): send UTF-8 without NUL", r.URL.EscapedPath())
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return invalid("the URL query %q is malformed: %v", r.URL.RawQuery, err)
	}
	for k, vs := range q {
		for _, v := range vs {
			if bad(k) || bad(v) {
				return invalid("the URL query parameter %q holds a NUL or invalid UTF-8: send UTF-8 without NUL", k)
			}
		}
	}
	return nil
}

// addrField decodes an IPv4 address from a JSON string and names its
// field when it is not one (netip.Addr's own error is "ParseAddr(...)"
// without the field).
type addrField struct {
	set bool
	s   string
}

func (a *addrField) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*a = addrField{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: "value that is not a string", Type: reflect.TypeFor[string]()}
	}
	*a = addrField{set: s != "", s: s}
	return nil
}

// addr parses the field (unset: the zero Addr).
func (a addrField) addr(field string) (netip.Addr, error) {
	if !a.set {
		return netip.Addr{}, nil
	}
	return model.ParseAddr4(field, a.s)
}

// noRoute answers a request no route takes: 405 with the methods the path
// does take, or 404 naming the path and the endpoints there are.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" && m != r.Method {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, s.log, r, &methodNotAllowed{fmt.Sprintf("%s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allowed, " or "))})
		return
	}
	path := r.URL.Path
	if pid, _ := r.Context().Value(urlProjectKey{}).(string); pid != "" {
		path = "/v2.1/" + pid + strings.TrimPrefix(path, "/v2.1")
	}
	writeError(w, s.log, r, model.Errorf(model.ErrNotFound, "no such endpoint %s %s: %s", r.Method, path, endpointHint(path)))
}

// endpointHint lists the endpoints under the path's version.
func endpointHint(path string) string {
	switch {
	case strings.HasPrefix(path, "/v2.1"):
		return "the /v2.1 (also /v2 and /v2.1/{project_id}) resources are os-networks, os-tenant-networks, os-floating-ips, " +
			"os-floating-ip-pools, os-floating-ips-bulk, os-fixed-ips/{address}, os-security-groups, os-security-group-rules, " +
			"os-security-group-default-rules and servers/{id}/action (addFloatingIp, removeFloatingIp, addSecurityGroup, removeSecurityGroup)"
	case strings.HasPrefix(path, "/v1"):
		return "the /v1 resources are instances, networks, hosts/{host}/state, hosts/{host}/watch, hosts/{host}/applied, hosts/{host}/leases and leases"
	}
	return "novanet serves /v2.1/... (the OpenStack Compute API's networking) and /v1/... (its native API); GET / lists the versions"
}

type methodNotAllowed struct{ msg string }

func (e *methodNotAllowed) Error() string { return e.msg }
