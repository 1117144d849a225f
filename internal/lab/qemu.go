package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// QEMUClient is VM.Client for a QEMU guest: its DHCP client runs inside
// the guest, and VM.ClientPID is the QEMU process.
const QEMUClient = "qemu"

// QEMUBinary is the emulator `lab boot --qemu` runs.
var QEMUBinary = "qemu-system-x86_64"

// QEMUMissing says what this machine lacks for QEMU guests (nil when
// nothing).
func QEMUMissing() error {
	if _, err := exec.LookPath(QEMUBinary); err != nil {
		return fmt.Errorf("--qemu needs %s: apt-get install qemu-system-x86 (scripts/install-deps.sh does)", QEMUBinary)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("--qemu needs /dev/net/tun for the guest's tap: %w", err)
	}
	if _, _, err := FindGuestKernel(); err != nil {
		return err
	}
	return checkStatic(BusyboxPath)
}

// CheckQEMU says what is missing for QEMU guests, before anything is
// allocated, and builds (or finds cached) the guest image.
func CheckQEMU() (GuestImage, error) {
	if err := QEMUMissing(); err != nil {
		return GuestImage{}, err
	}
	return BuildGuestImage()
}

// qemuArgs is the command line a hypervisor such as libvirt runs for a
// guest with one novanet VIF: QEMU creates the tap under the VIF's device
// name and gives the guest's NIC the VIF's MAC. TCG, not KVM: KVM guests
// hang on these machines (platform notes).
func (l *Lab) qemuArgs(vm VM, img GuestImage) []string {
	dir := l.path("vms", vm.Name)
	return []string{QEMUBinary, "-name", "novanet-lab-" + l.Name + "-" + vm.Name,
		"-accel", "tcg", "-m", "256", "-smp", "1", "-nodefaults", "-display", "none", "-no-reboot",
		"-kernel", img.Kernel, "-initrd", img.Initramfs,
		"-append", "console=ttyS0 panic=-1 quiet novanet.hostname=" + vm.Name,
		"-serial", "file:" + filepath.Join(dir, "console.log"),
		"-chardev", "socket,id=cmd,path=" + filepath.Join(dir, "cmd.sock") + ",server=on,wait=off", "-serial", "chardev:cmd",
		"-netdev", "tap,id=vif0,ifname=" + vm.Device + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=vif0,mac=" + vm.MAC}
}

// startQEMU starts the guest in its host's namespace and waits until the
// agent has put the tap QEMU made on the bridge. It returns QEMU's pid
// (`ip netns exec` execs it in place); its command line holds the VM's
// directory, so unplug's killOurs recognises it.
func (l *Lab) startQEMU(vm VM, img GuestImage) (int, error) {
	dir := l.path("vms", vm.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "qemu.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	args := l.qemuArgs(vm, img)
	c := exec.Command("ip", append([]string{"netns", "exec", l.hostNS(vm.Host)}, args...)...)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return 0, fmt.Errorf("start QEMU for %s: %w", vm.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = c.Wait(); close(exited) }()
	pid := c.Process.Pid
	if err := l.waitTapAttached(vm, exited); err != nil {
		return pid, err
	}
	return pid, nil
}

func (l *Lab) waitTapAttached(vm VM, exited <-chan struct{}) error {
	hostNS, err := netns.GetFromName(l.hostNS(vm.Host))
	if err != nil {
		return fmt.Errorf("host namespace of %s: %w", vm.Host, err)
	}
	defer hostNS.Close()
	hh, err := netlink.NewHandleAt(hostNS)
	if err != nil {
		return err
	}
	defer hh.Close()
	// libvirt gives the host end the guest's MAC with its first byte
	// 0xfe, so that the bridge, which takes the lowest port MAC as its
	// own, never takes (or changes to) a guest's.
	hostMAC, err := net.ParseMAC(vm.MAC)
	if err != nil {
		return err
	}
	hostMAC[0] = 0xfe
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("QEMU for %s exited: see %s", vm.Name, l.path("vms", vm.Name, "qemu.log"))
		default:
		}
		lk, err := hh.LinkByName(vm.Device)
		if err == nil && !bytes.Equal(lk.Attrs().HardwareAddr, hostMAC) {
			if err := hh.LinkSetHardwareAddr(lk, hostMAC); err != nil {
				return fmt.Errorf("set the MAC of tap %s: %w", vm.Device, err)
			}
		}
		if err == nil && lk.Attrs().MasterIndex != 0 {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("the agent on %s did not attach QEMU's tap %s to the bridge within 15s: see %s", vm.Host, vm.Device, l.path(vm.Host, "agent.log"))
}

// stopQEMU stops the guest; the kernel removes the tap when QEMU's last
// descriptor of it closes. A tap of that name left behind (QEMU killed
// by someone else and its pid reused) is deleted by name.
func (l *Lab) stopQEMU(vm VM) {
	if vm.ClientPID > 0 {
		killOurs(vm.ClientPID, l.clientMark(vm.Name))
	}
	ns := l.hostNS(vm.Host)
	if !nsExists(ns) || vm.Device == "" {
		return
	}
	if err := waitUntil(context.Background(), 2*time.Second, func() bool {
		return run("ip", "-n", ns, "link", "show", "dev", vm.Device) != nil
	}); err != nil {
		_ = run("ip", "-n", ns, "link", "del", "dev", vm.Device)
	}
}

// Console returns what a QEMU guest printed on its serial console.
func (l *Lab) Console(name string) (string, error) {
	if !slices.ContainsFunc(l.st.VMs, func(v VM) bool { return v.Name == name }) {
		return "", fmt.Errorf("no VM %s in lab %s", name, l.Name)
	}
	b, err := os.ReadFile(l.path("vms", name, "console.log"))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("VM %s has no console (only QEMU guests, booted with --qemu, have one)", name)
	}
	return strings.ReplaceAll(string(b), "\r", ""), err
}

// consoleLease is the last lease a QEMU guest printed, in the lease
// record format of the namespace VMs' event scripts.
func (l *Lab) consoleLease(name string) (Lease, bool, error) {
	out, err := l.Console(name)
	if err != nil {
		return Lease{}, false, nil
	}
	i := strings.LastIndex(out, "novanet-lease: ")
	if i < 0 {
		return Lease{}, true, nil
	}
	rec, _, _ := strings.Cut(out[i+len("novanet-lease: "):], "\n")
	lease, err := parseLease([]byte(rec))
	if lease.Address == "none" {
		lease.Address = ""
	}
	return lease, true, err
}

// qemuImageFor checks the specs that ask for QEMU and returns the guest
// image they boot (zero when none does), before anything is allocated.
func (l *Lab) qemuImageFor(specs []VMSpec) (GuestImage, error) {
	want := false
	for _, sp := range specs {
		if !sp.QEMU {
			continue
		}
		want = true
		if sp.Client != "" {
			return GuestImage{}, fmt.Errorf("VM %s: --qemu and --dhcp-client do not go together: the guest runs its own udhcpc", sp.Name)
		}
		if sp.UserData != "" || sp.KeyData != "" {
			return GuestImage{}, fmt.Errorf("VM %s: the QEMU guest has no metadata client; boot it without user data and keys", sp.Name)
		}
	}
	if !want {
		return GuestImage{}, nil
	}
	img, err := CheckQEMU()
	if err != nil {
		return GuestImage{}, err
	}
	l.printf("lab %s: QEMU guest: kernel %s, initramfs %s", l.Name, img.Kernel, img.Initramfs)
	return img, nil
}

// GuestExec runs a shell command line inside a QEMU guest over its
// command channel (the second serial port) and returns its output (stdout
// and stderr together) and exit status.
func (l *Lab) GuestExec(ctx context.Context, name, command string, timeout time.Duration) (string, int, error) {
	i := slices.IndexFunc(l.st.VMs, func(v VM) bool { return v.Name == name })
	if i < 0 || l.st.VMs[i].Client != QEMUClient {
		return "", 0, fmt.Errorf("no QEMU guest %s in lab %s", name, l.Name)
	}
	if strings.ContainsAny(command, "\n\r") {
		return "", 0, errors.New("the guest's command channel takes one line: join the command with ; or &&")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", l.path("vms", name, "cmd.sock"))
	if err != nil {
		return "", 0, fmt.Errorf("command channel of %s: %w", name, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	id := token()[:12]
	if _, err := fmt.Fprintf(conn, "%s %s\n", id, command); err != nil {
		return "", 0, err
	}
	done := "novanet-done " + id + " "
	var out strings.Builder
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if rest, ok := strings.CutPrefix(line, done); ok {
			rc, _ := strconv.Atoi(strings.TrimSpace(rest))
			return out.String(), rc, nil
		}
		out.WriteString(line)
		if err != nil {
			return out.String(), 0, fmt.Errorf("%s: no answer from the guest within %s (is it booted? see `novanet lab console --name %s %s`): %w", name, timeout, l.Name, name, err)
		}
	}
}

// IsQEMUGuest reports whether name is a VM of this lab booted with --qemu.
func (l *Lab) IsQEMUGuest(name string) bool {
	return slices.ContainsFunc(l.st.VMs, func(v VM) bool { return v.Name == name && v.Client == QEMUClient })
}
