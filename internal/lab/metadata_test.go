package lab_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"novanet/internal/lab"
	"novanet/internal/metadata"
)

// The metadata tests boot guests with user data and keys and fetch their
// metadata from http://169.254.169.254/ with curl run inside the guest's
// namespace, as cloud-init and cirros do over the guest's own network:
// the request leaves through the guest's default route, is DNATed by its
// gateway host (single-host: the controller, answered by serve;
// multi-host: its compute, answered by that host's agent) and must carry
// the guest's own source address all the way.

const metadataURL = "http://169.254.169.254"

// fetch GETs (or with method, PUTs/POSTs) path from inside vm and returns
// the HTTP status and body.
func fetch(t *testing.T, l *lab.Lab, vm, method, path string, headers ...string) (int, string) {
	t.Helper()
	ns, err := l.Namespace(vm)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"ip", "netns", "exec", ns, "curl", "-s", "-m", "5", "-X", method, "-o", "-", "-w", "\n%{http_code}"}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	args = append(args, metadataURL+path)
	out, err := exec.Command(args[0], args[1:]...).Output()
	if err != nil && len(out) == 0 {
		return 0, err.Error()
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	code, _ := strconv.Atoi(s[i+1:])
	return code, s[:i]
}

func get(t *testing.T, l *lab.Lab, vm, path string, headers ...string) (int, string) {
	t.Helper()
	return fetch(t, l, vm, "GET", path, headers...)
}

func requireCurl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("the metadata tests fetch with curl inside the guests (scripts/install-deps.sh installs it)")
	}
}

type guest struct {
	vm       lab.VM
	userData string
	key      string // "" = none
}

func bootGuests(t *testing.T, l *lab.Lab, specs []lab.VMSpec) []guest {
	t.Helper()
	vms, err := l.BootMany(context.Background(), specs, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]guest, len(vms))
	for i, vm := range vms {
		out[i] = guest{vm: vm, userData: specs[i].UserData, key: specs[i].KeyData}
	}
	return out
}

// checkOwnMetadata fetches what cloud-init and cirros read first and
// compares it with what the guest was booted with.
func checkOwnMetadata(t *testing.T, l *lab.Lab, g guest) {
	t.Helper()
	name := g.vm.Name
	want := map[string]string{
		"/latest/meta-data/instance-id":               metadata.EC2InstanceID(g.vm.UUID),
		"/latest/meta-data/local-ipv4":                g.vm.Address,
		"/latest/meta-data/hostname":                  name + ".novalocal",
		"/2009-04-04/meta-data/local-ipv4":            g.vm.Address,
		"/latest/user-data":                           g.userData,
		"/openstack/latest/user_data":                 g.userData,
		"/latest/meta-data/public-keys/0/openssh-key": g.key,
	}
	for path, body := range want {
		code, got := get(t, l, name, path)
		if body == "" {
			if code != 404 {
				t.Errorf("%s GET %s = %d %q, want 404 (none)", name, path, code, got)
			}
			continue
		}
		if code != 200 || got != body {
			t.Errorf("%s GET %s = %d %q, want %q", name, path, code, got, body)
		}
	}
	code, body := get(t, l, name, "/openstack/latest/meta_data.json")
	var md struct {
		UUID       string            `json:"uuid"`
		Name       string            `json:"name"`
		Hostname   string            `json:"hostname"`
		ProjectID  string            `json:"project_id"`
		PublicKeys map[string]string `json:"public_keys"`
	}
	if err := json.Unmarshal([]byte(body), &md); code != 200 || err != nil {
		t.Fatalf("%s meta_data.json = %d %q (%v)", name, code, body, err)
	}
	if md.UUID != g.vm.UUID || md.Name != name || md.ProjectID != "demo" || (g.key != "" && len(md.PublicKeys) != 1) {
		t.Errorf("%s meta_data.json = %s", name, body)
	}
	code, body = get(t, l, name, "/openstack/latest/network_data.json")
	if code != 200 || !strings.Contains(body, `"ip_address":"`+g.vm.Address+`"`) || !strings.Contains(body, g.vm.MAC) {
		t.Errorf("%s network_data.json = %d %s", name, code, body)
	}
}

func TestMetadataSingleHost(t *testing.T) { testMetadata(t, false) }
func TestMetadataMultiHost(t *testing.T)  { testMetadata(t, true) }

