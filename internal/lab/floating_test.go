package lab_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"novanet/internal/lab"
	"novanet/internal/model"
	"novanet/internal/netnsdo"
)

// echoServer listens on a TCP port inside a lab namespace and answers
// every line with "<name> <peer address>": who answered and whom it saw.
type echoServer struct {
	name string
	mu   sync.Mutex
	// lines counts the lines received, so a test can prove a packet
	// never reached the VM.
	lines int
}

func serveIn(t *testing.T, l *lab.Lab, target string, port int) *echoServer {
	t.Helper()
	ns, err := l.Namespace(target)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := netnsdo.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &echoServer{name: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				peer := c.RemoteAddr().(*net.TCPAddr).IP.String()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					s.mu.Lock()
					s.lines++
					s.mu.Unlock()
					fmt.Fprintf(c, "%s %s\n", s.name, peer)
				}
			}()
		}
	}()
	return s
}

func (s *echoServer) received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lines
}

// conn is a TCP connection opened from inside a lab namespace.
type conn struct {
	net.Conn
	r *bufio.Reader
}

func dialFrom(l *lab.Lab, from, addr string, timeout time.Duration) (*conn, error) {
	c, err := dialTCPFrom(l, from, addr, timeout)
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, r: bufio.NewReader(c)}, nil
}

// ask sends a line and returns the answer ("<vm> <peer>").
func (c *conn) ask(timeout time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("hello\n")); err != nil {
		return "", err
	}
	line, err := c.r.ReadString('\n')
	return strings.TrimSpace(line), err
}

// askOnce connects, asks once and closes. The short connect timeout
// keeps a poll from waiting out a SYN retransmission (1 s) when its first
// SYN went before the agent applied.
func askOnce(l *lab.Lab, from, addr string) (string, error) {
	c, err := dialFrom(l, from, addr, 300*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ask(2 * time.Second)
}

// natSnapshot is what a floating association may change on its NAT host:
// the floating interface's addresses, the nat table, and the conntrack
// entries NATing the floating address to the fixed one.
func natSnapshot(t *testing.T, l *lab.Lab, host, iface string, float netip.Addr, fixed string) (addrs, nat, flows string) {
	t.Helper()
	addrs = in(t, l, host, "ip", "-4", "-o", "addr", "show", "dev", iface)
	counters := regexp.MustCompile(`\[\d+:\d+\]`)
	var b strings.Builder
	for _, line := range strings.Split(in(t, l, host, "iptables-save", "-t", "nat"), "\n") {
		if !strings.HasPrefix(line, "#") {
			b.WriteString(counters.ReplaceAllString(line, "") + "\n")
		}
	}
	nat = b.String()
	ns, _ := l.Namespace(host)
	out, _ := lab.In(ns, "conntrack", "-L") // exits 0 with entries, prints a summary on stderr
	var fl []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "="+float.String()+" ") && strings.Contains(line, "="+fixed+" ") {
			fl = append(fl, line)
		}
	}
	return addrs, nat, strings.Join(fl, "\n")
}

