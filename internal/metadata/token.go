package metadata

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tokens issues and checks IMDSv2-style session tokens. A token is
// stateless: its expiry, the instance and the address it was issued to,
// signed with a key derived from metadata_proxy_shared_secret when one is
// set (so serve and every agent accept each other's tokens), else with a
// key that lives only in this process (a restarted service forgets its
// tokens and the guest must ask again after a 401).
type tokens struct {
	key []byte
	now func() time.Time
}

const maxTokenTTL = 21600

func newTokens(secret string, now func() time.Time) *tokens {
	if secret != "" {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte("novanet metadata session tokens"))
		return &tokens{key: m.Sum(nil), now: now}
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("metadata: no randomness for the token key: " + err.Error())
	}
	return &tokens{key: key, now: now}
}

func (t *tokens) sign(payload []byte) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write(payload)
	return m.Sum(nil)
}

func (t *tokens) issue(uuid string, addr netip.Addr, ttl int) string {
	payload := binary.BigEndian.AppendUint64(nil, uint64(t.now().Add(time.Duration(ttl)*time.Second).Unix()))
	payload = append(payload, addr.AsSlice()...)
	payload = append(payload, uuid...)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(t.sign(payload))
}

// valid reports whether tok was issued by this service to uuid at addr
// and has not expired.
func (t *tokens) valid(tok, uuid string, addr netip.Addr) bool {
	p, s, ok := strings.Cut(tok, ".")
	if !ok {
		return false
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p)
	sig, err2 := enc.DecodeString(s)
	if err1 != nil || err2 != nil || len(payload) < 8 || !hmac.Equal(sig, t.sign(payload)) {
		return false
	}
	expiry := time.Unix(int64(binary.BigEndian.Uint64(payload[:8])), 0)
	want := append(addr.AsSlice(), uuid...)
	return t.now().Before(expiry) && string(payload[8:]) == string(want)
}

// serveToken answers PUT /latest/api/token.
func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request, src netip.Addr) {
	if r.Method != http.MethodPut {
		methodNotAllowed(w, "PUT")
		return
	}
	if r.Header.Get(headerForwarded) != "" {
		// A token must come straight from the guest: a relay adds this.
		http.Error(w, "session tokens are not issued through a proxy (X-Forwarded-For present)", http.StatusForbidden)
		return
	}
	ttl, err := strconv.Atoi(strings.TrimSpace(r.Header.Get(headerTokenTTL)))
	if err != nil || ttl < 1 || ttl > maxTokenTTL {
		http.Error(w, "X-aws-ec2-metadata-token-ttl-seconds must be a number of seconds from 1 to 21600", http.StatusBadRequest)
		return
	}
	if r.Header.Get(headerInstanceID) != "" {
		http.Error(w, "session tokens are not issued to proxied requests (X-Instance-ID present)", http.StatusForbidden)
		return
	}
	md, status, msg := h.identify(r, src)
	if status != 0 {
		http.Error(w, msg, status)
		return
	}
	if err := setTTLOne(r); err != nil {
		h.log.Error("set IP TTL 1 on a token answer", "err", err)
		http.Error(w, "cannot limit the token answer to one hop; no token issued", http.StatusInternalServerError)
		return
	}
	w.Header().Set(headerTokenTTL, strconv.Itoa(ttl))
	writeText(w, r, h.tokens.issue(md.UUID, src, ttl), textPlain)
}

// checkToken applies the token rules to a GET or POST: a token present
// must be valid for this instance and address; none is fine unless
// RequireToken.
func (h *Handler) checkToken(r *http.Request, src netip.Addr, uuid string) (int, string) {
	tok := r.Header.Get(headerToken)
	if tok == "" {
		if h.opts.RequireToken {
			return http.StatusUnauthorized, "a session token is required: PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds, then send it as X-aws-ec2-metadata-token"
		}
		return 0, ""
	}
	if !h.tokens.valid(tok, uuid, src) {
		return http.StatusUnauthorized, "the session token is invalid or expired; PUT /latest/api/token for a new one"
	}
	return 0, ""
}

// setTTLOne makes the rest of the request's connection leave with IP TTL
// (hop limit) 1, so the token cannot be relayed beyond the first router.
func setTTLOne(r *http.Request) error {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errNoConn
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	is6 := false
	if ap, err := netip.ParseAddrPort(c.LocalAddr().String()); err == nil {
		is6 = ap.Addr().Is6() && !ap.Addr().Is4In6()
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		if is6 {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS, 1)
			return
		}
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

type connError string

func (e connError) Error() string { return string(e) }

const errNoConn = connError("the server was not built with metadata.ConnContext; cannot reach the connection's socket")
