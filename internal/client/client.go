// Package client is the typed Go client of novanet's HTTP API, used by the
// CLI, the agent, the lab and the tests. It speaks the native /v1 endpoints
// where they exist and the OpenStack-compatible /v2.1 ones otherwise, and
// turns the server's error bodies back into *model.Error values carrying
// the server's message and kind.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"novanet/internal/model"
	"novanet/internal/version"
	"novanet/internal/wire"
)

// DefaultTimeout bounds every call whose context has no deadline of its
// own: a hung server (accepting connections, never answering) must not
// hold a caller forever. Long polls get their own timeout plus this.
const DefaultTimeout = 10 * time.Second

// Client talks to one novanet server with one token. It is safe for
// concurrent use.
type Client struct {
	base    string
	token   string
	http    *http.Client
	timeout time.Duration
}

// New returns a client of the server at baseURL (e.g.
// "http://127.0.0.1:8774") authenticating with token.
func New(baseURL, token string) *Client {
	return &Client{
		base:  strings.TrimRight(baseURL, "/"),
		token: token,
		// No http.Client timeout: do bounds each call by its context, so
		// a long poll can wait longer than an ordinary call.
		http:    &http.Client{Transport: http.DefaultTransport},
		timeout: DefaultTimeout,
	}
}

// WithTimeout sets the deadline given to calls whose context has none
// (DefaultTimeout unless set; a long poll gets its own wait on top).
func (c *Client) WithTimeout(d time.Duration) *Client {
	if d > 0 {
		c.timeout = d
	}
	return c
}

// WithHTTPClient replaces the underlying HTTP client (tests, custom TLS).
func (c *Client) WithHTTPClient(h *http.Client) *Client {
	c.http = h
	return c
}

// errorBody is nova's error shape: {"itemNotFound":{"code":404,"message":"..."}}
// with novanet's "kind" extension.
type errorDetail struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Kind    string `json:"kind"`
}

// KindFromName maps the "kind" names the server sends back to model kinds.
func KindFromName(name string) model.ErrorKind {
	switch name {
	case "invalid":
		return model.ErrInvalid
	case "forbidden":
		return model.ErrForbidden
	case "not_found":
		return model.ErrNotFound
	case "conflict":
		return model.ErrConflict
	case "exhausted":
		return model.ErrExhausted
	case "quota":
		return model.ErrQuota
	case "unauthorized":
		return model.ErrUnauthorized
	}
	return 0
}

func kindFromStatus(code int) model.ErrorKind {
	switch code {
	case 400, 413, 415:
		return model.ErrInvalid
	case 401:
		return model.ErrUnauthorized
	case 403:
		return model.ErrForbidden
	case 404:
		return model.ErrNotFound
	case 409:
		return model.ErrConflict
	}
	return 0
}

// HTTPError is returned for a non-2xx answer. It wraps a *model.Error (so
// model.KindOf works) and keeps the HTTP status.
type HTTPError struct {
	Status int
	Err    *model.Error
}

func (e *HTTPError) Error() string { return e.Err.Msg }
func (e *HTTPError) Unwrap() error { return e.Err }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.doWithin(ctx, c.timeout, method, path, in, out)
}

// doWithin runs one call; when ctx has no deadline it gets one of limit,
// so no call waits on a server that never answers.
func (c *Client) doWithin(ctx context.Context, limit time.Duration, method, path string, in, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request for %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "novanet/"+version.String())
	hostResource := strings.HasPrefix(path, "/v1/hosts/") && !strings.Contains(path, "/leases") && !strings.Contains(path, "/metadata-password")
	if hostResource {
		req.Header.Set(model.HostProtocolHeader, strconv.Itoa(model.HostStateProtocol))
	}
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s %s: no answer from %s in time: %w (is novanet serve running and reachable?)", method, path, c.base, err)
		}
		return fmt.Errorf("%s %s: %w (is novanet serve running at %s?)", method, path, err, c.base)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read response of %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp.StatusCode, data)
	}
	if hostResource {
		if err := checkHostProtocol(resp.Header.Get(model.HostProtocolHeader)); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response of %s %s: %w", method, path, err)
	}
	return nil
}

func decodeError(status int, data []byte) error {
	var m map[string]errorDetail
	e := &model.Error{Kind: kindFromStatus(status)}
	if json.Unmarshal(data, &m) == nil && len(m) == 1 {
		for _, d := range m {
			e.Msg = d.Message
			if k := KindFromName(d.Kind); k != 0 {
				e.Kind = k
			}
		}
	}
	if e.Msg == "" {
		e.Msg = fmt.Sprintf("server answered %d: %s", status, strings.TrimSpace(string(data)))
	}
	return &HTTPError{Status: status, Err: e}
}