func waitFor(t *testing.T, d time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !f() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func TestFloatingSingleHost(t *testing.T) { testFloating(t, false) }

func TestFloatingMultiHost(t *testing.T) { testFloating(t, true) }

func testFloating(t *testing.T, multi bool) {
	o := fastOptions()
	o.MultiHost = multi
	l := up(t, o)
	ctx := context.Background()
	vm1, vm2, vm3 := boot(t, l, "vm1", "compute-1"), boot(t, l, "vm2", "compute-1"), boot(t, l, "vm3", "compute-2")
	natHost, iface := "controller", "eth0"
	if multi {
		natHost, iface = "compute-1", "eth1"
	}
	const port = 7000
	servers := map[string]*echoServer{}
	for _, vm := range []lab.VM{vm1, vm2, vm3} {
		servers[vm.Name] = serveIn(t, l, vm.Name, port)
	}

	// As in nova, a floating address only forwards what the instance's
	// groups let in: open the echo port and ping to everyone.
	def := defaultGroup(t, l)
	for _, r := range []model.SecurityGroupRule{
		{GroupID: def.ID, Protocol: "icmp", FromPort: -1, ToPort: -1, CIDR: netip.MustParsePrefix("0.0.0.0/0")},
		{GroupID: def.ID, Protocol: "tcp", FromPort: port, ToPort: port, CIDR: netip.MustParsePrefix("0.0.0.0/0")},
	} {
		if _, err := l.Client().CreateSecurityGroupRule(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	addrsBefore, natBefore, _ := natSnapshot(t, l, natHost, iface, netip.MustParseAddr("198.51.100.1"), vm1.Address)
	float, err := l.AssociateFloating(ctx, "vm1")
	if err != nil {
		t.Fatal(err)
	}
	target := net.JoinHostPort(float.String(), fmt.Sprint(port))
	waitFor(t, 10*time.Second, "outside reaches the floating address", func() bool {
		return ping(l, "outside", float.String()) == nil
	})

	t.Run("address-on-the-nat-host", func(t *testing.T) {
		// The DNAT rule goes in a moment before the address.
		waitFor(t, 2*time.Second, natHost+" holds "+float.String(), func() bool {
			addrs, _, _ := natSnapshot(t, l, natHost, iface, float, vm1.Address)
			return strings.Contains(addrs, " "+float.String()+"/32 ")
		})
		for _, h := range lab.Hosts {
			ns, _ := l.Namespace(h)
			out, _ := lab.In(ns, "ip", "-4", "-o", "addr", "show")
			has := strings.Contains(out, " "+float.String()+"/32 ")
			if want := h == natHost; has != want {
				t.Errorf("%s holds %s: %t, want %t:\n%s", h, float, has, want, out)
			}
			if h == natHost && !strings.Contains(out, iface+"    inet "+float.String()+"/32 ") {
				t.Errorf("%s holds %s, but not on %s:\n%s", h, float, iface, out)
			}
		}
	})

	t.Run("outside-in-sees-real-address", func(t *testing.T) {
		got, err := askOnce(l, "outside", target)
		if err != nil || got != "vm1 "+lab.OutsideIP {
			t.Errorf("outside -> %s: %q, %v; want vm1 to answer, seeing %s", target, got, err, lab.OutsideIP)
		}
	})

	t.Run("vm-out-leaves-from-floating", func(t *testing.T) {
		out := serveIn(t, l, "outside", 7001)
		got, err := askOnce(l, "vm1", net.JoinHostPort(lab.OutsideIP, "7001"))
		if err != nil || got != "outside "+float.String() {
			t.Errorf("vm1 -> outside: %q, %v; want the outside host to see %s", got, err, float)
		}
		if out.received() != 1 {
			t.Errorf("outside received %d lines", out.received())
		}
		// vm2 has no floating address: it leaves from the NAT host's
		// routing_source_ip, never from vm1's address.
		got, err = askOnce(l, "vm2", net.JoinHostPort(lab.OutsideIP, "7001"))
		if err != nil || strings.Contains(got, float.String()) {
			t.Errorf("vm2 -> outside: %q, %v", got, err)
		}
	})

	t.Run("hairpin", func(t *testing.T) {
		for _, from := range []string{"vm1", "vm2", "vm3", natHost} {
			got, err := askOnce(l, from, target)
			if err != nil || !strings.HasPrefix(got, "vm1 ") {
				t.Errorf("%s -> %s: %q, %v; want vm1 to answer", from, target, got, err)
			}
			if err := ping(l, from, float.String()); err != nil {
				t.Errorf("%s pings %s: %v", from, float, err)
			}
		}
	})

	t.Run("status", func(t *testing.T) {
		st, err := l.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.API.AdminToken == "" || st.API.ProjectToken == "" || st.API.ProjectID != lab.ProjectID || !strings.HasPrefix(st.API.URL, "http://") {
			t.Errorf("status API access %+v", st.API)
		}
		for _, vm := range st.VMs {
			want := ""
			if vm.Name == "vm1" {
				want = float.String()
			}
			if strings.Join(vm.FloatingIPs, ",") != want {
				t.Errorf("status shows %s with floating %v, want %q", vm.Name, vm.FloatingIPs, want)
			}
		}
		// The command prints the same: endpoint, tokens, floating column,
		// and JSON for scripts.
		out, err := exec.Command(bin, "lab", "status", "--name", l.Name).CombinedOutput()
		if err != nil || !strings.Contains(string(out), st.API.ProjectToken) || !strings.Contains(string(out), st.API.AdminToken) ||
			!strings.Contains(string(out), st.API.URL) || !regexp.MustCompile(`(?m)^vm1 .* `+regexp.QuoteMeta(float.String())+`\s*$`).Match(out) {
			t.Errorf("lab status: %v\n%s", err, out)
		}
		out, err = exec.Command(bin, "lab", "status", "--name", l.Name, "-o", "json").Output()
		// The CLI's JSON is in the API's style (snake_case keys).
		var js struct {
			API struct {
				ProjectToken string `json:"project_token"`
			} `json:"api"`
			VMs []struct {
				Name        string   `json:"name"`
				FloatingIPs []string `json:"floating_ips"`
			} `json:"vms"`
		}
		if err != nil || json.Unmarshal(out, &js) != nil || js.API.ProjectToken != st.API.ProjectToken || len(js.VMs) != 3 {
			t.Errorf("lab status -o json: %v\n%s", err, out)
		}
		// The project token drives the API as the VMs' project.
		fls, err := l.ProjectClient().ListFloatingIPs(ctx)
		if err != nil || len(fls) != 1 || fls[0].Address != float {
			t.Errorf("project token lists %v, %v", fls, err)
		}
	})

	t.Run("disassociate-stops-flows-and-leaves-nothing", func(t *testing.T) {
		c, err := dialFrom(l, "outside", target, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got, err := c.ask(2 * time.Second); err != nil || got != "vm1 "+lab.OutsideIP {
			t.Fatalf("open connection: %q, %v", got, err)
		}
		if err := l.ProjectClient().DisassociateFloatingIP(ctx, float, vm1.UUID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the address leaves "+natHost, func() bool {
			addrs, _, _ := natSnapshot(t, l, natHost, iface, float, vm1.Address)
			return !strings.Contains(addrs, float.String())
		})
		// Let the agent finish the sync that removed the address (rules,
		// then address, then flows).
		waitFor(t, 5*time.Second, "the old mapping's flows are deleted", func() bool {
			_, _, flows := natSnapshot(t, l, natHost, iface, float, vm1.Address)
			return flows == ""
		})
		before := servers["vm1"].received()
		if got, err := c.ask(2 * time.Second); err == nil {
			t.Errorf("the connection open during disassociate still works: %q", got)
		}
		if n := servers["vm1"].received(); n != before {
			t.Errorf("vm1 received %d lines after the disassociation", n-before)
		}
		addrs, nat, flows := natSnapshot(t, l, natHost, iface, float, vm1.Address)
		if addrs != addrsBefore {
			t.Errorf("%s's %s addresses differ:\n--- before\n%s\n--- after\n%s", natHost, iface, addrsBefore, addrs)
		}
		if nat != natBefore {
			t.Errorf("%s's nat table differs:\n--- before\n%s\n--- after\n%s", natHost, natBefore, nat)
		}
		if flows != "" {
			t.Errorf("conntrack still NATs %s to %s:\n%s", float, vm1.Address, flows)
		}
		if _, err := askOnce(l, "outside", target); err == nil {
			t.Errorf("a new connection to %s still reaches a VM", target)
		}
	})

	t.Run("reassociate-moves-within-1s", func(t *testing.T) {
		c := l.ProjectClient()
		start := time.Now()
		if err := c.AssociateFloatingIP(ctx, float, vm3.UUID, netip.Addr{}); err != nil {
			t.Fatal(err)
		}
		took := waitFor(t, 3*time.Second, "outside reaches vm3 at "+target, func() bool {
			got, err := askOnce(l, "outside", target)
			return err == nil && strings.HasPrefix(got, "vm3 ")
		})
		t.Logf("associate to vm3: API %s, traffic moved %s after the API answered", time.Since(start)-took, took)
		if took > time.Second {
			t.Errorf("traffic moved %s after the association, want within 1 s", took)
		}
		if multi {
			ns, _ := l.Namespace("compute-2")
			if out, _ := lab.In(ns, "ip", "-4", "-o", "addr", "show", "dev", "eth1"); !strings.Contains(out, float.String()+"/32") {
				t.Errorf("compute-2 (vm3's host) does not hold %s:\n%s", float, out)
			}
		}

		// A direct move back (disassociate + associate) while a
		// connection to vm3 is open: the connection stops, new ones reach
		// vm1 within a second.
		open, err := dialFrom(l, "outside", target, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer open.Close()
		if got, err := open.ask(2 * time.Second); err != nil || !strings.HasPrefix(got, "vm3 ") {
			t.Fatalf("open connection to vm3: %q, %v", got, err)
		}
		if err := c.DisassociateFloatingIP(ctx, float, vm3.UUID); err != nil {
			t.Fatal(err)
		}
		if err := c.AssociateFloatingIP(ctx, float, vm1.UUID, netip.Addr{}); err != nil {
			t.Fatal(err)
		}
		took = waitFor(t, 3*time.Second, "outside reaches vm1 again", func() bool {
			got, err := askOnce(l, "outside", target)
			return err == nil && strings.HasPrefix(got, "vm1 ")
		})
		t.Logf("move back to vm1: traffic moved %s after the API answered", took)
		if took > time.Second {
			t.Errorf("traffic moved %s after the association, want within 1 s", took)
		}
		// New connections can reach vm1 a moment before the agent has
		// deleted the old mapping's flows (the last step of its sync).
		vm3Host, vm3Iface := natHost, iface
		if multi {
			vm3Host = "compute-2"
		}
		waitFor(t, time.Second, "the flows to vm3 are deleted", func() bool {
			_, _, flows := natSnapshot(t, l, vm3Host, vm3Iface, float, vm3.Address)
			return flows == ""
		})
		before := servers["vm3"].received()
		if got, err := open.ask(2 * time.Second); err == nil && strings.HasPrefix(got, "vm3 ") {
			t.Errorf("the connection to vm3 survived the move: %q", got)
		}
		if n := servers["vm3"].received(); n != before {
			t.Errorf("vm3 received %d lines after the move", n-before)
		}
	})

	t.Run("release-returns-to-pool", func(t *testing.T) {
		if err := l.ProjectClient().ReleaseFloatingIP(ctx, float.String()); err != nil {
			t.Fatal(err)
		}
		fls, err := l.Client().ListAllFloatingIPs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fls {
			if f.Address == float && (f.ProjectID != "" || f.FixedAddress.IsValid()) {
				t.Errorf("released %s is still %+v", float, f)
			}
		}
		waitFor(t, 5*time.Second, "the released address leaves "+natHost, func() bool {
			addrs, _, _ := natSnapshot(t, l, natHost, iface, float, vm1.Address)
			return !strings.Contains(addrs, float.String())
		})
		if err := ping(l, "outside", float.String()); err == nil {
			t.Errorf("released %s still answers", float)
		}
	})
}
