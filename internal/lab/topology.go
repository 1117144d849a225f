package lab

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// In runs a command inside a namespace and returns its combined output.
func In(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("in %s: %s: %v: %s", ns, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func nsExists(name string) bool {
	_, err := os.Stat("/run/netns/" + name)
	return err == nil
}

// plug plays the hypervisor: a veth pair whose VM end is eth0 in the VM's
// namespace with the allocated MAC, and whose host end is the tap, made
// with netlink directly in both namespaces (no process per step).
func (l *Lab) plug(vm VM) error {
	name := l.vmNS(vm.Name)
	vmNS, err := newNamedNS(name)
	if err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	defer vmNS.Close()
	hostNS, err := netns.GetFromName(l.hostNS(vm.Host))
	if err != nil {
		return fmt.Errorf("host namespace of %s: %w", vm.Host, err)
	}
	defer hostNS.Close()
	hv, err := netlink.NewHandleAt(vmNS)
	if err != nil {
		return err
	}
	defer hv.Close()
	hh, err := netlink.NewHandleAt(hostNS)
	if err != nil {
		return err
	}
	defer hh.Close()
	mac, err := net.ParseMAC(vm.MAC)
	if err != nil {
		return err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "eth0"
	attrs.HardwareAddr = mac
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: vm.Device, PeerNamespace: netlink.NsFd(hostNS)}
	if err := hv.LinkAdd(veth); err != nil {
		return fmt.Errorf("plug %s: %w", vm.Name, err)
	}
	for _, dev := range []string{"lo", "eth0"} {
		lk, err := hv.LinkByName(dev)
		if err != nil {
			return err
		}
		if err := hv.LinkSetUp(lk); err != nil {
			return err
		}
	}
	tap, err := hh.LinkByName(vm.Device)
	if err != nil {
		return err
	}
	if err := hh.LinkSetUp(tap); err != nil {
		return err
	}
	// A hypervisor starts the guest once its VIF is plugged; here that
	// means once the agent has put the tap on the bridge.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if lk, err := hh.LinkByName(vm.Device); err == nil && lk.Attrs().MasterIndex != 0 {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("the agent on %s did not attach %s to the bridge within 10s: see %s", vm.Host, vm.Device, l.path(vm.Host, "agent.log"))
}

// newNamedNS creates a named namespace (as `ip netns add`) without leaving
// the calling thread in it.
func newNamedNS(name string) (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{0, err}
			return
		}
		defer orig.Close()
		h, err := netns.NewNamed(name)
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{h, err}
	}()
	r := <-ch
	return r.h, r.err
}

// killNamespace kills what runs in ns and deletes it (the veth pair and
// so the tap on the host go with it).
func killNamespace(ns string) {
	if !nsExists(ns) {
		return
	}
	if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
		for _, p := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	_ = run("ip", "netns", "del", ns)
}

// buildTopology makes the lab's namespaces and wires them: a switch
// namespace with the mgmt and vmnet bridges, each host's eth1 and eth2 on
// them, and the outside host on the controller's eth0.
func (l *Lab) buildTopology(o Options) error {
	l.printf("lab %s: creating namespaces", l.Name)
	if err := l.createNamespaces(); err != nil {
		return err
	}
	if err := l.createSwitch(); err != nil {
		return err
	}
	l.printf("lab %s: wiring eth1 (management 192.168.56.0/24) and eth2 (VM network) of each host", l.Name)
	for _, h := range Hosts {
		if err := l.wireHost(h); err != nil {
			return err
		}
	}
	l.printf("lab %s: outside host %s behind the controller's eth0 (%s)", l.Name, OutsideIP, publicIP)
	if err := l.wireOutside(); err != nil {
		return err
	}
	if o.MultiHost {
		return l.routeComputesViaController()
	}
	return nil
}

func (l *Lab) createNamespaces() error {
	for _, ns := range l.allHostNS() {
		if err := run("ip", "netns", "add", ns); err != nil {
			return err
		}
		if _, err := In(ns, "ip", "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	return nil
}

// createSwitch makes the two L2 segments every host plugs into.
func (l *Lab) createSwitch() error {
	sw := l.switchNS()
	for _, br := range []string{"mgmt", "vmnet"} {
		if _, err := In(sw, "ip", "link", "add", br, "type", "bridge"); err != nil {
			return err
		}
		if _, err := In(sw, "ip", "link", "set", br, "up"); err != nil {
			return err
		}
	}
	return nil
}

// wireHost plugs host h's eth1 into mgmt and its eth2 into vmnet, and
// gives eth1 the host's management address.
func (l *Lab) wireHost(h string) error {
	sw, ns, tag := l.switchNS(), l.hostNS(h), hostTag[h]
	for _, p := range []struct{ dev, peer, br string }{{"eth1", tag + "-eth1", "mgmt"}, {"eth2", tag + "-eth2", "vmnet"}} {
		if _, err := In(sw, "ip", "link", "add", p.peer, "type", "veth", "peer", "name", p.dev, "netns", ns); err != nil {
			return err
		}
		if _, err := In(sw, "ip", "link", "set", p.peer, "master", p.br, "up"); err != nil {
			return err
		}
		if _, err := In(ns, "ip", "link", "set", p.dev, "up"); err != nil {
			return err
		}
	}
	_, err := In(ns, "ip", "addr", "add", hostIP[h]+"/24", "dev", "eth1")
	return err
}

// wireOutside joins the controller's eth0 (publicIP) and the outside
// host's eth0 (OutsideIP) with one veth pair.
func (l *Lab) wireOutside() error {
	ctl, out := l.hostNS("controller"), l.hostNS("outside")
	if _, err := In(ctl, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", out); err != nil {
		return err
	}
	for _, c := range [][]string{
		{ctl, "ip", "addr", "add", publicIP + "/24", "dev", "eth0"},
		{ctl, "ip", "link", "set", "eth0", "up"},
		{out, "ip", "addr", "add", OutsideIP + "/24", "dev", "eth0"},
		{out, "ip", "link", "set", "eth0", "up"},
	} {
		if _, err := In(c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// routeComputesViaController: in a multi-host lab, compute hosts NAT
// their own VMs to their management address and route out through the
// controller, which plays the site's upstream router for the management
// network (the lab's rule, in the lab's namespace; novanet's chains are
// nova-* only).
func (l *Lab) routeComputesViaController() error {
	for _, h := range Hosts[1:] {
		if _, err := In(l.hostNS(h), "ip", "route", "add", "default", "via", hostIP["controller"]); err != nil {
			return err
		}
	}
	ctl := l.hostNS("controller")
	for _, c := range [][]string{
		{"sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"},
		{"iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "192.168.56.0/24", "-o", "eth0", "-j", "MASQUERADE"},
	} {
		if _, err := In(ctl, c...); err != nil {
			return err
		}
	}
	return nil
}
