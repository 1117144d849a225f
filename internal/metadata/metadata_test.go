package metadata

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"novanet/internal/model"
)

// Test plan: instances live in 10.0.0.0/24; 10.0.0.3 (vm-a, with a key
// and user data) and 10.0.0.4 (vm-b, neither); requests come from the
// loopback test client, whose source address each test picks by setting
// RemoteAddr through the handler directly.

// mapSource is an in-memory Source over a fixed set of instances.
type mapSource struct {
	mu  sync.Mutex
	all map[netip.Addr]model.InstanceMetadata
}

func (s *mapSource) MetadataByAddress(_ context.Context, a netip.Addr) (model.InstanceMetadata, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	md, ok := s.all[a]
	if !ok {
		return md, model.Errorf(model.ErrNotFound, "no instance at %s", a)
	}
	return md, nil
}

func (s *mapSource) MetadataByInstance(_ context.Context, uuid string, _ netip.Addr) (model.InstanceMetadata, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, md := range s.all {
		if md.UUID == uuid {
			return md, nil
		}
	}
	return model.InstanceMetadata{}, model.Errorf(model.ErrNotFound, "no instance %s", uuid)
}

func (s *mapSource) SetMetadataPassword(_ context.Context, uuid, pw string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for a, md := range s.all {
		if md.UUID == uuid {
			if md.Password != "" {
				return model.Errorf(model.ErrConflict, "set")
			}
			md.Password = pw
			s.all[a] = md
			return nil
		}
	}
	return model.Errorf(model.ErrNotFound, "gone")
}

var (
	addrA = netip.MustParseAddr("10.0.0.3")
	addrB = netip.MustParseAddr("10.0.0.4")
)

func testSource() *mapSource {
	net := model.Network{UUID: "net-uuid", Kind: model.KindFlatDHCP, CIDR: netip.MustParsePrefix("10.0.0.0/24")}
	return &mapSource{all: map[netip.Addr]model.InstanceMetadata{
		addrA: {UUID: "1a2b3c4d-0000-4000-8000-00000000000a", Hostname: "vm-a", ProjectID: "demo", AvailabilityZone: "nova",
			UserData: "#!/bin/sh\necho a\n", KeyName: "mykey", KeyData: "ssh-ed25519 AAAA a@lab", SecurityGroups: []string{"default", "web"},
			DHCPDomain: "novalocal", Address: addrA, MAC: "fa:16:3e:00:00:0a", Device: "tap1", Network: net,
			Gateway: netip.MustParseAddr("10.0.0.1"), DNS: []netip.Addr{netip.MustParseAddr("10.0.0.1")}},
		addrB: {UUID: "5e6f7a8b-0000-4000-8000-00000000000b", Hostname: "vm-b", ProjectID: "other", AvailabilityZone: "nova",
			SecurityGroups: []string{"default"}, Address: addrB, MAC: "fa:16:3e:00:00:0b", Network: net},
	}}
}

type result struct {
	status int
	body   string
	header http.Header
}

// do serves one request from src straight through the handler.
func do(h http.Handler, src netip.Addr, method, path string, hdr map[string]string, body string) result {
	r, _ := http.NewRequest(method, "http://169.254.169.254"+path, strings.NewReader(body))
	r.RemoteAddr = netip.AddrPortFrom(src, 40000).String()
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := &recorder{header: http.Header{}}
	h.ServeHTTP(w, r)
	return result{w.status(), w.body.String(), w.header}
}

type recorder struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(c int) {
	if r.code == 0 {
		r.code = c
	}
}
func (r *recorder) status() int {
	if r.code == 0 {
		return 200
	}
	return r.code
}

