package lab_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"novanet/internal/lab"
)

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// repairBound is what the suite asserts; the target is 1 s and the exact
// figures go to docs/BENCHMARKS.md. A loaded 2-core machine gets slack.
const repairBound = 3 * time.Second

// fault is one injected fault on a host and how to see it repaired.
type fault struct {
	name     string
	host     string
	inject   func(t *testing.T)
	repaired func() bool
	cleanup  func(t *testing.T) // after the measurement (a foreign chain left behind)
}

// faultResult is one measured repair.
type faultResult struct {
	name, phase string
	took        time.Duration
	from, to    time.Time
}

// TestFaults injects an operator's bad day into one multi-host lab and
// measures each repair by polling the kernel every 100 ms, while vm1
// pings vm2, its gateway and the outside host: first with serve
// SIGSTOPped for 60 s (every fault repaired from the cached state, every
// DHCP renewal answered), then across a management partition, then a
// twenty-VM boot storm on vm1's compute (the gateway MAC stays put), and
// an agent restart that changes nothing. The resync interval is 300 s, so
// every repair here comes from a watch, not the periodic resync.
func TestFaults(t *testing.T) {
	o := lab.DefaultOptions()
	o.MultiHost = true
	o.ResyncInterval = "300s"
	l := up(t, o)
	ctx := context.Background()
	vms, err := l.BootMany(ctx, []lab.VMSpec{{Name: "vm1", Host: "compute-1"}, {Name: "vm2", Host: "compute-1"}}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	vm1, vm2 := vms[0], vms[1]
	lease1, _ := l.LeaseOf("vm1")
	gw := lease1.Router
	for _, target := range []string{vm2.Address, gw, lab.OutsideIP} {
		if err := ping(l, "vm1", target); err != nil {
			t.Fatalf("vm1 -> %s before any fault: %v", target, err)
		}
	}
	c1 := "compute-1"
	run := func(t *testing.T, host string, args ...string) { in(t, l, host, args...) }
	out := func(host string, args ...string) string {
		ns, err := l.Namespace(host)
		if err != nil {
			return ""
		}
		s, _ := lab.In(ns, args...)
		return s
	}
	hostsDir := filepath.Join(l.Dir, c1, "networks", "nova-br100.hosts.d")
	entry2 := filepath.Join(hostsDir, strings.ReplaceAll(vm2.MAC, ":", "-"))
	line2, err := os.ReadFile(entry2)
	if err != nil {
		t.Fatal(err)
	}
	natBase, filterBase := novaRules(out(c1, "iptables-save", "-t", "nat")), novaRules(out(c1, "iptables-save", "-t", "filter"))
	rulesBack := func() bool {
		return novaRules(out(c1, "iptables-save", "-t", "nat")) == natBase && novaRules(out(c1, "iptables-save", "-t", "filter")) == filterBase
	}
	firstForwardIsNova := func() bool {
		for _, line := range strings.Split(out(c1, "iptables", "-S", "FORWARD"), "\n") {
			if strings.HasPrefix(line, "-A FORWARD") {
				return strings.Contains(line, "-j nova-") && rulesBack()
			}
		}
		return false
	}
	has := func(host, want string, args ...string) func() bool {
		return func() bool { return strings.Contains(out(host, args...), want) }
	}
	entryBack := func() bool { b, err := os.ReadFile(entry2); return err == nil && string(b) == string(line2) }
	pid0 := dnsmasqPid(t, l, c1)
	brMAC := macOf(out(c1, "ip", "-o", "link", "show", "br100"))

	pingers := startPingers(t, l, "vm1", map[string]string{"vm2": vm2.Address, "gateway": gw, "outside": lab.OutsideIP})
	var results []faultResult
	measure := func(t *testing.T, phase string, f fault) {
		t.Helper()
		from := time.Now()
		f.inject(t)
		injected := time.Now()
		for !f.repaired() {
			if time.Since(injected) > 10*time.Second {
				t.Errorf("%s (%s): not repaired within 10 s", f.name, phase)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		took := time.Since(injected)
		if took > repairBound {
			t.Errorf("%s (%s): repaired in %s, want within %s (target 1 s)", f.name, phase, took.Round(time.Millisecond), repairBound)
		}
		results = append(results, faultResult{name: f.name, phase: phase, took: took, from: from, to: time.Now()})
		t.Logf("%-28s %-14s repaired in %s", f.name, phase, took.Round(time.Millisecond))
		if f.cleanup != nil {
			f.cleanup(t)
		}
		time.Sleep(500 * time.Millisecond) // let pings show any lasting damage
	}
	faults := []fault{
		{name: "tap unbridged", host: c1, inject: func(t *testing.T) { run(t, c1, "ip", "link", "set", vm1.Device, "nomaster") },
			repaired: has(c1, "master br100", "ip", "-o", "link", "show", vm1.Device)},
		{name: "SNAT chain flushed", inject: func(t *testing.T) { run(t, c1, "iptables", "-w", "-t", "nat", "-F", "nova-network-snat") },
			repaired: rulesBack},
		{name: "FORWARD jump deleted", inject: func(t *testing.T) { run(t, c1, "iptables", "-w", "-D", "FORWARD", "-j", "nova-filter-top") },
			repaired: rulesBack},
		{name: "foreign DROP chain, policy", inject: func(t *testing.T) {
			for _, c := range [][]string{{"-N", "DOCKER-USER"}, {"-A", "DOCKER-USER", "-j", "DROP"}, {"-I", "FORWARD", "1", "-j", "DOCKER-USER"}, {"-P", "FORWARD", "DROP"}} {
				run(t, c1, append([]string{"iptables", "-w"}, c...)...)
			}
		}, repaired: firstForwardIsNova, cleanup: func(t *testing.T) {
			for _, c := range [][]string{{"-D", "FORWARD", "-j", "DOCKER-USER"}, {"-F", "DOCKER-USER"}, {"-X", "DOCKER-USER"}, {"-P", "FORWARD", "ACCEPT"}} {
				run(t, c1, append([]string{"iptables", "-w"}, c...)...)
			}
		}},
		{name: "whole ruleset flushed", inject: func(t *testing.T) { run(t, c1, "nft", "flush", "ruleset") }, repaired: rulesBack},
		{name: "bridge address removed", inject: func(t *testing.T) { run(t, c1, "ip", "addr", "del", gw+"/24", "dev", "br100") },
			repaired: has(c1, gw+"/24", "ip", "-4", "-o", "addr", "show", "br100")},
		{name: "flat interface unbridged", inject: func(t *testing.T) { run(t, c1, "ip", "link", "set", "eth2", "nomaster") },
			repaired: has(c1, "master br100", "ip", "-o", "link", "show", "eth2")},
		{name: "promiscuous mode off", inject: func(t *testing.T) { run(t, c1, "ip", "link", "set", "eth2", "promisc", "off") },
			repaired: has(c1, "PROMISC", "ip", "-o", "link", "show", "eth2")},
		{name: "ip_forward off", inject: func(t *testing.T) { run(t, c1, "sysctl", "-qw", "net.ipv4.ip_forward=0") },
			repaired: has(c1, "1", "cat", "/proc/sys/net/ipv4/ip_forward")},
		{name: "dnsmasq killed", inject: func(t *testing.T) {
			pid := dnsmasqPid(t, l, c1)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}, repaired: func() bool { p := dnsmasqPid(t, l, c1); return p != 0 && p != pid0 && pidAlive(p) }},
		{name: "host entry removed", inject: func(t *testing.T) { faultMust(t, os.Remove(entry2)) }, repaired: entryBack},
		{name: "host entry edited", inject: func(t *testing.T) {
			faultMust(t, os.WriteFile(entry2, []byte(vm2.MAC+",evil,10.0.0.250\n"), 0o644))
		}, repaired: entryBack},
		{name: "hosts directory removed", inject: func(t *testing.T) {
			faultMust(t, os.Rename(hostsDir, hostsDir+".gone"))
		}, repaired: entryBack, cleanup: func(t *testing.T) { faultMust(t, os.RemoveAll(hostsDir+".gone")) }},
	}

	// Phase 1: serve hung (SIGSTOP: connections accepted, never answered).
	serve := l.State().PIDs["serve"]
	if err := syscall.Kill(serve, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	hungAt := time.Now()
	stopped := true
	defer func() {
		if stopped {
			_ = syscall.Kill(serve, syscall.SIGCONT)
		}
	}()
	renewals := 0
	renewAll := func(t *testing.T, why string) {
		for _, vm := range []string{"vm1", "vm2"} {
			before, _ := l.LeaseOf(vm)
			time.Sleep(1100 * time.Millisecond) // lease times have 1 s resolution
			if err := l.Renew(vm); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				now, err := l.LeaseOf(vm)
				if err == nil && now.At.After(before.At) && now.Address == before.Address {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%s: %s's renewal was not answered (lease %+v, %v)", why, vm, now, err)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			renewals++
		}
	}
	renewAll(t, "API hung")
	for _, f := range faults {
		measure(t, "API hung", f)
		if f.name == "dnsmasq killed" || f.name == "hosts directory removed" {
			renewAll(t, f.name+" with the API hung")
		}
	}
	for time.Since(hungAt) < 60*time.Second {
		time.Sleep(time.Second)
	}
	renewAll(t, "after 60 s of hung API")
	if err := syscall.Kill(serve, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	hungFor := time.Since(hungAt)

	// Phase 2: compute-1 cut off from the API (packets dropped).
	partition := []string{"OUTPUT", "-d", "192.168.56.200", "-p", "tcp", "--dport", "8774", "-j", "DROP"}
	run(t, c1, append([]string{"iptables", "-w", "-I"}, partition...)...)
	time.Sleep(time.Second)
	for _, f := range faults {
		if f.name == "tap unbridged" || f.name == "SNAT chain flushed" || f.name == "dnsmasq killed" {
			if f.name == "dnsmasq killed" {
				pid0 = dnsmasqPid(t, l, c1)
			}
			measure(t, "API partitioned", f)
		}
	}
	renewAll(t, "API partitioned")
	run(t, c1, append([]string{"iptables", "-w", "-D"}, partition...)...)

	// Phase 3: twenty VMs boot on vm1's compute; the gateway MAC vm1 has
	// cached must not move (a lower tap MAC would move an unpinned bridge).
	var storm []lab.VMSpec
	for i := range 20 {
		storm = append(storm, lab.VMSpec{Name: fmt.Sprintf("s%d", i), Host: c1})
	}
	stormFrom := time.Now()
	if _, err := l.BootMany(ctx, storm, 60*time.Second); err != nil {
		t.Errorf("twenty-VM boot after the faults: %v", err)
	}
	stormTook := time.Since(stormFrom)
	if now := macOf(out(c1, "ip", "-o", "link", "show", "br100")); now != brMAC {
		t.Errorf("compute-1's bridge MAC moved from %s to %s", brMAC, now)
	}
	results = append(results, faultResult{name: "20-VM boot storm", phase: "API up", took: stormTook, from: stormFrom, to: time.Now()})

	// Phase 4: the agent restarts and adopts everything; nothing changes.
	state := func() string {
		var b strings.Builder
		for _, c := range [][]string{{"iptables-save"}, {"ip", "-o", "-4", "addr", "show"}, {"ip", "-o", "link", "show"}, {"sysctl", "net.ipv4.ip_forward"}} {
			for _, line := range strings.Split(out(c1, c...), "\n") {
				if !strings.HasPrefix(line, "#") {
					b.WriteString(counters.ReplaceAllString(line, "") + "\n")
				}
			}
		}
		return b.String()
	}
	before := state()
	pid := dnsmasqPid(t, l, c1)
	if err := l.StopDaemon("agent-compute-1"); err != nil {
		t.Fatal(err)
	}
	if err := l.StartDaemon("agent-compute-1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if after := state(); after != before || dnsmasqPid(t, l, c1) != pid {
		t.Errorf("a restarted agent changed the kernel or dnsmasq (pid %d -> %d):\n--- before\n%s\n--- after\n%s", pid, dnsmasqPid(t, l, c1), before, after)
	}
	log, _ := os.ReadFile(filepath.Join(l.Dir, c1, "agent.log"))
	restartLog := string(log)[strings.LastIndex(string(log), "agent started"):]
	if strings.Contains(restartLog, "repaired drift") {
		t.Errorf("the restarted agent repaired something that was right:\n%s", restartLog)
	}

	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "repaired drift") || strings.Contains(line, "dnsmasq") && strings.Contains(line, "WARN") {
			t.Log(line)
		}
	}
	losses := pingers.stop(t)
	lost := 0
	for _, ls := range losses {
		inFault := slices.ContainsFunc(results, func(r faultResult) bool {
			return !ls.at.Before(r.from.Add(-200*time.Millisecond)) && !ls.at.After(r.to.Add(time.Second))
		})
		if !inFault {
			lost++
			t.Logf("ping to %s lost at %s outside any fault's repair", ls.target, ls.at.Format("15:04:05.000"))
		}
	}
	// The target is none (docs/BENCHMARKS.md has each run's count); two
	// are tolerated because CI runs this beside other packages' tests on
	// two cores, where a starved VM can miss one 1 s ping timeout.
	if lost > 2 {
		t.Errorf("%d pings lost outside the faults' own repair times", lost)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| fault | phase | repaired in |\n|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %d ms |\n", r.name, r.phase, r.took.Milliseconds())
	}
	fmt.Fprintf(&b, "\nAPI hung %s; %d renewals asked, all answered unless an error above; %d pings lost in all, %d outside repairs; 20 VMs booted and leased in %s\n",
		hungFor.Round(time.Second), renewals, len(losses), lost, stormTook.Round(time.Millisecond))
	t.Log("\n" + b.String())
	if p := os.Getenv("NOVANET_FAULT_REPORT"); p != "" {
		_ = os.WriteFile(p, []byte(b.String()), 0o644)
	}
}

func faultMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func pidAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// novaRules is the novanet part of an iptables-save listing: the nova-*
// chains' rules and the jumps into them, sorted (counters dropped).
func novaRules(save string) string {
	var keep []string
	for _, line := range strings.Split(save, "\n") {
		if strings.HasPrefix(line, "-A nova-") || (strings.HasPrefix(line, "-A ") && strings.Contains(line, " -j nova-")) {
			keep = append(keep, line)
		}
	}
	slices.Sort(keep)
	return strings.Join(keep, "\n")
}

func macOf(linkLine string) string {
	f := strings.Fields(linkLine)
	for i, x := range f {
		if x == "link/ether" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// pingers ping targets from a VM every 200 ms with timestamps.
type pingers struct {
	cmds map[string]*exec.Cmd
	outs map[string]*strings.Builder
}

type loss struct {
	target string
	at     time.Time
}

func startPingers(t *testing.T, l *lab.Lab, from string, targets map[string]string) *pingers {
	t.Helper()
	ns, err := l.Namespace(from)
	if err != nil {
		t.Fatal(err)
	}
	p := &pingers{cmds: map[string]*exec.Cmd{}, outs: map[string]*strings.Builder{}}
	for name, addr := range targets {
		cmd := exec.Command("ip", "netns", "exec", ns, "ping", "-D", "-O", "-i", "0.2", "-W", "1", addr)
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p.cmds[name], p.outs[name] = cmd, &out
	}
	t.Cleanup(func() {
		for _, c := range p.cmds {
			if c.ProcessState == nil {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
		}
	})
	return p
}

// stop ends the pings and returns every ping never answered.
func (p *pingers) stop(t *testing.T) []loss {
	var out []loss
	for name, c := range p.cmds {
		_ = c.Process.Signal(syscall.SIGINT)
		_ = c.Wait()
		answered := map[int]bool{}
		asked := map[int]time.Time{}
		sc := bufio.NewScanner(strings.NewReader(p.outs[name].String()))
		for sc.Scan() {
			line := sc.Text()
			at, seq, ok := pingLine(line)
			if !ok {
				continue
			}
			if strings.Contains(line, "no answer yet") {
				asked[seq] = at
			} else {
				answered[seq] = true
			}
		}
		n := 0
		for seq, at := range asked {
			if !answered[seq] {
				out = append(out, loss{target: name, at: at})
				n++
			}
		}
		t.Logf("pings to %s: %d answered, %d lost", name, len(answered), n)
	}
	return out
}

// pingLine parses "[1700000000.123456] ... icmp_seq=N ...".
func pingLine(line string) (time.Time, int, bool) {
	if !strings.HasPrefix(line, "[") {
		return time.Time{}, 0, false
	}
	end := strings.IndexByte(line, ']')
	i := strings.Index(line, "icmp_seq=")
	if end < 0 || i < 0 {
		return time.Time{}, 0, false
	}
	sec, err := strconv.ParseFloat(line[1:end], 64)
	if err != nil {
		return time.Time{}, 0, false
	}
	rest := line[i+len("icmp_seq="):]
	if j := strings.IndexAny(rest, " \t"); j >= 0 {
		rest = rest[:j]
	}
	seq, err := strconv.Atoi(rest)
	if err != nil {
		return time.Time{}, 0, false
	}
	return time.Unix(0, int64(sec*1e9)), seq, true
}
