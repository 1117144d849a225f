package dnsmasq_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"

	"novanet/internal/datapath/dnsmasq"
	"novanet/internal/model"
	"novanet/internal/netnsdo"
	"novanet/internal/nettest"
	"novanet/internal/plan"
)

const served = 5000

func servedHost(i int) model.DHCPHost {
	return model.DHCPHost{MAC: fmt.Sprintf("fa:16:3e:01:%02x:%02x", i>>8&0xff, i&0xff), Hostname: fmt.Sprintf("vm-%d", i),
		Address: netip.AddrFrom4([4]byte{10, 0, byte(1 + i/250), byte(2 + i%250)})}
}

// newClientMAC is the MAC of the booting VM in iteration i.
func newClientMAC(i int) string { return fmt.Sprintf("fa:16:3e:02:%02x:%02x", i>>8&0xff, i&0xff) }

func newClientHost(i int) model.DHCPHost {
	return model.DHCPHost{MAC: newClientMAC(i), Hostname: fmt.Sprintf("new-%d", i),
		Address: netip.AddrFrom4([4]byte{10, 0, byte(100 + i/250), byte(2 + i%250)})}
}

// benchRig is a /16 version of the test rig.
func benchRig(b *testing.B) *rig {
	nettest.RequireRoot(b, "dnsmasq", "busybox")
	dir, err := os.MkdirTemp("/run", "nndmb-")
	if err != nil {
		b.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	b.Cleanup(func() { os.RemoveAll(dir) })
	r := &rig{srv: nettest.Netns(b, "nndmb-srv"), cli: nettest.Netns(b, "nndmb-vm"), dir: dir}
	nettest.Run(b, r.srv, "ip", "link", "add", "br100", "type", "bridge")
	nettest.Run(b, r.srv, "ip", "addr", "add", "10.0.0.1/16", "dev", "br100")
	nettest.Run(b, r.srv, "ip", "link", "set", "br100", "up")
	nettest.Run(b, r.srv, "ip", "link", "add", "tapvm", "type", "veth", "peer", "name", "eth0", "netns", r.cli)
	nettest.Run(b, r.srv, "ip", "link", "set", "tapvm", "master", "br100", "up")
	nettest.Run(b, r.cli, "ip", "link", "set", "eth0", "up")
	script := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	r.clientConf = filepath.Join(dir, "udhcpc.sh")
	if err := os.WriteFile(r.clientConf, []byte("#!/bin/sh\n[ \"$1\" = bound ] && echo \"$ip\" > "+dir+"/lease.$interface\nexit 0\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	return r
}

func (r *rig) args(extra ...string) []string {
	return append([]string{"--strict-order", "--bind-interfaces", "--conf-file=", "--pid-file=" + filepath.Join(r.dir, "nova-br100.pid"),
		"--listen-address=10.0.0.1", "--except-interface=lo", "--dhcp-range=set:private,10.0.0.2,static,255.255.0.0,120s",
		"--dhcp-lease-max=65536", "--dhcp-script=" + filepath.Join(r.dir, "script.sh"), "--leasefile-ro", "--domain=novalocal"}, extra...)
}

// leaseOnce runs udhcpc for mac and fails b unless it gets want.
func (r *rig) leaseOnce(b *testing.B, mac string, want netip.Addr) {
	got := r.lease(b, mac)
	if !strings.HasPrefix(got, want.String()) {
		b.Fatalf("client %s got %q, want %s", mac, got, want)
	}
}

// hostsdirServer starts the supervisor's dnsmasq serving 5,000 entries and
// returns how to add host i (novanet's way: one new file in
// --dhcp-hostsdir, picked up by inotify).
func hostsdirServer(b *testing.B, r *rig) (add func(i int)) {
	ctx := context.Background()
	s := dnsmasq.New(nil, r.dir)
	s.Netns = r.srv
	b.Cleanup(func() { _ = s.Apply(ctx, nil) })
	hosts := make([]model.DHCPHost, 0, served+b.N)
	for i := range served {
		hosts = append(hosts, servedHost(i))
	}
	apply := func() {
		d := r.dnsmasqPlan(b, hosts...)
		d[0].Args = r.args("--dhcp-hostsdir=" + d[0].HostsDir)
		if err := s.Apply(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	apply()
	return func(i int) {
		hosts = append(hosts, newClientHost(i))
		apply()
	}
}

// hostsfileServer starts dnsmasq the way nova ran it, with a 5,000-line
// --dhcp-hostsfile, and returns how to add host i (nova's way: rewrite the
// whole file and SIGHUP dnsmasq).
func hostsfileServer(b *testing.B, r *rig) (add func(i int)) {
	file := filepath.Join(r.dir, "nova-br100.conf")
	var lines strings.Builder
	for i := range served {
		h := servedHost(i)
		fmt.Fprintf(&lines, "%s,%s.novalocal,%s\n", h.MAC, h.Hostname, h.Address)
	}
	if err := os.WriteFile(file, []byte(lines.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := nettest.Cmd(r.srv, append([]string{"dnsmasq"}, r.args("--dhcp-hostsfile="+file)...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("dnsmasq: %v: %s", err, out)
	}
	pidb, _ := os.ReadFile(filepath.Join(r.dir, "nova-br100.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidb)))
	b.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGTERM) })
	time.Sleep(200 * time.Millisecond)
	return func(i int) {
		h := newClientHost(i)
		fmt.Fprintf(&lines, "%s,%s.novalocal,%s\n", h.MAC, h.Hostname, h.Address)
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(lines.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			b.Fatal(err)
		}
	}
}

// dhcpPath runs one new host per iteration through both servers, with
// exchange as the guest's side.
func dhcpPath(b *testing.B, exchange func(b *testing.B, r *rig, i int)) {
	for _, srv := range []struct {
		name  string
		start func(*testing.B, *rig) func(int)
	}{{"novanet-hostsdir", hostsdirServer}, {"nova-hostsfile-sighup", hostsfileServer}} {
		b.Run(srv.name, func(b *testing.B) {
			r := benchRig(b)
			add := srv.start(b, r)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				add(i)
				exchange(b, r, i)
			}
		})
	}
}

// BenchmarkDHCPNewHostAt5000 times one new VM's boot to lease with 5,000
// entries already served, novanet's way beside nova's in the same run,
// with a real busybox udhcpc exchange as a cirros guest would run it.
func BenchmarkDHCPNewHostAt5000(b *testing.B) {
	dhcpPath(b, func(b *testing.B, r *rig, i int) {
		r.leaseOnce(b, newClientMAC(i), newClientHost(i).Address)
	})
}

// BenchmarkApplyAt5000 times the supervisor's Apply with 5,000 served
// entries: one new entry (a boot: one file written and renamed in), and
// nothing changed (a resync: comparisons and a /proc check only). The
// plan is built before the timer runs.
func BenchmarkApplyAt5000(b *testing.B) {
	r := benchRig(b)
	ctx := context.Background()
	s := dnsmasq.New(nil, r.dir)
	s.Netns = r.srv
	b.Cleanup(func() { _ = s.Apply(ctx, nil) })
	hosts := make([]model.DHCPHost, 0, served+b.N)
	for i := range served {
		hosts = append(hosts, servedHost(i))
	}
	d := r.dnsmasqPlan(b, hosts...)
	if err := s.Apply(ctx, d); err != nil {
		b.Fatal(err)
	}
	b.Run("one-new-entry", func(b *testing.B) {
		plans := make([][]plan.Dnsmasq, b.N)
		for i := range plans {
			hosts = append(hosts, newClientHost(i))
			plans[i] = r.dnsmasqPlan(b, hosts...)
		}
		b.ResetTimer()
		for i := range plans {
			if err := s.Apply(ctx, plans[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		d := r.dnsmasqPlan(b, hosts...)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := s.Apply(ctx, d); err != nil {
				b.Fatal(err)
			}
		}
	})
	if s.Starts() != 1 || s.Reloads() != 0 {
		b.Errorf("starts %d, reloads %d; want one start and no reload", s.Starts(), s.Reloads())
	}
}

// goClient makes a DHCP client on eth0 of namespace ns for mac, with the
// raw socket opened inside ns (the socket keeps its namespace).
func goClient(b *testing.B, ns, mac string) *nclient4.Client {
	b.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		b.Fatal(err)
	}
	var c *nclient4.Client
	err = netnsdo.Do(ns, func() error {
		var err error
		c, err = nclient4.New("eth0", nclient4.WithHWAddr(hw), nclient4.WithTimeout(200*time.Millisecond), nclient4.WithRetry(50))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkDHCPServerAt5000 is the DHCP path without a guest's pacing:
// from the moment a new host entry is installed to the ACK of a full
// DISCOVER/OFFER/REQUEST/ACK exchange, with a Go DHCP client that retries
// every 200 ms, while dnsmasq serves 5,000 entries. novanet's hostsdir
// beside nova's hosts file rewrite + SIGHUP, in the same run.
func BenchmarkDHCPServerAt5000(b *testing.B) {
	dhcpPath(b, func(b *testing.B, r *rig, i int) {
		c := goClient(b, r.cli, newClientMAC(i))
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		lease, err := c.Request(ctx)
		if err != nil {
			b.Fatalf("exchange for %s: %v", newClientMAC(i), err)
		}
		if got, want := lease.ACK.YourIPAddr.String(), newClientHost(i).Address.String(); got != want {
			b.Fatalf("ACK gave %s, want %s", got, want)
		}
	})
}