// walk fetches every item every listing names, below path, and returns
// how many it fetched. EC2's "N=name" entries name the directory N/.
func walk(t *testing.T, h http.Handler, src netip.Addr, path string, seen map[string]string) {
	t.Helper()
	res := do(h, src, "GET", path, nil, "")
	if res.status != 200 {
		t.Fatalf("GET %s = %d %q, but a listing names it", path, res.status, res.body)
	}
	seen[path] = res.body
	isListing := strings.HasSuffix(path, "/")
	if !isListing {
		return
	}
	for _, line := range strings.Split(res.body, "\n") {
		if line == "" {
			continue
		}
		if name, _, ok := strings.Cut(line, "="); ok {
			line = name + "/"
		}
		if path == "/" {
			line += "/" // the root lists versions, each a directory
		}
		walk(t, h, src, path+line, seen)
	}
}

func TestEveryListedItemIsFetchable(t *testing.T) {
	h := New(testSource(), Options{RateBurst: 1 << 20})
	for _, src := range []netip.Addr{addrA, addrB} {
		seen := map[string]string{}
		walk(t, h, src, "/", seen)
		// The OpenStack tree's listings name files and versions without
		// slashes; walk it explicitly.
		vs := do(h, src, "GET", "/openstack", nil, "")
		for _, v := range strings.Split(vs.body, "\n") {
			files := do(h, src, "GET", "/openstack/"+v, nil, "")
			if files.status != 200 {
				t.Fatalf("/openstack/%s = %d", v, files.status)
			}
			for _, f := range strings.Split(files.body, "\n") {
				p := "/openstack/" + v + "/" + f
				if r := do(h, src, "GET", p, nil, ""); r.status != 200 {
					t.Fatalf("GET %s = %d %q, but /openstack/%s lists it", p, r.status, r.body, v)
				}
				seen[p] = ""
			}
		}
		t.Logf("%s: %d items", src, len(seen))
		if len(seen) < 200 {
			t.Fatalf("walk from %s fetched only %d items", src, len(seen))
		}
	}
}

func TestEC2Items(t *testing.T) {
	h := New(testSource(), Options{})
	want := map[string]string{
		"/latest/meta-data/instance-id":                  "i-1a2b3c4d",
		"/latest/meta-data/local-ipv4":                   "10.0.0.3",
		"/latest/meta-data/hostname":                     "vm-a.novalocal",
		"/latest/meta-data/public-keys/":                 "0=mykey",
		"/latest/meta-data/public-keys/0/openssh-key":    "ssh-ed25519 AAAA a@lab",
		"/latest/meta-data/placement/availability-zone":  "nova",
		"/latest/meta-data/security-groups":              "default\nweb",
		"/2009-04-04/user-data":                          "#!/bin/sh\necho a\n",
		"/latest/":                                       "meta-data/\nuser-data",
		"/1.0/meta-data/public-ipv4":                     "\x00404",
		"/2007-01-19/meta-data/public-ipv4":              "",
		"/ec2/latest/meta-data/ami-launch-index":         "0",
		"/latest//meta-data/./block-device-mapping/root": "/dev/vda",
		"/2010-01-01/meta-data/":                         "\x00404",
		"/latest/meta-data/nonsense":                     "\x00404",
		"/latest/meta-data/instance-id/more":             "\x00404",
	}
	for path, body := range want {
		res := do(h, addrA, "GET", path, nil, "")
		if body == "\x00404" {
			if res.status != 404 {
				t.Errorf("GET %s = %d %q, want 404", path, res.status, res.body)
			}
			continue
		}
		if res.status != 200 || res.body != body {
			t.Errorf("GET %s = %d %q, want %q", path, res.status, res.body, body)
		}
	}
	// No key and no user data: 404, the guest's "none".
	for _, p := range []string{"/latest/meta-data/public-keys/0/openssh-key", "/latest/user-data", "/openstack/latest/user_data"} {
		if res := do(h, addrB, "GET", p, nil, ""); res.status != 404 {
			t.Errorf("vm-b GET %s = %d, want 404", p, res.status)
		}
	}
	// An address nobody holds.
	if res := do(h, netip.MustParseAddr("10.0.0.99"), "GET", "/latest/meta-data/instance-id", nil, ""); res.status != 404 {
		t.Errorf("unknown source = %d, want 404", res.status)
	}
}

