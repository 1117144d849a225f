package dnsmasq_test

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"novanet/internal/datapath/dnsmasq"
	"novanet/internal/model"
	"novanet/internal/nettest"
	"novanet/internal/plan"
)

const (
	mac1 = "fa:16:3e:00:00:01"
	mac2 = "fa:16:3e:00:00:02"
)

var a = netip.MustParseAddr

type rig struct {
	srv, cli   string // namespaces: the serving host, a VM
	dir        string // networks_path
	events     string // the dhcp-script's log
	clientConf string // udhcpc script
}

func newRig(t *testing.T) *rig {
	nettest.RequireRoot(t, "dnsmasq", "busybox")
	// dnsmasq drops to user nobody: its files must be readable by others
	// (t.TempDir's parent is private).
	dir, err := os.MkdirTemp("", "nndm-")
	must(t, err)
	must(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	r := &rig{srv: nettest.Netns(t, "nndm-srv"), cli: nettest.Netns(t, "nndm-vm"), dir: dir}
	nettest.Run(t, r.srv, "ip", "link", "add", "br100", "type", "bridge")
	nettest.Run(t, r.srv, "ip", "addr", "add", "10.0.0.1/24", "dev", "br100")
	nettest.Run(t, r.srv, "ip", "link", "set", "br100", "up")
	nettest.Run(t, r.srv, "ip", "link", "add", "tapvm", "type", "veth", "peer", "name", "eth0", "netns", r.cli)
	nettest.Run(t, r.srv, "ip", "link", "set", "tapvm", "master", "br100", "up")
	nettest.Run(t, r.cli, "ip", "link", "set", "eth0", "address", mac1, "up")

	// dnsmasq's script: log every event (init prints no leases).
	r.events = filepath.Join(r.dir, "events.log")
	script := filepath.Join(r.dir, "script.sh")
	must(t, os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = init ] && exit 0\necho \"$@\" >> "+r.events+"\n"), 0o755))
	r.clientConf = filepath.Join(r.dir, "udhcpc.sh")
	must(t, os.WriteFile(r.clientConf, []byte("#!/bin/sh\n[ \"$1\" = bound ] && echo \"$ip $router $dns\" > "+r.dir+"/lease.$interface\nexit 0\n"), 0o755))
	return r
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dnsmasqPlan is the planner's dnsmasq for br100 serving hosts.
func (r *rig) dnsmasqPlan(t testing.TB, hosts ...model.DHCPHost) []plan.Dnsmasq {
	t.Helper()
	n := model.Network{ID: 1, Label: "private", Kind: model.KindFlatDHCP, CIDR: netip.MustParsePrefix("10.0.0.0/24"),
		Gateway: a("10.0.0.1"), DHCPStart: a("10.0.0.2"), Bridge: "br100", Host: "srv"}
	st := model.HostState{Host: "srv", Options: model.ClusterOptions{DHCPLeaseTime: 120, DHCPDomain: "novalocal"},
		Networks: []model.HostNetwork{{Network: n, BridgeAddress: a("10.0.0.1"), ServesDHCP: true, DHCPHosts: hosts}}}
	p, err := plan.Build(st, plan.Options{Host: "srv", NetworksPath: r.dir, DHCPBridge: filepath.Join(r.dir, "script.sh")})
	if err != nil {
		t.Fatal(err)
	}
	return p.Dnsmasq
}

// lease runs udhcpc in the VM namespace and returns "ip router dns", or
// "" when no server answered.
func (r *rig) lease(t testing.TB, mac string) string {
	t.Helper()
	nettest.Run(t, r.cli, "ip", "link", "set", "eth0", "address", mac)
	_ = os.Remove(filepath.Join(r.dir, "lease.eth0"))
	cmd := nettest.Cmd(r.cli, "busybox", "udhcpc", "-i", "eth0", "-s", r.clientConf, "-n", "-q", "-f", "-t", "3", "-T", "1", "-A", "1")
	_ = cmd.Run()
	b, _ := os.ReadFile(filepath.Join(r.dir, "lease.eth0"))
	return strings.TrimSpace(string(b))
}