func testMetadata(t *testing.T, multiHost bool) {
	requireLab(t)
	requireCurl(t)
	o := fastOptions()
	o.MultiHost = multiHost
	o.ForceDHCPRelease = true // delete frees the address at once: re-boot on it
	l := up(t, o)
	guests := bootGuests(t, l, []lab.VMSpec{
		{Name: "vm1", Host: "compute-1", UserData: "#cloud-config\nhostname: vm1\n", KeyName: "lab", KeyData: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxhYmtleTEAAAAAAAAAAAAAAAAAAAAAAAAAAAAA vm1@lab"},
		{Name: "vm2", Host: "compute-2", UserData: "#!/bin/sh\necho vm2\n"},
		{Name: "vm3", Host: "compute-1"},
	})

	t.Run("own-data", func(t *testing.T) {
		for _, g := range guests {
			checkOwnMetadata(t, l, g)
		}
	})

	t.Run("client-reads", func(t *testing.T) {
		// cirros's ec2 datasource: 2009-04-04, an instance-id that starts
		// with "i-", then its key list.
		g := guests[0]
		if code, iid := get(t, l, "vm1", "/2009-04-04/meta-data/instance-id"); code != 200 || !strings.HasPrefix(iid, "i-") {
			t.Errorf("cirros's instance-id read = %d %q", code, iid)
		}
		for _, k := range []string{"ami-launch-index", "instance-type", "local-ipv4", "public-ipv4", "hostname", "local-hostname"} {
			if code, body := get(t, l, "vm1", "/2009-04-04/meta-data/"+k); code != 200 {
				t.Errorf("cirros's %s read = %d %q", k, code, body)
			}
		}
		// cloud-init's OpenStack source picks the newest version it knows
		// from the listing (2018-08-27) and needs uuid in its meta_data.
		if code, vs := get(t, l, "vm1", "/openstack"); code != 200 || !strings.Contains(vs, "2018-08-27\n") || !strings.HasSuffix(vs, "latest") {
			t.Errorf("/openstack = %d %q", code, vs)
		}
		if code, body := get(t, l, "vm1", "/openstack/2018-08-27/meta_data.json"); code != 200 || !strings.Contains(body, g.vm.UUID) {
			t.Errorf("2018-08-27 meta_data.json = %d %q", code, body)
		}
		// cloud-init's EC2 crawl: a listing line ending in / is a
		// directory, "N=name" is the key N/openssh-key, others are leaves.
		crawled := crawl(t, l, "vm1", "/2009-04-04/meta-data/")
		if crawled["public-keys/0/openssh-key"] != g.key || crawled["local-ipv4"] != g.vm.Address || len(crawled) < 15 {
			t.Errorf("cloud-init style crawl got %v", crawled)
		}
	})

	t.Run("forged-headers", func(t *testing.T) {
		victim := guests[0].vm
		for _, h := range [][]string{
			{"X-Forwarded-For: " + victim.Address},
			{"X-Instance-ID: " + victim.UUID},
			{"X-Instance-ID: " + victim.UUID, "X-Tenant-ID: demo", "X-Instance-ID-Signature: " + metadata.Sign("guessed", victim.UUID)},
		} {
			code, body := get(t, l, "vm2", "/latest/meta-data/instance-id", h...)
			if code == 200 && body != metadata.EC2InstanceID(guests[1].vm.UUID) {
				t.Errorf("vm2 forging %v got %q: another instance's data", h, body)
			}
			if code == 0 {
				t.Errorf("vm2 forging %v: no answer", h)
			}
			code, body = get(t, l, "vm2", "/latest/user-data", h...)
			if code == 200 && body != guests[1].userData {
				t.Errorf("vm2 forging %v got user data %q", h, body)
			}
		}
	})

	t.Run("tokens", func(t *testing.T) {
		code, tok := fetch(t, l, "vm1", "PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 60")
		if code != 200 || tok == "" {
			t.Fatalf("PUT token = %d %q", code, tok)
		}
		if code, body := get(t, l, "vm1", "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token: "+tok); code != 200 || body != metadata.EC2InstanceID(guests[0].vm.UUID) {
			t.Errorf("GET with token = %d %q", code, body)
		}
		if code, _ := get(t, l, "vm1", "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token: x"+tok); code != 401 {
			t.Errorf("GET with a bad token = %d, want 401", code)
		}
		if code, _ := get(t, l, "vm2", "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token: "+tok); code != 401 {
			t.Errorf("vm2 using vm1's token = %d, want 401", code)
		}
		if code, _ := fetch(t, l, "vm1", "PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 60", "X-Forwarded-For: 10.0.0.9"); code != 403 {
			t.Errorf("PUT with X-Forwarded-For = %d, want 403", code)
		}
	})

	t.Run("token-answer-ttl-1", func(t *testing.T) {
		// The packets carrying the token arrive in the guest with IP TTL 1;
		// an ordinary answer's do not.
		ttls := func(method string, headers ...string) string {
			ns, err := l.Namespace("vm1")
			if err != nil {
				t.Fatal(err)
			}
			dump := exec.Command("ip", "netns", "exec", ns, "timeout", "5", "tcpdump", "-l", "-n", "-v", "-i", "eth0",
				"tcp and src host 169.254.169.254 and src port 80 and (tcp[tcpflags] & tcp-push != 0)")
			var out strings.Builder
			dump.Stdout = &out
			if err := dump.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond) // tcpdump is listening
			if code, _ := fetch(t, l, "vm1", method, "/latest/api/token", headers...); code != 200 && method == "PUT" {
				t.Fatalf("PUT token = %d", code)
			}
			_ = dump.Wait()
			return out.String()
		}
		put := ttls("PUT", "X-aws-ec2-metadata-token-ttl-seconds: 60")
		if !strings.Contains(put, "ttl 1,") {
			t.Errorf("token answer packets, want ttl 1:\n%s", put)
		}
		// The same path with GET is an ordinary (405) answer: no TTL change.
		if plain := ttls("GET"); strings.Contains(plain, "ttl 1,") || !strings.Contains(plain, "ttl ") {
			t.Errorf("an ordinary answer's packets, want the default ttl:\n%s", plain)
		}
	})

	t.Run("password", func(t *testing.T) {
		if code, body := fetch(t, l, "vm3", "POST", "/openstack/latest/password", "Content-Type: text/plain"); code != 200 {
			t.Fatalf("POST password = %d %q", code, body)
		}
		if code, _ := fetch(t, l, "vm3", "POST", "/openstack/latest/password"); code != 409 {
			t.Errorf("second POST = %d, want 409", code)
		}
	})

	t.Run("delete-and-reboot-same-address", func(t *testing.T) {
		old := guests[2]
		if err := l.Delete(context.Background(), old.vm.Name); err != nil {
			t.Fatal(err)
		}
		fresh := bootGuests(t, l, []lab.VMSpec{{Name: "vm4", Host: old.vm.Host, UserData: "fresh data\n"}})[0]
		if fresh.vm.Address != old.vm.Address {
			t.Skipf("the new VM got %s, not the deleted one's %s; cannot test reuse", fresh.vm.Address, old.vm.Address)
		}
		// From its first request on, the new guest sees itself or an
		// error to retry, never the deleted instance.
		deadline := time.Now().Add(3 * time.Second)
		var last string
		// Paced under the service's sustained per-source rate (50/s) so
		// the checks after the loop are not refused as a flood.
		for n := 0; time.Now().Before(deadline); n++ {
			if n > 0 {
				time.Sleep(25 * time.Millisecond)
			}
			code, body := get(t, l, "vm4", "/latest/meta-data/instance-id")
			if code == 200 && body != metadata.EC2InstanceID(fresh.vm.UUID) {
				t.Fatalf("request %d after re-boot on %s got %q, the deleted instance's id", n, fresh.vm.Address, body)
			}
			if code == 200 {
				last = body
				if n == 0 {
					t.Logf("the first request after re-boot already answered the new instance")
				}
			}
		}
		if last == "" {
			t.Fatalf("the new instance never got its metadata")
		}
		checkOwnMetadata(t, l, fresh)
		if code, body := get(t, l, "vm4", "/openstack/latest/password"); code != 200 || body != "" {
			t.Errorf("the new instance sees password %q (%d), want none", body, code)
		}
	})

	// The gateway host's agent answers from its cached state while serve
	// is down (multi-host: each compute; single-host: the controller,
	// where serve shares the port and answers while the agent is down).
	t.Run("serve-outage", func(t *testing.T) {
		if err := l.StopDaemon("serve"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := l.StartDaemon("serve"); err != nil {
				t.Error(err)
			}
		}()
		checkOwnMetadata(t, l, guests[0])
		checkOwnMetadata(t, l, guests[1])
		code, body := fetch(t, l, "vm2", "POST", "/openstack/latest/password")
		if code != 503 || !strings.Contains(body, "API") {
			t.Errorf("password POST with serve down = %d %q, want 503 saying the API cannot be reached", code, body)
		}
	})
	if !multiHost {
		t.Run("agent-outage", func(t *testing.T) {
			waitMetadata(t, l, "vm1")
			// serve was just restarted: wait for its metadata socket
			// beside the agent's before taking the agent away.
			ns, err := l.Namespace("controller")
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				out, _ := lab.In(ns, "ss", "-Hltn", "sport = :8775")
				if strings.Count(strings.TrimSpace(out), "\n") >= 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("serve and the agent are not both listening on 8775:\n%s", out)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err := l.StopDaemon("agent-controller"); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := l.StartDaemon("agent-controller"); err != nil {
					t.Error(err)
				}
			}()
			// A connection the agent had accepted when it stopped is
			// reset; a guest retries, as cloud-init does.
			waitMetadata(t, l, "vm1")
			checkOwnMetadata(t, l, guests[0])
		})
	}

	t.Run("token-required", func(t *testing.T) {
		requireTokens(t, l)
		if code, _ := get(t, l, "vm1", "/latest/meta-data/instance-id"); code != 401 {
			t.Fatalf("GET without a token = %d, want 401 with metadata_require_token", code)
		}
		code, tok := fetch(t, l, "vm1", "PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 21600")
		if code != 200 {
			t.Fatalf("PUT token = %d %q", code, tok)
		}
		if code, body := get(t, l, "vm1", "/latest/meta-data/local-ipv4", "X-aws-ec2-metadata-token: "+tok); code != 200 || body != guests[0].vm.Address {
			t.Fatalf("GET with token = %d %q", code, body)
		}
	})
}

