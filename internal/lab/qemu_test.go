package lab_test

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"novanet/internal/lab"
)

// TestQEMUGuest boots real Linux guests under QEMU on compute-1 of a
// single-host lab, as a hypervisor would once novanet has allocated the
// instance: QEMU makes the tap under the VIF's device name, the agent
// enslaves it, the guest's own udhcpc leases from the controller's
// dnsmasq and the guest pings its gateway. Delete and down stop QEMU and
// take the taps with them.
func TestQEMUGuest(t *testing.T) {
	requireLab(t)
	if err := lab.QEMUMissing(); err != nil {
		t.Skipf("QEMU guests: %v", err)
	}
	l := up(t, fastOptions())
	ctx := context.Background()

	// A bad combination is refused before anything is allocated.
	if _, err := l.BootMany(ctx, []lab.VMSpec{{Name: "bad", Host: "compute-1", QEMU: true, Client: "dhclient"}}, time.Second); err == nil ||
		!strings.Contains(err.Error(), "--dhcp-client") {
		t.Fatalf("QEMU with a DHCP client: got %v, want an error naming --dhcp-client", err)
	}
	if insts, err := l.Client().ListInstances(ctx); err != nil || len(insts) != 0 {
		t.Fatalf("the refused boot allocated: %v, %v", insts, err)
	}

	start := time.Now()
	vms, err := l.BootMany(ctx, []lab.VMSpec{{Name: "qa", Host: "compute-1", QEMU: true}, {Name: "qb", Host: "compute-1", QEMU: true}}, 90*time.Second)
	if err != nil {
		logConsoles(t, l, "qa", "qb")
		t.Fatal(err)
	}
	t.Logf("two QEMU guests leased in %s", time.Since(start).Round(100*time.Millisecond))
	for _, vm := range vms {
		checkQEMUGuest(t, l, vm, "10.0.0.1", "controller")
	}

	a, b := vms[0], vms[1]
	// Inside the guest, over its command channel: its address, its
	// neighbour on the same bridge and the outside world through the
	// controller's SNAT.
	if out := guestRun(t, l, a.Name, "ip -4 -o addr show dev eth0"); !strings.Contains(out, "inet "+a.Address+"/24") {
		t.Errorf("%s's eth0 lacks %s/24: %s", a.Name, a.Address, out)
	}
	guestRun(t, l, a.Name, "ping -c 1 -W 3 "+b.Address)
	guestRun(t, l, a.Name, "ping -c 1 -W 3 203.0.113.254")
	if out, rc, err := l.GuestExec(ctx, a.Name, "exit 7", 10*time.Second); err != nil || rc != 7 {
		t.Errorf("exit 7 in %s: status %d (%v) %q, want 7", a.Name, rc, err, out)
	}

	if err := l.Delete(ctx, a.Name); err != nil {
		t.Fatal(err)
	}
	checkQEMUGone(t, l, a)
	waitFixed(t, l, a.Address, func(leased bool) bool { return !leased }, "released")
	if _, err := l.Console(a.Name); err == nil {
		t.Errorf("%s's console survived its delete", a.Name)
	}
	if out := in(t, l, "compute-1", "ip", "-o", "link", "show", "dev", b.Device); !strings.Contains(out, "master br100") {
		t.Errorf("deleting %s disturbed %s's tap: %s", a.Name, b.Name, out)
	}

	if err := l.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if qemuAlive(b.ClientPID, b.Name) {
		t.Errorf("QEMU of %s (pid %d) still runs after down", b.Name, b.ClientPID)
	}
}