func (r *rig) pid(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, "nova-br100.pid"))
	must(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	must(t, err)
	return pid
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// gone reports whether pid has exited. A zombie counts: the daemon's
// parent is pid 1, which in a container may reap late or never.
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

func TestServeAddRemoveReleaseRestartAdopt(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	s := dnsmasq.New(nil, r.dir)
	s.Netns = r.srv
	t.Cleanup(func() { _ = s.Apply(ctx, nil) })

	h1 := model.DHCPHost{MAC: mac1, Hostname: "vm1", Address: a("10.0.0.3")}
	h2 := model.DHCPHost{MAC: mac2, Hostname: "vm2", Address: a("10.0.0.4")}
	must(t, s.Apply(ctx, r.dnsmasqPlan(t, h1)))
	if got := r.lease(t, mac1); got != "10.0.0.3 10.0.0.1 10.0.0.1" {
		t.Fatalf("vm1 lease = %q, want 10.0.0.3 with router and DNS 10.0.0.1", got)
	}
	pid := r.pid(t)

	// A new host entry is served without a restart or reload.
	must(t, s.Apply(ctx, r.dnsmasqPlan(t, h1, h2)))
	if got := r.lease(t, mac2); !strings.HasPrefix(got, "10.0.0.4 ") {
		t.Fatalf("vm2 lease = %q", got)
	}
	if r.pid(t) != pid || s.Starts() != 1 || s.Reloads() != 0 {
		t.Errorf("adding a host: pid %d->%d, starts %d, reloads %d", pid, r.pid(t), s.Starts(), s.Reloads())
	}

	// The release frees vm2's lease at once: dnsmasq reports del.
	must(t, s.Release(ctx, "br100", a("10.0.0.1"), mac2, a("10.0.0.4")))
	waitFor(t, "del event after release", func() bool {
		b, _ := os.ReadFile(r.events)
		return strings.Contains(string(b), "del "+mac2+" 10.0.0.4")
	})

	// A removed entry is forgotten (SIGHUP): vm1 gets nothing.
	must(t, s.Apply(ctx, r.dnsmasqPlan(t, h2)))
	if s.Reloads() != 1 {
		t.Errorf("reloads = %d after removing a host", s.Reloads())
	}
	if got := r.lease(t, mac1); got != "" {
		t.Errorf("removed vm1 still got %q", got)
	}

	// An agent restart adopts the running dnsmasq.
	s2 := dnsmasq.New(nil, r.dir)
	s2.Netns = r.srv
	must(t, s2.Apply(ctx, r.dnsmasqPlan(t, h2)))
	if s2.Starts() != 0 || r.pid(t) != pid {
		t.Errorf("restarted supervisor started dnsmasq again (starts %d, pid %d->%d)", s2.Starts(), pid, r.pid(t))
	}

	// A killed dnsmasq comes back on the next apply.
	must(t, exec.Command("kill", "-9", strconv.Itoa(pid)).Run())
	waitFor(t, "dnsmasq to die", func() bool { return gone(pid) })
	must(t, s2.Apply(ctx, r.dnsmasqPlan(t, h2)))
	if s2.Starts() != 1 || r.pid(t) == pid {
		t.Errorf("killed dnsmasq not restarted")
	}
	if got := r.lease(t, mac2); !strings.HasPrefix(got, "10.0.0.4 ") {
		t.Errorf("after restart vm2 lease = %q", got)
	}

	// Nothing to serve: dnsmasq stops and its files go.
	newPid := r.pid(t)
	must(t, s2.Apply(ctx, nil))
	waitFor(t, "dnsmasq to stop", func() bool { return gone(newPid) })
	if _, err := os.Stat(filepath.Join(r.dir, "nova-br100.hosts.d")); !os.IsNotExist(err) {
		t.Errorf("hosts dir left behind: %v", err)
	}
}

func TestStartFailureIsReportedAndBackedOff(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	s := dnsmasq.New(nil, r.dir)
	s.Netns = r.srv
	t.Cleanup(func() { _ = s.Apply(ctx, nil) })
	// The bridge lost its address: dnsmasq cannot bind to it.
	nettest.Run(t, r.srv, "ip", "addr", "del", "10.0.0.1/24", "dev", "br100")
	err := s.Apply(ctx, r.dnsmasqPlan(t))
	if err == nil || !strings.Contains(err.Error(), "10.0.0.1") {
		t.Fatalf("err = %v, want dnsmasq's complaint about 10.0.0.1", err)
	}
	err = s.Apply(ctx, r.dnsmasqPlan(t))
	if err == nil || !strings.Contains(err.Error(), "next start attempt") {
		t.Fatalf("second apply err = %v, want the backoff", err)
	}
}

// TestChangedArgsRestartAndForeignPid: a dnsmasq whose command line no
// longer matches the plan is replaced, and a pid file pointing at some
// other live process (a recycled pid) is neither adopted nor signalled.
func TestChangedArgsRestartAndForeignPid(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	s := dnsmasq.New(nil, r.dir)
	s.Netns = r.srv
	t.Cleanup(func() { _ = s.Apply(ctx, nil) })

	other := exec.Command("sleep", "60")
	must(t, other.Start())
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	must(t, os.WriteFile(filepath.Join(r.dir, "nova-br100.pid"), []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o644))

	h1 := model.DHCPHost{MAC: mac1, Hostname: "vm1", Address: a("10.0.0.3")}
	must(t, s.Apply(ctx, r.dnsmasqPlan(t, h1)))
	pid := r.pid(t)
	if pid == other.Process.Pid || s.Starts() != 1 {
		t.Fatalf("foreign pid adopted: pid %d, starts %d", pid, s.Starts())
	}
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the foreign process was signalled away: %v", err)
	}

	d := r.dnsmasqPlan(t, h1)
	for i, arg := range d[0].Args {
		if strings.HasPrefix(arg, "--dhcp-range=") {
			d[0].Args[i] = strings.Replace(arg, ",120s", ",300s", 1)
		}
	}
	must(t, s.Apply(ctx, d))
	if s.Starts() != 2 || r.pid(t) == pid {
		t.Fatalf("changed command line: starts %d, pid %d->%d; want a restart", s.Starts(), pid, r.pid(t))
	}
	waitFor(t, "the old dnsmasq to exit", func() bool { return gone(pid) })
	// The same plan again changes nothing.
	must(t, s.Apply(ctx, d))
	if s.Starts() != 2 {
		t.Errorf("unchanged plan restarted dnsmasq (starts %d)", s.Starts())
	}
	if got := r.lease(t, mac1); !strings.HasPrefix(got, "10.0.0.3 ") {
		t.Errorf("vm1 lease after restart = %q", got)
	}
}