// crawl reads an EC2 metadata tree the way cloud-init's materializer
// does; every item a listing names must answer 200.
func crawl(t *testing.T, l *lab.Lab, vm, base string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(prefix string)
	walk = func(prefix string) {
		code, listing := get(t, l, vm, base+prefix)
		if code != 200 {
			t.Fatalf("%s listing %s%s = %d", vm, base, prefix, code)
		}
		for _, line := range strings.Split(listing, "\n") {
			switch {
			case line == "":
			case strings.HasSuffix(line, "/"):
				walk(prefix + line)
			default:
				resource := line
				if n, _, ok := strings.Cut(line, "="); ok {
					resource = n + "/openssh-key"
				}
				code, body := get(t, l, vm, base+prefix+resource)
				if code != 200 {
					t.Errorf("%s: %s%s%s = %d, but the listing names it", vm, base, prefix, resource, code)
				}
				out[prefix+resource] = body
			}
		}
	}
	walk("")
	return out
}

// waitMetadata waits until vm's metadata answers again (after a restart).
func waitMetadata(t *testing.T, l *lab.Lab, vm string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if code, _ := get(t, l, vm, "/latest/meta-data/instance-id"); code == 200 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s's metadata did not come back", vm)
}

// requireTokens turns metadata_require_token on in every host's
// configuration and restarts serve and the agents.
func requireTokens(t *testing.T, l *lab.Lab) {
	t.Helper()
	for _, h := range []string{"controller", "compute-1", "compute-2"} {
		conf := filepath.Join(l.Dir, h, "novanet.conf")
		f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		// [novanet] is the file's last section.
		_, err = f.WriteString("metadata_require_token = true\n")
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The controller is a gateway (its agent serves metadata) in
	// single-host mode only.
	listening := 1
	if !l.State().Options.MultiHost {
		listening = 2
	}
	for _, key := range []string{"serve", "agent-controller", "agent-compute-1", "agent-compute-2"} {
		if err := l.StopDaemon(key); err != nil {
			t.Fatal(err)
		}
		if err := l.StartDaemon(key); err != nil {
			t.Fatal(err)
		}
	}
	// Single-host: serve and the controller's agent share port 8775, and
	// without a shared secret each signs tokens with its own key; a token
	// taken from serve while the agent was still starting would be
	// refused by the agent once it listens. Wait for both.
	deadline := time.Now().Add(20 * time.Second)
	for controllerMetadataListeners(t, l) < listening {
		if time.Now().After(deadline) {
			t.Fatalf("the controller's metadata listeners did not all come back (%d of %d)", controllerMetadataListeners(t, l), listening)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Wait until the metadata service answers again (with 401).
	for time.Now().Before(deadline) {
		if code, _ := get(t, l, "vm1", "/latest/meta-data/instance-id"); code == 401 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the metadata service did not come back requiring tokens")
}

// controllerMetadataListeners counts the sockets listening on port 8775
// in the controller's namespace (serve's, and the agent's when the
// controller is a gateway).
func controllerMetadataListeners(t *testing.T, l *lab.Lab) int {
	t.Helper()
	ns, err := l.Namespace("controller")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := lab.In(ns, "ss", "-Hltn", "sport = :8775")
	if out = strings.TrimSpace(out); out == "" {
		return 0
	}
	return strings.Count(out, "\n") + 1
}
