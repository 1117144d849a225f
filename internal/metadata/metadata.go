// Package metadata is novanet's metadata service: nova's EC2-style tree
// (/, /<version>/meta-data/..., /<version>/user-data) and OpenStack tree
// (/openstack/<version>/meta_data.json, user_data, vendor_data.json,
// vendor_data2.json, network_data.json, password), plus IMDSv2-style
// session tokens. One Handler serves both in `novanet serve` (its Source
// reads the store) and in the agent (its Source reads the cached host
// state), so a guest sees the same answers wherever it is answered.
//
// The instance is the one owning the request's source address; headers
// naming another instance are believed only when a proxy signed them with
// metadata_proxy_shared_secret. Nothing is cached by address: every
// request asks its Source, so a recycled address answers for its new
// instance at once.
package metadata

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"novanet/internal/model"
)

// Source finds the instance behind a request. Implementations must answer
// from current state: a cache keyed by address would serve a deleted
// instance's data to the next owner of its address.
type Source interface {
	// ByAddress returns the instance whose interface holds addr, with that
	// interface's facts; a model.ErrNotFound error when none does.
	MetadataByAddress(ctx context.Context, addr netip.Addr) (model.InstanceMetadata, error)
	// ByInstance returns instance uuid's metadata for its interface
	// holding addr (its first interface when addr is not one of its own).
	MetadataByInstance(ctx context.Context, uuid string, addr netip.Addr) (model.InstanceMetadata, error)
	// SetPassword stores the instance's password once: model.ErrConflict
	// when it already has one.
	SetMetadataPassword(ctx context.Context, uuid, password string) error
}

// ErrUnavailable is what a Source returns when it cannot answer now (the
// agent's state is being refreshed, the API is down for a write): 503, so
// a guest retries instead of taking "no such item" for an answer.
var ErrUnavailable = errors.New("metadata temporarily unavailable")

