package lab_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
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
	requireLab(t)
	root := rootState(t)
	t.Cleanup(func() { // runs after the lab's down
		if after := rootState(t); after != root {
			t.Errorf("the root namespace changed across up, boot, delete, down:\n--- before\n%s\n--- after\n%s", root, after)
		}
	})
	l := up(t, fastOptions())
	ctx := context.Background()
	vms := []lab.VM{boot(t, l, "vm1", "compute-1"), boot(t, l, "vm2", "compute-1"), boot(t, l, "vm3", "compute-2")}

	t.Run("addresses-router-dns", func(t *testing.T) {
		for _, vm := range vms {
			lease, err := l.LeaseOf(vm.Name)
			if err != nil {
				t.Fatal(err)
			}
			if lease.Address != vm.Address || lease.Router != "10.0.0.1" || lease.DNS != "10.0.0.1" || lease.Server != "10.0.0.1" {
				t.Errorf("%s: lease %+v, want %s via 10.0.0.1 with DNS 10.0.0.1 from the controller's dnsmasq", vm.Name, lease, vm.Address)
			}
			guestHas(t, l, vm.Name, vm.Address, "10.0.0.1")
		}
	})

	t.Run("status", func(t *testing.T) {
		st, err := l.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Up || st.APIError != "" || len(st.Namespaces) != 5+len(vms) || len(st.Daemons) != 5 || len(st.VMs) != len(vms) {
			t.Fatalf("status %+v", st)
		}
		if d := st.Daemons[4]; d.Key != "dnsmasq-br100-controller" || d.PID != dnsmasqPid(t, l, "controller") {
			t.Errorf("status shows %+v, want the controller's dnsmasq", d)
		}
		for _, ns := range st.Namespaces {
			if !ns.Exists {
				t.Errorf("namespace %s (%s) missing", ns.Name, ns.Role)
			}
		}
		for _, d := range st.Daemons {
			if !d.Running {
				t.Errorf("%s (pid %d) not running", d.Key, d.PID)
			}
		}
		for _, vm := range st.VMs {
			if !vm.ClientRunning || !vm.APIAllocated || vm.Lease.Address != vm.Address {
				t.Errorf("%s: %+v", vm.Name, vm)
			}
		}
	})

	t.Run("leased-flag", func(t *testing.T) {
		for _, vm := range vms {
			waitFixed(t, l, vm.Address, func(leased bool) bool { return leased }, "leased=true")
		}
	})

	t.Run("pings", func(t *testing.T) {
		// Across compute nodes both ways, and within one.
		for _, p := range [][2]lab.VM{{vms[0], vms[2]}, {vms[2], vms[1]}, {vms[1], vms[0]}} {
			if err := ping(l, p[0].Name, p[1].Address); err != nil {
				t.Errorf("%s -> %s (%s): %v", p[0].Name, p[1].Name, p[1].Address, err)
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
		// The outside host has no route to 10.0.0.0/8: a reply proves SNAT,
		// the capture proves which source.
		out := capture(t, l, "outside", "eth0", "icmp[icmptype] == icmp-echo", func() {
			if err := ping(l, "vm3", lab.OutsideIP); err != nil {
				t.Errorf("vm3 -> outside: %v", err)
			}
		})
		if !strings.Contains(out, ": 203.0.113.1 > 203.0.113.254: ICMP echo request") || strings.Contains(out, ": 10.") {
			t.Errorf("outside saw %q, want the controller's routing_source_ip 203.0.113.1 as source", out)
		}
	})

	t.Run("dhclient", func(t *testing.T) {
		booted, err := l.BootMany(ctx, []lab.VMSpec{{Name: "vmd", Host: "compute-2", Client: "dhclient"}}, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		vm := booted[0]
		lease, _ := l.LeaseOf(vm.Name)
		if lease.Address != vm.Address || lease.Router != "10.0.0.1" || lease.DNS != "10.0.0.1" || lease.Event != "BOUND" {
			t.Errorf("dhclient lease %+v, want %s via 10.0.0.1 with DNS 10.0.0.1", lease, vm.Address)
		}
		guestHas(t, l, vm.Name, vm.Address, "10.0.0.1")
		waitFixed(t, l, vm.Address, func(leased bool) bool { return leased }, "leased=true")
		if err := ping(l, vm.Name, lab.OutsideIP); err != nil {
			t.Errorf("dhclient VM -> outside: %v", err)
		}
		if err := l.Delete(ctx, vm.Name); err != nil {
			t.Fatal(err)
		}
		waitFixed(t, l, vm.Address, func(leased bool) bool { return !leased }, "leased=false after delete")
	})

	t.Run("restart-agent-changes-nothing", func(t *testing.T) {
		before := kernelState(t, l)
		for _, h := range lab.Hosts {
			if err := l.StopDaemon("agent-" + h); err != nil {
				t.Fatal(err)
			}
			if err := l.StartDaemon("agent-" + h); err != nil {
				t.Fatal(err)
			}
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
		start := time.Now()
		deadline := start.Add(8 * time.Second) // resync interval 2 s
		for {
			got := kernelState(t, l)
			if strings.Contains(got, "nova-network-snat -s 10.0.0.0/24") && dnsmasqPid(t, l, "controller") != pid {
				if strings.Count(got, "\n") != strings.Count(want, "\n") {
					t.Errorf("repaired state differs:\n%s\n--- want\n%s", got, want)
				}
				t.Logf("flushed SNAT chain and killed dnsmasq repaired in %s", time.Since(start).Round(10*time.Millisecond))
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
		if _, err := l.Namespace(old.Name); err == nil {
			t.Errorf("%s still known to the lab after delete", old.Name)
		}
		if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), l.Name+"-vm-"+old.Name) {
			t.Errorf("namespace of %s left after delete", old.Name)
		}
		if _, err := lab.In(l.Name+"-c2", "ip", "link", "show", old.Device); err == nil {
			t.Errorf("tap %s left on compute-2 after delete", old.Device)
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
		if st, err := l.Status(ctx); err != nil || st.APIError == "" {
			t.Errorf("status with serve stopped: APIError %q, %v", st.APIError, err)
		}
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

// rootState is what the lab must never touch in the root namespace:
// links, routes, firewall rules (without counters), forwarding sysctls.
func rootState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	counters := regexp.MustCompile(`\[\d+:\d+\]`)
	for _, c := range [][]string{
		{"ip", "-o", "link", "show"}, {"ip", "-4", "route", "show", "table", "all"}, {"ip", "-6", "route", "show", "table", "all"},
		{"iptables-save"}, {"sysctl", "net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding"},
	} {
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(c, " "), err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(line, "#") {
				b.WriteString(counters.ReplaceAllString(line, "") + "\n")
			}
		}
	}
	return b.String()
}

// guestHas checks the VM's kernel: the address on eth0 and the default
// route via router.
func guestHas(t *testing.T, l *lab.Lab, vm, addr, router string) {
	t.Helper()
	if out := in(t, l, vm, "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(out, " "+addr+"/24 ") {
		t.Errorf("%s's eth0 lacks %s/24:\n%s", vm, addr, out)
	}
	if out := in(t, l, vm, "ip", "-4", "route", "show", "default"); !strings.Contains(out, "via "+router+" ") {
		t.Errorf("%s's default route is not via %s:\n%s", vm, router, out)
	}
}

// capture runs tcpdump on dev in target's namespace while f runs and
// returns what it printed.
func capture(t *testing.T, l *lab.Lab, target, dev, filter string, f func()) string {
	t.Helper()
	ns, err := l.Namespace(target)
	if err != nil {
		t.Fatal(err)
	}
	td := exec.Command("ip", "netns", "exec", ns, "tcpdump", "-nle", "-i", dev, filter)
	var out strings.Builder
	td.Stdout = &out
	stderr, err := td.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := td.Start(); err != nil {
		t.Fatal(err)
	}
	// tcpdump says "listening on" once its filter is attached.
	ready := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		var seen strings.Builder
		for {
			n, err := stderr.Read(buf)
			seen.Write(buf[:n])
			if strings.Contains(seen.String(), "listening on") {
				close(ready)
				_, _ = io.Copy(io.Discard, stderr)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		_ = td.Process.Kill()
		_ = td.Wait()
		t.Fatalf("tcpdump on %s in %s did not start", dev, target)
	}
	f()
	time.Sleep(300 * time.Millisecond) // let the last packets through
	_ = td.Process.Signal(syscall.SIGINT)
	_ = td.Wait()
	return out.String()
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

// waitConverged waits until every host's agent has applied its host's
// current revision: a kernel read before that races the last change.
func waitConverged(t *testing.T, l *lab.Lab) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		hosts, err := l.Client().ListHosts(context.Background())
		behind := []string{}
		for _, h := range hosts {
			if h.AppliedRevision != h.Revision || h.Problem != "" {
				behind = append(behind, fmt.Sprintf("%s applied %d of %d (%q)", h.Host, h.AppliedRevision, h.Revision, h.Problem))
			}
		}
		if err == nil && len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agents never converged: %v %v", behind, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kernelState is what must not move when nothing changed: every host's
// iptables-save (without counters and comments), links and dnsmasq pid.
func kernelState(t *testing.T, l *lab.Lab) string {
	t.Helper()
	waitConverged(t, l)
	var b strings.Builder
	for _, h := range lab.Hosts {
		fmt.Fprintf(&b, "## %s\n", h)
		for _, line := range strings.Split(in(t, l, h, "iptables-save"), "\n") {
			if !strings.HasPrefix(line, "#") {
				b.WriteString(line + "\n")
			}
		}
		b.WriteString(withoutPeerNoise(in(t, l, h, "ip", "-o", "-4", "addr", "show")))
		b.WriteString(withoutPeerNoise(in(t, l, h, "ip", "-o", "link", "show", "master", "br100")))
		if h == "controller" {
			fmt.Fprintf(&b, "dnsmasq pid %d\n", dnsmasqPid(t, l, h))
		}
	}
	return b.String()
}

// withoutPeerNoise drops the line ip prints while it maps a veth peer's
// namespace id and finds a namespace being deleted (another lab test's,
// or a VM just deleted): it says nothing of this host's links.
func withoutPeerNoise(out string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(out, "\n") {
		if !strings.HasPrefix(line, "Error: Peer netns reference is invalid") {
			b.WriteString(line)
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
	if l1.Server != l1.Router || l2.Server != l2.Router {
		t.Errorf("DHCP servers %q and %q, want each compute's own dnsmasq (%s, %s)", l1.Server, l2.Server, l1.Router, l2.Router)
	}
	// On the wire: a VM's DISCOVER floods the shared VM network, the other
	// compute's dnsmasq sees it and answers nothing.
	for _, c := range []struct{ vm, host, other, otherIP string }{
		{"vm3", "compute-1", "compute-2", l2.Router},
		{"vm4", "compute-2", "compute-1", l1.Router},
	} {
		var vm lab.VM
		out := capture(t, l, c.other, "br100", "udp port 67 or udp port 68", func() { vm = boot(t, l, c.vm, c.host) })
		if !strings.Contains(out, "Request from "+vm.MAC) {
			t.Errorf("%s never saw %s's DHCP request (so the check below proves nothing):\n%s", c.other, c.vm, out)
		}
		if strings.Contains(out, c.otherIP+".67 >") {
			t.Errorf("%s's dnsmasq answered %s of %s:\n%s", c.other, c.vm, c.host, out)
		}
		lease, _ := l.LeaseOf(c.vm)
		if lease.Server != map[string]string{"compute-1": l1.Router, "compute-2": l2.Router}[c.host] || lease.Address != vm.Address {
			t.Errorf("%s on %s: lease %+v", c.vm, c.host, lease)
		}
	}
	if pid := dnsmasqPid(t, l, "controller"); pid != 0 {
		t.Errorf("the controller runs a dnsmasq (pid %d) in multi-host mode", pid)
	}
	if err := ping(l, "vm1", vm2.Address); err != nil {
		t.Errorf("vm1 -> vm2 across computes: %v", err)
	}
	// Each compute does its own NAT: vm1's traffic to the outside leaves
	// compute-1 with compute-1's own address as its source.
	out := capture(t, l, "compute-1", "eth1", "icmp[icmptype] == icmp-echo", func() {
		if err := ping(l, "vm1", lab.OutsideIP); err != nil {
			t.Errorf("vm1 -> outside in multi-host mode: %v", err)
		}
	})
	if !strings.Contains(out, ": 192.168.56.201 > "+lab.OutsideIP+": ICMP echo request") || strings.Contains(out, ": 10.") {
		t.Errorf("compute-1's eth1 saw %q, want vm1's ping SNATed to compute-1's 192.168.56.201", out)
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

// TestDownWithUnreadableState: down removes a lab by name even when its
// state file is garbage, processes inside its namespaces included.
func TestDownWithUnreadableState(t *testing.T) {
	l := up(t, fastOptions())
	boot(t, l, "vm1", "compute-1")
	if err := os.WriteFile(filepath.Join(l.Dir, "lab.json"), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := lab.Open(l.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Boot(context.Background(), "vm2", "compute-1"); err == nil || !strings.Contains(err.Error(), "unreadable") {
		t.Errorf("boot on an unreadable state: %v", err)
	}
	if _, err := again.Status(context.Background()); err == nil {
		t.Error("status on an unreadable state reported no error")
	}
	if err := again.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), l.Name+"-") {
		t.Errorf("namespaces left:\n%s", out)
	}
	if out, _ := exec.Command("pgrep", "-af", l.Dir+"/").Output(); len(out) > 0 {
		t.Errorf("processes of the lab left:\n%s", out)
	}
	if _, err := os.Stat(l.Dir); !os.IsNotExist(err) {
		t.Errorf("%s left", l.Dir)
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
	if _, err := l.Namespace("controller"); err == nil || !strings.Contains(err.Error(), "not up") {
		t.Errorf("exec on a lab that is down: %v", err)
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

// TestCLI drives the lab through the novanet binary as an operator would:
// up, boot, status, exec, delete, down, and the refusals.
func TestCLI(t *testing.T) {
	requireLab(t)
	var r [3]byte
	_, _ = rand.Read(r[:])
	name := "c" + hex.EncodeToString(r[:])
	t.Cleanup(func() {
		if l, err := lab.Open(name, nil); err == nil {
			_ = l.Down(context.Background())
		}
	})
	novanet := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append([]string{"lab", "--name", name}, args...)...).CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := novanet(args...)
		if err != nil {
			t.Fatalf("novanet lab %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	if out := must("status"); !strings.Contains(out, "is down") {
		t.Errorf("status before up: %q", out)
	}
	must("up", "--resync-interval", "2s")
	if out, err := novanet("up"); err == nil || !strings.Contains(out, "already up") {
		t.Errorf("second up: %v %q", err, out)
	}
	out := must("boot", "v1", "--host", "compute-2")
	if !strings.Contains(out, "v1 leased 10.0.0.2, router 10.0.0.1, dns 10.0.0.1") {
		t.Errorf("boot printed %q", out)
	}
	if out, err := novanet("boot", "v1", "--host", "compute-1"); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("boot of a duplicate name: %v %q", err, out)
	}
	if out, err := novanet("boot", "v2", "--host", "compute-9"); err == nil || !strings.Contains(out, "compute-1, compute-2") {
		t.Errorf("boot on an unknown host: %v %q", err, out)
	}
	out = must("status")
	var row string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "v1 ") {
			row = strings.Join(strings.Fields(line), " ")
		}
	}
	if !strings.Contains(out, name+"-vm-v1") || !strings.HasPrefix(row, "v1 compute-2 10.0.0.2 10.0.0.2 10.0.0.1 10.0.0.1 10.0.0.1 udhcpc true ") {
		t.Errorf("status:\n%s", out)
	}
	if strings.Contains(out, "false") || strings.Contains(out, "(dead)") {
		t.Errorf("status shows something down:\n%s", out)
	}
	if out := must("exec", "v1", "--", "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(out, "10.0.0.2/24") {
		t.Errorf("exec in v1: %q", out)
	}
	if out := must("exec", "v1", "--", "ping", "-c1", "-W2", lab.OutsideIP); !strings.Contains(out, "1 received") {
		t.Errorf("v1 -> outside: %q", out)
	}
	// exec passes the command's exit status through.
	if _, err := novanet("exec", "outside", "--", "sh", "-c", "exit 3"); err == nil {
		t.Error("exec of a failing command exited 0")
	} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("exec exit status: %v", err)
	}
	if out, err := novanet("exec", "nosuch", "--", "true"); err == nil || !strings.Contains(out, "no host or VM") {
		t.Errorf("exec in an unknown target: %v %q", err, out)
	}
	// Two operators booting at once: both VMs end up in the lab's state.
	errs := make(chan error, 2)
	for _, vm := range []string{"v2", "v3"} {
		go func() {
			out, err := novanet("boot", vm, "--host", "compute-1")
			if err != nil {
				err = fmt.Errorf("boot %s: %w\n%s", vm, err, out)
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if l, err := lab.Open(name, nil); err != nil || len(l.State().VMs) != 3 {
		t.Errorf("after concurrent boots the lab holds %+v (%v), want v1, v2 and v3", l.State().VMs, err)
	}
	must("delete", "v1")
	if out, err := novanet("delete", "v1"); err == nil || !strings.Contains(out, "no VM v1") {
		t.Errorf("second delete: %v %q", err, out)
	}
	must("down")
	must("down")
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), name+"-") {
		t.Errorf("namespaces left after down:\n%s", out)
	}
}
