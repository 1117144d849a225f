// Package api is novanet's HTTP layer: the OpenStack Compute-compatible
// nova-network endpoints under /v2.1 (also /v2 and /v2.1/{project_id}),
// the native /v1 endpoints used by agents, the lab and the CLI, token
// authentication, request validation and the mapping of model errors to
// nova's JSON error bodies. Policy lives in the Backend (the manager);
// this package only decodes, authorizes and encodes.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"novanet/internal/model"
)

// MaxBodyBytes is the largest request body accepted (larger: 413).
const MaxBodyBytes = 1 << 20

// Options configure a Server.
type Options struct {
	Tokens *Tokens
	Logger *slog.Logger
	// MaxWatch caps a watch long poll (default 60 s).
	MaxWatch time.Duration
	// Metrics served on /metrics (default: a registry of the server's own).
	Metrics *Metrics
}

// Server is the HTTP API over a Backend.
type Server struct {
	b        Backend
	tokens   *Tokens
	log      *slog.Logger
	maxWatch time.Duration
	mux      *http.ServeMux
	metrics  *Metrics
}

// New builds the API server.
func New(b Backend, opts Options) *Server {
	s := &Server{b: b, tokens: opts.Tokens, log: opts.Logger, maxWatch: opts.MaxWatch, metrics: opts.Metrics}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	s.b = meteredBackend{Backend: b, m: s.metrics}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxWatch <= 0 {
		s.maxWatch = 60 * time.Second
	}
	if s.tokens == nil {
		s.tokens = StaticTokens(nil)
	}
	s.mux = http.NewServeMux()
	s.routes()
	return s
}

type ctxKey struct{}

// urlProjectKey holds the project id of a /v2.1/{project_id}/... URL.
type urlProjectKey struct{}

func principal(r *http.Request) Principal {
	p, _ := r.Context().Value(ctxKey{}).(Principal)
	return p
}

// handler is an endpoint that returns an error instead of writing one.
type handler func(w http.ResponseWriter, r *http.Request) error

// access says who may call an endpoint.
type access int

const (
	anyUser    access = iota // admin or project token
	adminOnly                // admin token
	hostAgent                // admin, or the agent token of {host}
	leaseAgent               // admin, or any agent token (the body's host is checked)
)

func (s *Server) handle(pattern string, a access, h handler) {
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.tokens.Lookup(r.Header.Get("X-Auth-Token"))
		if !ok {
			msg := "missing X-Auth-Token header; pass a token from the server's tokens file"
			if r.Header.Get("X-Auth-Token") != "" {
				msg = "unknown token in X-Auth-Token; check it against the server's tokens file"
			}
			writeError(w, s.log, r, model.Errorf(model.ErrUnauthorized, "%s", msg))
			return
		}
		if err := authorize(p, a, r); err != nil {
			writeError(w, s.log, r, err)
			return
		}
		if err := checkURLText(r); err != nil {
			writeError(w, s.log, r, err)
			return
		}
		if pid, _ := r.Context().Value(urlProjectKey{}).(string); pid != "" && p.Role == RoleProject && pid != p.ProjectID {
			writeError(w, s.log, r, model.Errorf(model.ErrForbidden, "the URL names project %q but the token belongs to project %q", pid, p.ProjectID))
			return
		}
		if rec, ok := w.(*recorder); ok {
			rec.who = p.String()
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, p))
		if err := h(w, r); err != nil {
			writeError(w, s.log, r, err)
		}
	}))
}

func authorize(p Principal, a access, r *http.Request) error {
	switch a {
	case anyUser:
		if p.Role == RoleAgent {
			return model.Errorf(model.ErrForbidden, "agent tokens may only use /v1/hosts/%s/... and /v1/leases", p.Host)
		}
	case adminOnly:
		if p.Role != RoleAdmin {
			return model.Errorf(model.ErrForbidden, "%s %s needs an admin token", r.Method, r.URL.Path)
		}
	case hostAgent:
		if p.Role == RoleProject || (p.Role == RoleAgent && p.Host != r.PathValue("host")) {
			return model.Errorf(model.ErrForbidden, "only an admin or the agent of host %q may use %s", r.PathValue("host"), r.URL.Path)
		}
	case leaseAgent:
		if p.Role == RoleProject {
			return model.Errorf(model.ErrForbidden, "only admins and agents may record leases")
		}
	}
	return nil
}

// ServeHTTP implements http.Handler: access log, /v2 and project-id prefix
// normalisation, then the mux.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: 200}
	if pid := s.rewrite(r); pid != "" {
		r = r.WithContext(context.WithValue(r.Context(), urlProjectKey{}, pid))
	}
	s.mux.ServeHTTP(rec, r)
	s.metrics.observe(r, rec.status, time.Since(start))
	s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
		"bytes", rec.n, "duration_ms", float64(time.Since(start).Microseconds())/1000, "remote", r.RemoteAddr, "who", rec.who)
}