func TestOpenStackItems(t *testing.T) {
	h := New(testSource(), Options{})
	res := do(h, addrA, "GET", "/openstack/latest/meta_data.json", nil, "")
	var md map[string]any
	if err := json.Unmarshal([]byte(res.body), &md); err != nil || res.header.Get("Content-Type") != appJSON {
		t.Fatalf("meta_data.json: %v %q %q", err, res.header.Get("Content-Type"), res.body)
	}
	for _, k := range []string{"uuid", "name", "hostname", "project_id", "availability_zone", "launch_index", "public_keys", "keys", "meta", "devices", "random_seed"} {
		if _, ok := md[k]; !ok {
			t.Errorf("meta_data.json lacks %s: %v", k, md)
		}
	}
	if md["uuid"] != "1a2b3c4d-0000-4000-8000-00000000000a" || md["public_keys"].(map[string]any)["mykey"] != "ssh-ed25519 AAAA a@lab" {
		t.Errorf("meta_data.json = %v", md)
	}
	res = do(h, addrA, "GET", "/openstack/2012-08-10/", nil, "")
	if res.body != "meta_data.json\nuser_data" {
		t.Errorf("folsom listing = %q", res.body)
	}
	if r := do(h, addrA, "GET", "/openstack/2012-08-10/password", nil, ""); r.status != 404 {
		t.Errorf("folsom password = %d, want 404", r.status)
	}
	res = do(h, addrA, "GET", "/openstack/latest/network_data.json", nil, "")
	var nd struct {
		Links    []map[string]any `json:"links"`
		Networks []map[string]any `json:"networks"`
		Services []map[string]any `json:"services"`
	}
	if err := json.Unmarshal([]byte(res.body), &nd); err != nil || len(nd.Networks) != 1 {
		t.Fatalf("network_data.json: %v %s", err, res.body)
	}
	n := nd.Networks[0]
	if n["type"] != "ipv4_dhcp" || n["ip_address"] != "10.0.0.3" || n["netmask"] != "255.255.255.0" || nd.Links[0]["ethernet_mac_address"] != "fa:16:3e:00:00:0a" {
		t.Errorf("network_data.json = %s", res.body)
	}
	if r := do(h, addrA, "GET", "/openstack/2099-01-01/meta_data.json", nil, ""); r.status != 404 {
		t.Errorf("unknown version = %d", r.status)
	}
}

func TestPassword(t *testing.T) {
	h := New(testSource(), Options{})
	if r := do(h, addrA, "POST", "/openstack/latest/password", nil, strings.Repeat("x", 1021)); r.status != 400 {
		t.Fatalf("1021 bytes = %d, want 400", r.status)
	}
	if r := do(h, addrA, "POST", "/openstack/latest/password", nil, strings.Repeat("x", 1020)); r.status != 200 {
		t.Fatalf("first POST = %d %q", r.status, r.body)
	}
	if r := do(h, addrA, "POST", "/openstack/latest/password", nil, "again"); r.status != 409 {
		t.Fatalf("second POST = %d, want 409", r.status)
	}
	if r := do(h, addrA, "GET", "/openstack/latest/password", nil, ""); r.body != strings.Repeat("x", 1020) {
		t.Fatalf("GET password = %q", r.body)
	}
	if r := do(h, addrB, "GET", "/openstack/latest/password", nil, ""); r.status != 200 || r.body != "" {
		t.Fatalf("vm-b's password = %d %q, want empty", r.status, r.body)
	}
	if r := do(h, addrB, "POST", "/openstack/2012-08-10/password", nil, "x"); r.status != 405 {
		t.Fatalf("POST to Folsom's password = %d, want 405 (Folsom has none)", r.status)
	}
	if r := do(h, addrA, "POST", "/latest/meta-data/instance-id", nil, "x"); r.status != 405 {
		t.Fatalf("POST elsewhere = %d, want 405", r.status)
	}
}

