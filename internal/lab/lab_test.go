package lab_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"novanet/internal/lab"
)

// bin is the novanet binary the labs run, built once.
var bin string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() == 0 {
			dir, err := os.MkdirTemp("", "nnlab-bin-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			bin = filepath.Join(dir, "novanet")
			build := exec.Command("go", "build", "-o", bin, "novanet/cmd/novanet")
			build.Stdout, build.Stderr = os.Stderr, os.Stderr
			if err := build.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "building novanet for the lab tests:", err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

func requireLab(t *testing.T) { t.Helper(); requireTools(t) }

func requireTools(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the lab needs root (network namespaces); CI runs it as root")
	}
	for _, b := range []string{"ip", "dnsmasq", "iptables-restore", "busybox", "tcpdump", "ping"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("the lab needs %s (scripts/install-deps.sh installs it)", b)
		}
	}
}

// upB brings a quiet lab up for a benchmark.
func upB(b *testing.B) *lab.Lab {
	b.Helper()
	var r [3]byte
	_, _ = rand.Read(r[:])
	l, err := lab.Open("b"+hex.EncodeToString(r[:]), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Down(context.Background()) })
	if err := l.Up(context.Background(), bin, fastOptions()); err != nil {
		b.Fatal(err)
	}
	return l
}

// up brings a lab with a unique name up and takes it down when t ends.
func up(t *testing.T, o lab.Options) *lab.Lab {
	t.Helper()
	requireLab(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	l, err := lab.Open("t"+hex.EncodeToString(b[:]), testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"controller/serve.log", "controller/agent.log", "compute-1/agent.log", "compute-2/agent.log"} {
				if b, err := os.ReadFile(filepath.Join(l.Dir, f)); err == nil {
					t.Logf("--- %s (last 3000 bytes)\n%s", f, tail(string(b), 3000))
				}
			}
		}
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	if err := l.Up(context.Background(), bin, o); err != nil {
		t.Fatal(err)
	}
	return l
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func in(t *testing.T, l *lab.Lab, target string, args ...string) string {
	t.Helper()
	ns, err := l.Namespace(target)
	if err != nil {
		t.Fatal(err)
	}
	out, err := lab.In(ns, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ping(l *lab.Lab, from, to string) error {
	ns, err := l.Namespace(from)
	if err != nil {
		return err
	}
	_, err = lab.In(ns, "ping", "-c", "1", "-W", "2", to)
	return err
}

func boot(t *testing.T, l *lab.Lab, name, host string) lab.VM {
	t.Helper()
	vm, err := l.Boot(context.Background(), name, host)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

func fastOptions() lab.Options {
	o := lab.DefaultOptions()
	o.ResyncInterval = "2s"
	return o
}

func TestSingleHost(t *testing.T) {
	l := up(t, fastOptions())
	ctx := context.Background()
	vms := []lab.VM{boot(t, l, "vm1", "compute-1"), boot(t, l, "vm2", "compute-1"), boot(t, l, "vm3", "compute-2")}

	t.Run("addresses-router-dns", func(t *testing.T) {
		for _, vm := range vms {
			lease, err := l.LeaseOf(vm.Name)
			if err != nil {
				t.Fatal(err)
			}
			if lease.Address != vm.Address || lease.Router != "10.0.0.1" || lease.DNS != "10.0.0.1" {
				t.Errorf("%s: lease %+v, want %s via 10.0.0.1 with DNS 10.0.0.1", vm.Name, lease, vm.Address)
			}
		}
	})

	t.Run("leased-flag", func(t *testing.T) {
		for _, vm := range vms {
			waitFixed(t, l, vm.Address, func(leased bool) bool { return leased }, "leased=true")
		}
	})

	t.Run("pings", func(t *testing.T) {
		for _, p := range [][2]string{{"vm1", "10.0.0.4"}, {"vm3", "10.0.0.2"}, {"vm2", "10.0.0.3"}} {
			if err := ping(l, p[0], p[1]); err != nil {
				t.Errorf("%s -> %s: %v", p[0], p[1], err)
			}
		}
		for _, vm := range vms {
			if err := ping(l, "controller", vm.Address); err != nil {
				t.Errorf("controller -> %s: %v", vm.Name, err)
			}
		}
		// A compute node has no address on the VM network (seed 003).
		if err := ping(l, "compute-1", vms[0].Address); err == nil {
			t.Error("compute-1 reached a VM; its bridge must carry no address in single-host mode")
		}
	})

	t.Run("outside-sees-routing-source-ip", func(t *testing.T) {
		ns, _ := l.Namespace("outside")
		td := exec.Command("ip", "netns", "exec", ns, "tcpdump", "-nl", "-i", "eth0", "-c", "1", "icmp[icmptype] == icmp-echo")
		var out strings.Builder
		td.Stdout = &out
		if err := td.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if err := ping(l, "vm3", lab.OutsideIP); err != nil {
			t.Errorf("vm3 -> outside: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- td.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = td.Process.Kill()
		}
		if !strings.Contains(out.String(), "IP 203.0.113.1 > 203.0.113.254") {
			t.Errorf("outside saw %q, want the controller's routing_source_ip 203.0.113.1 as source", out.String())
		}
	})

	t.Run("restart-agent-changes-nothing", func(t *testing.T) {
		before := kernelState(t, l)
		if err := l.StopDaemon("agent-controller"); err != nil {
			t.Fatal(err)
		}
		if err := l.StartDaemon("agent-controller"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second) // a full sync and a resync
		if after := kernelState(t, l); after != before {
			t.Errorf("restarting the agent changed the kernel:\n--- before\n%s\n--- after\n%s", before, after)
		}
	})

	t.Run("drift-repaired", func(t *testing.T) {
		want := kernelState(t, l)
		in(t, l, "controller", "iptables", "-t", "nat", "-F", "nova-network-snat")
		pid := dnsmasqPid(t, l, "controller")
		_ = exec.Command("kill", "-9", strconv.Itoa(pid)).Run()
		deadline := time.Now().Add(8 * time.Second)
		for {
			got := kernelState(t, l)
			if strings.Contains(got, "nova-network-snat -s 10.0.0.0/24") && dnsmasqPid(t, l, "controller") != pid {
				if strings.Count(got, "\n") != strings.Count(want, "\n") {
					t.Errorf("repaired state differs:\n%s\n--- want\n%s", got, want)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not repaired within the resync interval:\n%s", got)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err := ping(l, "vm1", lab.OutsideIP); err != nil {
			t.Errorf("after repair vm1 -> outside: %v", err)
		}
	})

	t.Run("delete-releases-and-next-boot-reuses", func(t *testing.T) {
		old := vms[2]
		if err := l.Delete(ctx, old.Name); err != nil {
			t.Fatal(err)
		}
		waitFixed(t, l, old.Address, func(leased bool) bool { return !leased }, "leased=false after release")
		start := time.Now()
		vm4 := boot(t, l, "vm4", "compute-2")
		if vm4.Address != old.Address {
			t.Fatalf("vm4 got %s, want the released %s", vm4.Address, old.Address)
		}
		lease, _ := l.LeaseOf("vm4")
		if lease.Address != old.Address {
			t.Errorf("vm4 leased %q, want %s", lease.Address, old.Address)
		}
		t.Logf("boot to lease of a recycled address: %s", time.Since(start).Round(time.Millisecond))
	})

	t.Run("api-down-leases-still-renew", func(t *testing.T) {
		if err := l.StopDaemon("serve"); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = l.StartDaemon("serve") }()
		before, _ := l.LeaseOf("vm1")
		time.Sleep(1100 * time.Millisecond) // lease records have 1 s resolution
		if err := l.Renew("vm1"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(8 * time.Second)
		for {
			now, _ := l.LeaseOf("vm1")
			if now.Event == "renew" && now.At.After(before.At) && now.Address == before.Address {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("vm1 did not renew with the API down: %+v", now)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := ping(l, "vm1", "10.0.0.1"); err != nil {
			t.Errorf("vm1 -> gateway with the API down: %v", err)
		}
	})
}

// waitFixed polls the API until f(leased) holds for addr.
func waitFixed(t *testing.T, l *lab.Lab, addr string, f func(bool) bool, what string) {
	t.Helper()
	c := l.Client()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := c.GetFixedIP(context.Background(), lab.Addr(addr))
		if err == nil && f(fi.Leased) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never %s (last %+v, %v)", addr, what, fi, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kernelState is what must not move when nothing changed: every host's
// iptables-save (without counters and comments), links and dnsmasq pid.
func kernelState(t *testing.T, l *lab.Lab) string {
	t.Helper()
	var b strings.Builder
	for _, h := range lab.Hosts {
		fmt.Fprintf(&b, "## %s\n", h)
		for _, line := range strings.Split(in(t, l, h, "iptables-save"), "\n") {
			if !strings.HasPrefix(line, "#") {
				b.WriteString(line + "\n")
			}
		}
		b.WriteString(in(t, l, h, "ip", "-o", "-4", "addr", "show"))
		b.WriteString(in(t, l, h, "ip", "-o", "link", "show", "master", "br100"))
		if h == "controller" {
			fmt.Fprintf(&b, "dnsmasq pid %d\n", dnsmasqPid(t, l, h))
		}
	}
	return b.String()
}

func dnsmasqPid(t *testing.T, l *lab.Lab, host string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(l.Dir, host, "networks", "nova-br100.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func TestMultiHost(t *testing.T) {
	o := fastOptions()
	o.MultiHost = true
	l := up(t, o)
	vm1 := boot(t, l, "vm1", "compute-1")
	vm2 := boot(t, l, "vm2", "compute-2")
	l1, _ := l.LeaseOf(vm1.Name)
	l2, _ := l.LeaseOf(vm2.Name)
	if l1.Router == l2.Router || l1.Router == "" || l2.Router == "" {
		t.Fatalf("routers %q and %q, want each compute's own bridge address", l1.Router, l2.Router)
	}
	for _, c := range []struct {
		host, router string
	}{{"compute-1", l1.Router}, {"compute-2", l2.Router}} {
		if out := in(t, l, c.host, "ip", "-4", "addr", "show", "br100"); !strings.Contains(out, c.router+"/24") {
			t.Errorf("%s's br100 does not carry its VMs' router %s:\n%s", c.host, c.router, out)
		}
	}
	// Each compute's dnsmasq knows only its local VM.
	for _, c := range []struct {
		host string
		mine lab.VM
		not  lab.VM
	}{{"compute-1", vm1, vm2}, {"compute-2", vm2, vm1}} {
		dir := filepath.Join(l.Dir, c.host, "networks", "nova-br100.hosts.d")
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		mine := strings.ReplaceAll(c.mine.MAC, ":", "-")
		if len(names) != 1 || names[0] != mine {
			t.Errorf("%s serves %v, want only %s", c.host, names, mine)
		}
	}
	if pid := dnsmasqPid(t, l, "controller"); pid != 0 {
		t.Errorf("the controller runs a dnsmasq (pid %d) in multi-host mode", pid)
	}
	if err := ping(l, "vm1", vm2.Address); err != nil {
		t.Errorf("vm1 -> vm2 across computes: %v", err)
	}
}

func TestUpTwiceIsRefusedAndDownIsIdempotent(t *testing.T) {
	l := up(t, fastOptions())
	again, err := lab.Open(l.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Up(context.Background(), bin, fastOptions()); err == nil || !strings.Contains(err.Error(), "already up") {
		t.Fatalf("second up: %v", err)
	}
	// The refused up broke nothing.
	if _, err := l.Client().ListNetworks(context.Background()); err != nil {
		t.Fatalf("API gone after a refused second up: %v", err)
	}
	if err := l.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Down(context.Background()); err != nil {
		t.Fatalf("second down: %v", err)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), l.Name+"-") {
		t.Errorf("namespaces left after down:\n%s", out)
	}
	if _, err := os.Stat(l.Dir); !os.IsNotExist(err) {
		t.Errorf("%s left after down", l.Dir)
	}
}

func TestBadInputs(t *testing.T) {
	for _, name := range []string{"", "UPPER", "has-dash", "waytoolongname", "1digit"} {
		if _, err := lab.Open(name, nil); err == nil {
			t.Errorf("lab name %q accepted", name)
		}
	}
	l, err := lab.Open("tnotup", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Boot(context.Background(), "vm1", "compute-1"); err == nil || !strings.Contains(err.Error(), "not up") {
		t.Errorf("boot on a lab that is down: %v", err)
	}
	if _, err := l.Namespace("nosuchhost"); err == nil {
		t.Error("unknown exec target accepted")
	}
}

// TestDeleteWithoutReleaseWaitsForTimeout: with force_dhcp_release off, a
// deleted VM's address stays taken until dnsmasq's lease of it expires
// (its `del` event clears leased) and fixed_ip_disassociate_timeout has
// passed; then the next boot gets it over DHCP at once. The lease time is
// dnsmasq's minimum, 120 s, so this test runs in parallel with the others.
func TestDeleteWithoutReleaseWaitsForTimeout(t *testing.T) {
	requireLab(t)
	t.Parallel()
	o := fastOptions()
	o.ForceDHCPRelease = false
	o.DisassociateTimeout = 2
	l := up(t, o)
	ctx := context.Background()
	vm1 := boot(t, l, "vm1", "compute-1")
	waitFixed(t, l, vm1.Address, func(leased bool) bool { return leased }, "leased=true")
	if err := l.Delete(ctx, "vm1"); err != nil {
		t.Fatal(err)
	}
	// Still held right after the delete: not released, lease not expired.
	fi, err := l.Client().GetFixedIP(ctx, lab.Addr(vm1.Address))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Leased {
		t.Errorf("%s not leased right after a delete without release", vm1.Address)
	}
	start := time.Now()
	deadline := start.Add(200 * time.Second)
	for {
		fi, err = l.Client().GetFixedIP(ctx, lab.Addr(vm1.Address))
		if err == nil && !fi.Leased && fi.InstanceUUID == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never came back: %+v %v", vm1.Address, fi, err)
		}
		time.Sleep(time.Second)
	}
	t.Logf("%s free again %s after the delete (dnsmasq lease expiry, then its del event)", vm1.Address, time.Since(start).Round(time.Second))
	vm2 := boot(t, l, "vm2", "compute-1")
	if vm2.Address != vm1.Address {
		t.Errorf("vm2 got %s, want the recycled %s", vm2.Address, vm1.Address)
	}
}