// ---- agent endpoints (/v1/hosts, /v1/leases) ----

// HostState returns the desired state of host.
func (c *Client) HostState(ctx context.Context, host string) (model.HostState, error) {
	var hs model.HostState
	err := c.do(ctx, http.MethodGet, "/v1/hosts/"+url.PathEscape(host)+"/state", nil, &hs)
	return hs, err
}

// WaitHost long-polls until host's revision exceeds after or timeout passes
// (the server caps it), and returns the current revision.
func (c *Client) WaitHost(ctx context.Context, host string, after int64, timeout time.Duration) (int64, error) {
	q := url.Values{}
	q.Set("after", strconv.FormatInt(after, 10))
	q.Set("timeout", timeout.String())
	var out struct {
		Revision int64 `json:"revision"`
	}
	err := c.doWithin(ctx, timeout+c.timeout, http.MethodGet, "/v1/hosts/"+url.PathEscape(host)+"/watch?"+q.Encode(), nil, &out)
	return out.Revision, err
}

// WatchHost long-polls until host's revision differs from after or timeout
// passes (the server caps it), and returns what changed since after: an
// empty delta (To == after) when nothing did, the whole state in it
// when the server could not say.
func (c *Client) WatchHost(ctx context.Context, host string, after int64, timeout time.Duration) (model.HostStateDelta, error) {
	q := url.Values{}
	q.Set("after", strconv.FormatInt(after, 10))
	q.Set("timeout", timeout.String())
	var out struct {
		Revision int64                 `json:"revision"`
		Delta    *model.HostStateDelta `json:"delta"`
	}
	path := "/v1/hosts/" + url.PathEscape(host) + "/watch?" + q.Encode()
	if err := c.doWithin(ctx, timeout+c.timeout, http.MethodGet, path, nil, &out); err != nil {
		return model.HostStateDelta{}, err
	}
	if out.Delta == nil {
		return model.HostStateDelta{}, model.Errorf(model.ErrConflict, "GET %s: the answer carries no delta: the server does not speak host state protocol %d; upgrade the server", path, model.HostStateProtocol)
	}
	return *out.Delta, nil
}

func checkHostProtocol(v string) error {
	if v == "" {
		return model.Errorf(model.ErrConflict, "the server names no host state protocol (it speaks 1), this agent speaks %d: upgrade the server", model.HostStateProtocol)
	}
	if v != strconv.Itoa(model.HostStateProtocol) {
		return model.Errorf(model.ErrConflict, "the server speaks host state protocol %s, this agent speaks %d: upgrade the older side so both speak the same", v, model.HostStateProtocol)
	}
	return nil
}

// ReportApplied tells the server which revision host's agent applied, and
// the problem it met ("" when none) and the last drift it repaired.
func (c *Client) ReportApplied(ctx context.Context, host string, r model.AppliedReport) error {
	in := struct {
		model.AppliedReport
		Version string `json:"version"`
	}{r, version.String()}
	return c.do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(host)+"/applied", in, nil)
}

// ListHosts lists every host with its roles and its agent's last report
// (admin).
func (c *Client) ListHosts(ctx context.Context) ([]model.HostReport, error) {
	var out []model.HostReport
	err := c.do(ctx, http.MethodGet, "/v1/hosts", nil, &out)
	return out, err
}

// RecordLease forwards one dnsmasq lease event.
func (c *Client) RecordLease(ctx context.Context, ev model.LeaseEvent) error {
	return c.do(ctx, http.MethodPost, "/v1/leases", ev, nil)
}

// Leases returns what host's dnsmasq on bridge should believe it leased.
func (c *Client) Leases(ctx context.Context, host, bridge string) ([]model.Lease, error) {
	var out []model.Lease
	err := c.do(ctx, http.MethodGet, "/v1/hosts/"+url.PathEscape(host)+"/leases?bridge="+url.QueryEscape(bridge), nil, &out)
	return out, err
}

// ---- instances (/v1/instances) ----

// BootInstance allocates networking for an instance.
func (c *Client) BootInstance(ctx context.Context, req model.BootRequest) (model.InstanceDetail, error) {
	var out model.InstanceDetail
	err := c.do(ctx, http.MethodPost, "/v1/instances", req, &out)
	return out, err
}