// TestHostsDriftRepaired: files removed, changed or added in the hosts
// directory behind the supervisor's back are repaired at the Apply after a
// Recheck (the agent's full resync).
func TestHostsDriftRepaired(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	s := dnsmasq.New(nil, r.dir)
	s.Netns = r.srv
	t.Cleanup(func() { _ = s.Apply(ctx, nil) })
	h1 := model.DHCPHost{MAC: mac1, Hostname: "vm1", Address: a("10.0.0.3")}
	h2 := model.DHCPHost{MAC: mac2, Hostname: "vm2", Address: a("10.0.0.4")}
	d := r.dnsmasqPlan(t, h1, h2)
	must(t, s.Apply(ctx, d))
	dir := d[0].HostsDir
	f1, f2 := filepath.Join(dir, d[0].Hosts[0].FileName), filepath.Join(dir, d[0].Hosts[1].FileName)
	must(t, os.Remove(f1))
	must(t, os.WriteFile(f2, []byte("fa:16:3e:00:00:02,evil,10.0.0.99\n"), 0o644))
	stray := filepath.Join(dir, "stray")
	must(t, os.WriteFile(stray, []byte("fa:16:3e:00:00:09,10.0.0.9\n"), 0o644))

	// Without the hosts watch or a recheck the supervisor trusts what it
	// wrote.
	must(t, s.Apply(ctx, d))
	if _, err := os.Stat(f1); !os.IsNotExist(err) {
		t.Fatalf("hosts dir re-read before Recheck: %v", err)
	}
	s.Recheck()
	must(t, s.Apply(ctx, d))
	for _, h := range d[0].Hosts {
		b, err := os.ReadFile(filepath.Join(dir, h.FileName))
		if err != nil || strings.TrimSpace(string(b)) != h.Line {
			t.Errorf("%s = %q, %v; want %q", h.FileName, b, err, h.Line)
		}
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Errorf("stray host file left: %v", err)
	}
	if s.Reloads() != 1 {
		t.Errorf("reloads = %d, want 1 (dnsmasq must forget the stray and changed entries)", s.Reloads())
	}
	if got := r.lease(t, mac2); !strings.HasPrefix(got, "10.0.0.4 ") {
		t.Errorf("vm2 after repair got %q, want 10.0.0.4", got)
	}
}