// computeResources are the first path segments after /v2.1 that are not a
// project id.
var computeResources = map[string]bool{
	"os-networks": true, "os-tenant-networks": true, "os-floating-ips": true,
	"os-floating-ip-pools": true, "os-floating-ips-bulk": true, "os-fixed-ips": true,
	"os-security-groups": true, "os-security-group-rules": true,
	"os-security-group-default-rules": true, "servers": true, "": true,
}

// rewrite maps /v2/... to /v2.1/... and /v2.1/{project_id}/x to
// /v2.1/x and returns the project id; ServeMux patterns cannot express
// an optional segment without conflicting routes.
func (s *Server) rewrite(r *http.Request) (project string) {
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/v2/"); ok {
		p = "/v2.1/" + rest
	} else if p == "/v2" {
		p = "/v2.1"
	}
	if rest, ok := strings.CutPrefix(p, "/v2.1/"); ok {
		// Only /v2.1/{project_id}/<resource>: a lone unknown segment
		// (/v2.1/os-cells) is an unknown resource, not a project.
		seg, tail, hasTail := strings.Cut(rest, "/")
		if hasTail && !computeResources[seg] && !strings.HasPrefix(seg, "os-") {
			project = seg
			p = "/v2.1/" + tail
		}
	}
	if p != r.URL.Path {
		r.URL.Path = p
		r.URL.RawPath = ""
	}
	return project
}

type recorder struct {
	http.ResponseWriter
	status int
	n      int
	who    string
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.n += n
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// ---- errors ----

// statusOf maps an error to its HTTP status, nova's error key and
// novanet's kind name.
func statusOf(err error) (int, string, string) {
	switch model.KindOf(err) {
	case model.ErrInvalid:
		return 400, "badRequest", "invalid"
	case model.ErrForbidden:
		return 403, "forbidden", "forbidden"
	case model.ErrQuota:
		return 403, "forbidden", "quota"
	case model.ErrNotFound:
		return 404, "itemNotFound", "not_found"
	case model.ErrConflict:
		return 409, "conflictingRequest", "conflict"
	case model.ErrExhausted:
		return 409, "conflictingRequest", "exhausted"
	case model.ErrUnauthorized:
		return 401, "unauthorized", "unauthorized"
	}
	var tl *tooLarge
	if errors.As(err, &tl) {
		return 413, "overLimit", "invalid"
	}
	var mna *methodNotAllowed
	if errors.As(err, &mna) {
		return 405, "badMethod", "invalid"
	}
	return 500, "computeFault", ""
}

type tooLarge struct{ msg string }

func (e *tooLarge) Error() string { return e.msg }

func writeError(w http.ResponseWriter, log *slog.Logger, r *http.Request, err error) {
	code, key, kind := statusOf(err)
	msg := err.Error()
	if code == 500 {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			code, key, msg = 503, "serviceUnavailable", "the request was cancelled (server shutting down or client gone); retry"
		} else {
			// The cause (often the database's own text) goes to the log
			// only: it tells a client nothing it can act on.
			msg = "internal error at " + time.Now().UTC().Format(time.RFC3339Nano) + ": see the server log for that time; retry later"
		}
	}
	body := map[string]any{key: map[string]any{"code": code, "message": msg, "kind": kind}}
	if strings.Contains(r.UserAgent(), "keystoneauth1") {
		// keystoneauth (the openstack CLI, openstacksdk) reads only
		// "error": without it they print "Unrecognized schema" instead of
		// the message. novaclient reads either key.
		body["error"] = map[string]any{"code": code, "message": msg, "title": http.StatusText(code)}
	}
	if code == 401 {
		w.Header().Set("WWW-Authenticate", `Keystone uri="none"`)
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"computeFault":{"code":500,"message":"encode response"}}`, 500)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// errEmptyBody is returned by decode for an empty body; endpoints whose
// body is optional test for it with errors.Is.
var errEmptyBody = model.Errorf(model.ErrInvalid, "missing JSON request body")

// decode reads a JSON body into v: at most MaxBodyBytes, one value, no
// unknown fields when strict. It fails before the backend is touched.
func decode(w http.ResponseWriter, r *http.Request, v any, strict bool) error {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &tooLarge{fmt.Sprintf("request body larger than %d bytes; send less", MaxBodyBytes)}
		}
		return model.Errorf(model.ErrInvalid, "read request body: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return errEmptyBody
	}
	if err := checkBodyText(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return model.Errorf(model.ErrInvalid, "malformed request body: %s", jsonProblem(err))
	}
	if dec.More() {
		return model.Errorf(model.ErrInvalid, "malformed request body: trailing data after the JSON value")
	}
	return checkNoNUL(v)
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s, not a JSON %s", te.Field, goTypeName(te.Type.String()), te.Value)
		}
		return fmt.Sprintf("expected %s, got a JSON %s", goTypeName(te.Type.String()), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "truncated JSON"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func goTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "float"):
		return "a number"
	}
	return "an object"
}

// ---- serving ----

// Serve runs the handler on ln until ctx ends, then shuts down: it stops
// accepting, ends long polls (their context is cancelled) and waits up to
// grace for requests in flight.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, grace time.Duration) error {
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	cancelBase() // wakes long polls so Shutdown need not wait for them
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shut down http server on %s: %w", ln.Addr(), err)
	}
	return nil
}