// DeleteInstance deallocates an instance's networking.
func (c *Client) DeleteInstance(ctx context.Context, uuid string) error {
	return c.do(ctx, http.MethodDelete, "/v1/instances/"+url.PathEscape(uuid), nil, nil)
}

// GetInstance returns one instance with its networking.
func (c *Client) GetInstance(ctx context.Context, uuid string) (model.InstanceDetail, error) {
	var out model.InstanceDetail
	err := c.do(ctx, http.MethodGet, "/v1/instances/"+url.PathEscape(uuid), nil, &out)
	return out, err
}

// ListInstances returns the instances the token may see, page by page.
func (c *Client) ListInstances(ctx context.Context) ([]model.InstanceDetail, error) {
	const page = 1000
	var out []model.InstanceDetail
	marker := ""
	for {
		var batch []model.InstanceDetail
		path := "/v1/instances?limit=" + strconv.Itoa(page)
		if marker != "" {
			path += "&marker=" + url.QueryEscape(marker)
		}
		if err := c.do(ctx, http.MethodGet, path, nil, &batch); err != nil {
			return out, err
		}
		out = append(out, batch...)
		if len(batch) < page {
			return out, nil
		}
		marker = batch[len(batch)-1].UUID
	}
}

// ---- networks (/v1/networks) ----

// CreateNetworks carves networks as nova-manage network create does.
func (c *Client) CreateNetworks(ctx context.Context, req model.NetworkCreateRequest) ([]model.Network, error) {
	var out []model.Network
	err := c.do(ctx, http.MethodPost, "/v1/networks", req, &out)
	return out, err
}

// ListNetworks returns the networks the token may see.
func (c *Client) ListNetworks(ctx context.Context) ([]model.Network, error) {
	var out []model.Network
	err := c.do(ctx, http.MethodGet, "/v1/networks", nil, &out)
	return out, err
}

// GetNetwork returns one network by id, uuid or label.
func (c *Client) GetNetwork(ctx context.Context, ref string) (model.Network, error) {
	var out model.Network
	err := c.do(ctx, http.MethodGet, "/v1/networks/"+url.PathEscape(ref), nil, &out)
	return out, err
}

// DeleteNetwork deletes a network by id, uuid or label.
func (c *Client) DeleteNetwork(ctx context.Context, ref string) error {
	return c.do(ctx, http.MethodDelete, "/v1/networks/"+url.PathEscape(ref), nil, nil)
}

// ---- fixed IPs (/v2.1/os-fixed-ips) ----

// FixedIPInfo is nova's os-fixed-ips view.
type FixedIPInfo struct {
	Address  string `json:"address"`
	CIDR     string `json:"cidr"`
	Host     string `json:"host"`
	Hostname string `json:"hostname"`
	Reserved bool   `json:"reserved"`
	// novanet additions to nova's view.
	Allocated    bool   `json:"allocated"`
	Leased       bool   `json:"leased"`
	InstanceUUID string `json:"instance_uuid"`
}

func fixedIPInfo(f wire.FixedIP) FixedIPInfo {
	deref := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	return FixedIPInfo{Address: f.Address, CIDR: f.CIDR, Host: deref(f.Host), Hostname: deref(f.Hostname),
		Reserved: f.Reserved, Allocated: f.Allocated, Leased: f.Leased, InstanceUUID: deref(f.InstanceUUID)}
}

// GetFixedIP shows one fixed address.
func (c *Client) GetFixedIP(ctx context.Context, addr netip.Addr) (FixedIPInfo, error) {
	var out wire.FixedIPOne
	err := c.do(ctx, http.MethodGet, "/v2.1/os-fixed-ips/"+addr.String(), nil, &out)
	return fixedIPInfo(out.FixedIP), err
}

// SetFixedIPReserved reserves or unreserves a fixed address.
func (c *Client) SetFixedIPReserved(ctx context.Context, addr netip.Addr, reserved bool) error {
	action := "unreserve"
	if reserved {
		action = "reserve"
	}
	return c.do(ctx, http.MethodPost, "/v2.1/os-fixed-ips/"+addr.String()+"/action", map[string]any{action: nil}, nil)
}

// String names the endpoint and a token prefix, for logs and tests.
func (c *Client) String() string {
	tok := c.token
	if len(tok) > 4 {
		tok = tok[:4] + "…"
	}
	return c.base + " token=" + tok
}