func TestForgedHeadersGetOwnDataOrError(t *testing.T) {
	src := testSource()
	b := src.all[addrB]
	for _, secret := range []string{"", "s3cret"} {
		h := New(src, Options{ProxySharedSecret: secret})
		for _, hdr := range []map[string]string{
			{"X-Forwarded-For": addrA.String()},
			{"X-Instance-ID": src.all[addrA].UUID},
			{"X-Instance-ID": src.all[addrA].UUID, "X-Tenant-ID": "demo", "X-Instance-ID-Signature": "00"},
			{"X-Instance-ID": src.all[addrA].UUID, "X-Tenant-ID": "demo", "X-Instance-ID-Signature": Sign("guess", src.all[addrA].UUID)},
		} {
			r := do(h, addrB, "GET", "/latest/meta-data/instance-id", hdr, "")
			if r.status == 200 && r.body != EC2InstanceID(b.UUID) {
				t.Errorf("secret %q, vm-b forging %v got %q", secret, hdr, r.body)
			}
			if r.status != 200 && r.status < 400 {
				t.Errorf("secret %q, forging %v = %d", secret, hdr, r.status)
			}
		}
	}
	// A proxy that signs is believed, for the signed instance only, and
	// only within its project.
	h := New(src, Options{ProxySharedSecret: "s3cret"})
	proxy := netip.MustParseAddr("192.0.2.10")
	a := src.all[addrA]
	r := do(h, proxy, "GET", "/latest/meta-data/instance-id", map[string]string{"X-Instance-ID": a.UUID, "X-Tenant-ID": "demo",
		"X-Instance-ID-Signature": Sign("s3cret", a.UUID), "X-Forwarded-For": addrA.String()}, "")
	if r.status != 200 || r.body != EC2InstanceID(a.UUID) {
		t.Fatalf("signed proxy request = %d %q", r.status, r.body)
	}
	r = do(h, proxy, "GET", "/latest/meta-data/instance-id", map[string]string{"X-Instance-ID": a.UUID, "X-Tenant-ID": "other",
		"X-Instance-ID-Signature": Sign("s3cret", a.UUID)}, "")
	if r.status != 404 {
		t.Fatalf("signed request for another project = %d, want 404", r.status)
	}
}

func TestTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	src := testSource()
	for _, require := range []bool{false, true} {
		h := New(src, Options{RequireToken: require, Now: clock})
		srv := newTCPServer(t, h)
		put := func(hdr map[string]string) (*http.Response, string) {
			req, _ := http.NewRequest("PUT", srv.url+"/latest/api/token", nil)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp, string(b)
		}
		for _, bad := range []string{"", "0", "21601", "x"} {
			if resp, _ := put(map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": bad}); resp.StatusCode != 400 {
				t.Errorf("ttl %q = %d, want 400", bad, resp.StatusCode)
			}
		}
		if resp, _ := put(map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60", "X-Forwarded-For": "10.0.0.3"}); resp.StatusCode != 403 {
			t.Errorf("PUT with X-Forwarded-For = %d, want 403", resp.StatusCode)
		}
		// The loopback client is no instance: 404.
		if resp, _ := put(map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60"}); resp.StatusCode != 404 {
			t.Errorf("PUT from a non-instance = %d, want 404", resp.StatusCode)
		}
		src.mu.Lock()
		loop := src.all[addrA]
		loop.Address = netip.MustParseAddr("127.0.0.1")
		src.all[loop.Address] = loop
		src.mu.Unlock()
		resp, tok := put(map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60"})
		if resp.StatusCode != 200 || tok == "" || resp.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") != "60" {
			t.Fatalf("PUT = %d %q", resp.StatusCode, tok)
		}
		if ttl := <-srv.ttl; ttl != 1 {
			t.Errorf("token answer's socket has IP_TTL %d, want 1", ttl)
		}
		get := func(tok string) int {
			req, _ := http.NewRequest("GET", srv.url+"/latest/meta-data/instance-id", nil)
			if tok != "" {
				req.Header.Set("X-aws-ec2-metadata-token", tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if c := get(tok); c != 200 {
			t.Errorf("GET with token = %d", c)
		}
		if c := get(tok[:len(tok)-2] + "AA"); c != 401 {
			t.Errorf("GET with a bad token = %d, want 401", c)
		}
		if c, want := get(""), map[bool]int{false: 200, true: 401}[require]; c != want {
			t.Errorf("require %v: GET without token = %d, want %d", require, c, want)
		}
		// Another instance's token is no good here.
		other := h.tokens.issue(src.all[addrB].UUID, netip.MustParseAddr("127.0.0.1"), 60)
		if c := get(other); c != 401 {
			t.Errorf("GET with vm-b's token = %d, want 401", c)
		}
		mu.Lock()
		now = now.Add(61 * time.Second)
		mu.Unlock()
		if c := get(tok); c != 401 {
			t.Errorf("GET with an expired token = %d, want 401", c)
		}
		src.mu.Lock()
		delete(src.all, loop.Address)
		src.mu.Unlock()
	}
}

func TestTokensSharedThroughTheSecret(t *testing.T) {
	a := newTokens("s3cret", time.Now)
	b := newTokens("s3cret", time.Now)
	c := newTokens("", time.Now)
	tok := a.issue("uuid", addrA, 60)
	if !b.valid(tok, "uuid", addrA) {
		t.Fatal("a token from one service with the shared secret is refused by another")
	}
	if c.valid(tok, "uuid", addrA) || b.valid(tok, "uuid", addrB) || b.valid(tok, "other", addrA) {
		t.Fatal("a token is accepted without the key, from another address or for another instance")
	}
}

type tcpServer struct {
	url string
	ttl chan int
}

// newTCPServer serves h on loopback; after each request on a connection
// it reports the connection's IP_TTL on ttl (when someone listens).
func newTCPServer(t *testing.T, h http.Handler) *tcpServer {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpServer{url: "http://" + ln.Addr().String(), ttl: make(chan int, 100)}
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.URL.Path == "/latest/api/token" && w.Header().Get("X-aws-ec2-metadata-token-ttl-seconds") != "" {
			c := r.Context().Value(connKey{}).(net.Conn)
			raw, _ := c.(syscall.Conn).SyscallConn()
			_ = raw.Control(func(fd uintptr) {
				v, _ := syscall.GetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL)
				s.ttl <- v
			})
		}
	}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func TestRateLimit(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	h := New(testSource(), Options{Now: func() time.Time { return now }})
	for i := range 200 {
		if r := do(h, addrA, "GET", "/latest/meta-data/instance-id", nil, ""); r.status != 200 {
			t.Fatalf("request %d of a burst = %d", i, r.status)
		}
	}
	r := do(h, addrA, "GET", "/latest/meta-data/instance-id", nil, "")
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("a guest in a loop = %d, want 429 with Retry-After", r.status)
	}
	if r := do(h, addrB, "GET", "/latest/meta-data/instance-id", nil, ""); r.status != 200 {
		t.Fatalf("another guest = %d while the first is throttled", r.status)
	}
	now = now.Add(time.Second)
	if r := do(h, addrA, "GET", "/latest/meta-data/instance-id", nil, ""); r.status != 200 {
		t.Fatalf("after a second = %d", r.status)
	}
	l := newLimiter(1, 1, 2, func() time.Time { return now })
	for _, a := range []string{"10.0.0.1", "10.0.0.2"} {
		l.allow(netip.MustParseAddr(a))
	}
	if l.allow(netip.MustParseAddr("10.0.0.5")) || len(l.buckets) > 2 {
		t.Fatalf("limiter grew past its bound: %d buckets", len(l.buckets))
	}
	now = now.Add(2 * time.Second)
	if !l.allow(netip.MustParseAddr("10.0.0.5")) || len(l.buckets) > 2 {
		t.Fatalf("limiter did not forget quiet sources: %d buckets", len(l.buckets))
	}
}