// checkQEMUGuest checks a leased QEMU guest whose router is gateway, an
// address on gatewayHost's br100.
func checkQEMUGuest(t *testing.T, l *lab.Lab, vm lab.VM, gateway, gatewayHost string) {
	t.Helper()
	if vm.Client != lab.QEMUClient || vm.ClientPID <= 0 {
		t.Fatalf("%s: client %q pid %d, want a QEMU process", vm.Name, vm.Client, vm.ClientPID)
	}
	// QEMU runs in the compute host's namespace and made the tap there.
	c1, err := l.Namespace(vm.Host)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "identify", strconv.Itoa(vm.ClientPID)).Output(); err != nil || strings.TrimSpace(string(out)) != c1 {
		t.Errorf("QEMU of %s runs in namespace %q (%v), want %s", vm.Name, out, err, c1)
	}
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(vm.ClientPID) + "/cmdline")
	if !strings.Contains(string(cmdline), "ifname="+vm.Device+",script=no") || !strings.Contains(string(cmdline), "mac="+vm.MAC) {
		t.Errorf("QEMU of %s was not given tap %s and MAC %s: %q", vm.Name, vm.Device, vm.MAC, cmdline)
	}
	link := in(t, l, vm.Host, "ip", "-o", "link", "show", "dev", vm.Device)
	if !strings.Contains(link, "master br100") || !strings.Contains(link, "fe"+vm.MAC[2:]) {
		t.Errorf("%s's tap is not on br100 with MAC fe%s: %s", vm.Name, vm.MAC[2:], link)
	}
	// The guest's frames come through that tap with the VIF's MAC.
	if fdb := in(t, l, vm.Host, "bridge", "fdb", "show", "dev", vm.Device); !strings.Contains(fdb, vm.MAC) {
		t.Errorf("br100 never learned %s's MAC %s on %s:\n%s", vm.Name, vm.MAC, vm.Device, fdb)
	}

	lease, err := l.LeaseOf(vm.Name)
	if err != nil || lease.Address != vm.Address || lease.Router != gateway || lease.DNS != gateway || lease.Server != gateway {
		t.Errorf("%s's guest lease %+v (%v), want %s via %s from %s", vm.Name, lease, err, vm.Address, gateway, gateway)
	}
	waitFixed(t, l, vm.Address, func(leased bool) bool { return leased }, "leased")

	want := "novanet-ping: " + gateway + " ok"
	var console string
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(console, want) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		console, _ = l.Console(vm.Name)
	}
	if !strings.Contains(console, want) {
		t.Errorf("%s never printed %q; its console:\n%s", vm.Name, want, tail(console, 3000))
	}
	// And the other way: the gateway host reaches the guest.
	if err := ping(l, gatewayHost, vm.Address); err != nil {
		t.Errorf("%s cannot ping the QEMU guest %s at %s: %v", gatewayHost, vm.Name, vm.Address, err)
	}
}

func checkQEMUGone(t *testing.T, l *lab.Lab, vm lab.VM) {
	t.Helper()
	if qemuAlive(vm.ClientPID, vm.Name) {
		t.Errorf("QEMU of %s (pid %d) still runs after delete", vm.Name, vm.ClientPID)
	}
	ns, err := l.Namespace("compute-1")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", ns, "link", "show", "dev", vm.Device).CombinedOutput(); err == nil {
		t.Errorf("tap %s outlived its guest: %s", vm.Device, out)
	}
}

// qemuAlive reports whether pid is a QEMU process of guest name (its command
// line names the guest; a zombie's is empty).
func qemuAlive(pid int, name string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && strings.Contains(string(b), "novanet.hostname="+name)
}

func logConsoles(t *testing.T, l *lab.Lab, names ...string) {
	for _, n := range names {
		if out, err := l.Console(n); err == nil {
			t.Logf("--- console of %s\n%s", n, tail(out, 2000))
		}
	}
}

// TestQEMUGuestMultiHost boots a QEMU guest on compute-2 of a multi-host
// lab: compute-2's own dnsmasq leases it and its router is compute-2's
// bridge address.
func TestQEMUGuestMultiHost(t *testing.T) {
	requireLab(t)
	if err := lab.QEMUMissing(); err != nil {
		t.Skipf("QEMU guests: %v", err)
	}
	o := fastOptions()
	o.MultiHost = true
	l := up(t, o)
	vms, err := l.BootMany(context.Background(), []lab.VMSpec{{Name: "qm", Host: "compute-2", QEMU: true}}, 90*time.Second)
	if err != nil {
		logConsoles(t, l, "qm")
		t.Fatal(err)
	}
	br := in(t, l, "compute-2", "ip", "-4", "-o", "addr", "show", "br100")
	f := strings.Fields(br)
	i := slices.Index(f, "inet")
	if i < 0 || i+1 >= len(f) {
		t.Fatalf("compute-2's br100 has no address: %s", br)
	}
	gateway, _, _ := strings.Cut(f[i+1], "/")
	if gateway == "10.0.0.1" {
		t.Fatalf("compute-2's br100 carries the controller's 10.0.0.1: %s", br)
	}
	checkQEMUGuest(t, l, vms[0], gateway, "compute-2")
}

// guestRun runs a shell line in a QEMU guest and fails t unless it exits 0.
func guestRun(t *testing.T, l *lab.Lab, vm, line string) string {
	t.Helper()
	out, rc, err := l.GuestExec(context.Background(), vm, line, 20*time.Second)
	if err != nil || rc != 0 {
		t.Errorf("%s in %s: status %d, %v:\n%s", line, vm, rc, err, out)
	}
	return out
}