// Options configure a Handler.
type Options struct {
	// ProxySharedSecret is metadata_proxy_shared_secret: when set, a
	// request carrying X-Instance-ID, X-Tenant-ID and a matching
	// X-Instance-ID-Signature is answered for that instance. When empty,
	// those headers are ignored.
	ProxySharedSecret string
	// RequireToken is metadata_require_token: GETs without a session token
	// get 401.
	RequireToken bool
	// RateBurst and RatePerSecond bound each source address (defaults 200
	// and 50: a first boot's ~30 requests never wait).
	RateBurst     int
	RatePerSecond float64
	// Now is the clock (tests); default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Handler is the metadata HTTP handler.
type Handler struct {
	src    Source
	opts   Options
	log    *slog.Logger
	tokens *tokens
	limit  *limiter
}

// New returns a handler answering from src.
func New(src Source, opts Options) *Handler {
	if opts.RateBurst <= 0 {
		opts.RateBurst = 200
	}
	if opts.RatePerSecond <= 0 {
		opts.RatePerSecond = 50
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{src: src, opts: opts, log: log, tokens: newTokens(opts.ProxySharedSecret, opts.Now),
		limit: newLimiter(opts.RateBurst, opts.RatePerSecond, maxTrackedSources, opts.Now)}
}

const (
	headerToken       = "X-Aws-Ec2-Metadata-Token"
	headerTokenTTL    = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	headerInstanceID  = "X-Instance-Id"
	headerTenantID    = "X-Tenant-Id"
	headerSignature   = "X-Instance-Id-Signature"
	headerForwarded   = "X-Forwarded-For"
	maxTrackedSources = 65536
	// maxPassword is nova's limit (four system_metadata chunks of 255),
	// the one the manager stores.
	maxPassword = model.MaxPasswordBytes
)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	src, err := remoteAddr(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !h.limit.allow(src) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many metadata requests from "+src.String()+"; slow down", http.StatusTooManyRequests)
		return
	}
	path := cleanPath(r.URL.Path)
	if path == "/latest/api/token" {
		h.serveToken(w, r, src)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		if !isPasswordPath(path) {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
	default:
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	if path == "/" {
		writeText(w, r, strings.Join(append(append([]string{}, ec2Versions...), "latest"), "\n"), textPlain)
		return
	}
	md, status, msg := h.identify(r, src)
	if status != 0 {
		http.Error(w, msg, status)
		return
	}
	if status, msg := h.checkToken(r, src, md.UUID); status != 0 {
		http.Error(w, msg, status)
		return
	}
	if isPasswordPath(path) && r.Method == http.MethodPost {
		h.postPassword(w, r, md)
		return
	}
	item, ok := lookup(md, path, h.opts.Now())
	if !ok {
		http.Error(w, "no such metadata item: "+path, http.StatusNotFound)
		return
	}
	writeText(w, r, item.body, item.contentType)
}

// identify returns the requester's instance, or an HTTP status and message.
func (h *Handler) identify(r *http.Request, src netip.Addr) (model.InstanceMetadata, int, string) {
	ctx := r.Context()
	var md model.InstanceMetadata
	var err error
	if id := r.Header.Values(headerInstanceID); len(id) > 0 && h.opts.ProxySharedSecret != "" {
		uuid, addr, status, msg := h.verifyProxy(r, id)
		if status != 0 {
			return md, status, msg
		}
		md, err = h.src.MetadataByInstance(ctx, uuid, addr)
		if err == nil && md.ProjectID != r.Header.Get(headerTenantID) {
			h.log.Warn("signed metadata request names another project", "instance", uuid, "proxy", src)
			return md, http.StatusNotFound, "no instance " + uuid + " in that project"
		}
	} else {
		// X-Forwarded-For and unsigned X-Instance-ID are a guest's words:
		// the source address decides.
		md, err = h.src.MetadataByAddress(ctx, src)
	}
	switch {
	case err == nil:
		return md, 0, ""
	case model.IsKind(err, model.ErrNotFound):
		return md, http.StatusNotFound, "no instance has address " + src.String()
	case errors.Is(err, ErrUnavailable):
		return md, http.StatusServiceUnavailable, err.Error() + "; retry in a moment"
	default:
		h.log.Error("metadata lookup", "source", src, "err", err)
		return md, http.StatusInternalServerError, "metadata lookup failed; retry in a moment"
	}
}

// verifyProxy checks a proxied request's signature (Neutron's
// metadata-proxy headers) and returns the instance and guest address.
func (h *Handler) verifyProxy(r *http.Request, ids []string) (string, netip.Addr, int, string) {
	tenants := r.Header.Values(headerTenantID)
	sig := r.Header.Get(headerSignature)
	switch {
	case len(ids) != 1:
		return "", netip.Addr{}, http.StatusBadRequest, "multiple X-Instance-ID headers"
	case sig == "":
		return "", netip.Addr{}, http.StatusBadRequest, "X-Instance-ID-Signature header is missing"
	case len(tenants) != 1:
		return "", netip.Addr{}, http.StatusBadRequest, "exactly one X-Tenant-ID header is needed"
	}
	mac := hmac.New(sha256.New, []byte(h.opts.ProxySharedSecret))
	mac.Write([]byte(ids[0]))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		h.log.Warn("metadata proxy signature mismatch", "instance", ids[0], "from", r.RemoteAddr)
		return "", netip.Addr{}, http.StatusForbidden, "invalid proxy request signature"
	}
	var addr netip.Addr
	if f := r.Header.Get(headerForwarded); f != "" {
		first, _, _ := strings.Cut(f, ",")
		addr, _ = netip.ParseAddr(strings.TrimSpace(first))
	}
	return ids[0], addr, 0, ""
}

// Sign returns the X-Instance-ID-Signature a proxy sends for instanceID.
func Sign(secret, instanceID string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(instanceID))
	return hex.EncodeToString(mac.Sum(nil))
}

func (h *Handler) postPassword(w http.ResponseWriter, r *http.Request, md model.InstanceMetadata) {
	if md.Password != "" {
		http.Error(w, "the password is already set", http.StatusConflict)
		return
	}
	if r.ContentLength > maxPassword {
		http.Error(w, fmt.Sprintf("password is too large: at most %d bytes", maxPassword), http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPassword+1))
	if err != nil {
		http.Error(w, "read password: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxPassword {
		http.Error(w, fmt.Sprintf("password is too large: at most %d bytes", maxPassword), http.StatusBadRequest)
		return
	}
	err = h.src.SetMetadataPassword(r.Context(), md.UUID, string(body))
	switch {
	case err == nil:
		w.WriteHeader(http.StatusOK)
	case model.IsKind(err, model.ErrConflict):
		http.Error(w, "the password is already set", http.StatusConflict)
	case model.IsKind(err, model.ErrNotFound):
		http.Error(w, "instance "+md.UUID+" is gone", http.StatusNotFound)
	case errors.Is(err, ErrUnavailable):
		http.Error(w, err.Error()+"; retry later", http.StatusServiceUnavailable)
	default:
		h.log.Error("store metadata password", "instance", md.UUID, "err", err)
		http.Error(w, "storing the password failed; retry later", http.StatusInternalServerError)
	}
}

func isPasswordPath(p string) bool {
	v, rest, ok := strings.Cut(strings.TrimPrefix(p, "/openstack/"), "/")
	if !strings.HasPrefix(p, "/openstack/") || !ok || rest != "password" {
		return false
	}
	version, known := osVersion(v)
	return known && since(osVersions, osGrizzly, version) // Folsom had no password
}

func remoteAddr(r *http.Request) (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("cannot read the request's source address %q", r.RemoteAddr)
	}
	return ap.Addr().Unmap(), nil
}

// cleanPath normalizes like nova's posixpath.normpath: repeated and
// trailing slashes, "." and "..".
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	var out []string
	for _, s := range strings.Split(p, "/") {
		switch s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed here; use "+allow, http.StatusMethodNotAllowed)
}

const (
	textPlain = "text/plain; charset=utf-8"
	appJSON   = "application/json"
)

func writeText(w http.ResponseWriter, r *http.Request, body, contentType string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.WriteString(w, body)
}

// connKey carries the accepted connection into handlers (for IP_TTL).
type connKey struct{}

// ConnContext is an http.Server ConnContext that lets the token answer
// set its connection's IP TTL to 1; servers of this Handler must use it.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// NewServer returns an http.Server for h with the ConnContext the token
// answer needs and timeouts that keep a slow guest from holding
// connections.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ConnContext: ConnContext,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10}
}
