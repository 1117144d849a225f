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
	mac, err := net.ParseMAC(vm.MAC)
	if err != nil {
		return err
	}
	guest, err := createNS(l.vmNS(vm.Name))
	if err != nil {
		return err
	}
	defer guest.Close()
	host, err := openNS(l.hostNS(vm.Host))
	if err != nil {
		return fmt.Errorf("host namespace of %s: %w", vm.Host, err)
	}
	defer host.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "eth0"
	attrs.HardwareAddr = mac
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: vm.Device, PeerNamespace: netlink.NsFd(host.ns)}
	if err := guest.h.LinkAdd(veth); err != nil {
		return fmt.Errorf("plug %s: %w", vm.Name, err)
	}
	for _, dev := range []string{"lo", "eth0"} {
		if err := guest.setUp(dev); err != nil {
			return err
		}
	}
	if err := host.setUp(vm.Device); err != nil {
		return err
	}
	return l.waitTapBridged(vm, host)
}

// waitTapBridged waits for the agent to put the tap on the bridge: a
// hypervisor starts the guest once its VIF is plugged.
func (l *Lab) waitTapBridged(vm VM, host *nsLinks) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if lk, err := host.h.LinkByName(vm.Device); err == nil && lk.Attrs().MasterIndex != 0 {
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

// buildTopology makes the lab's namespaces and wires them with netlink: a
// switch namespace with the mgmt and vmnet bridges, each host's eth1 and
// eth2 on them, and the outside host on the controller's eth0.
func (l *Lab) buildTopology(o Options) error {
	l.printf("lab %s: creating namespaces", l.Name)
	nss, err := l.createNamespaces()
	defer func() {
		for _, n := range nss {
			n.Close()
		}
	}()
	if err != nil {
		return err
	}
	sw := nss[l.switchNS()]
	if err := createSwitch(sw); err != nil {
		return err
	}
	l.printf("lab %s: wiring eth1 (management 192.168.56.0/24) and eth2 (VM network) of each host", l.Name)
	for _, h := range Hosts {
		if err := wireHost(sw, nss[l.hostNS(h)], h); err != nil {
			return err
		}
	}
	l.printf("lab %s: outside host %s behind the controller's eth0 (%s)", l.Name, OutsideIP, publicIP)
	ctl := nss[l.hostNS("controller")]
	if err := wireOutside(ctl, nss[l.hostNS("outside")]); err != nil {
		return err
	}
	if o.MultiHost {
		return l.routeComputesViaController(nss)
	}
	return nil
}

// createNamespaces creates every host namespace with its loopback up and
// returns them by name, the ones made so far on error too.
func (l *Lab) createNamespaces() (map[string]*nsLinks, error) {
	nss := map[string]*nsLinks{}
	for _, name := range l.allHostNS() {
		n, err := createNS(name)
		if err != nil {
			return nss, err
		}
		nss[name] = n
		if err := n.setUp("lo"); err != nil {
			return nss, err
		}
	}
	return nss, nil
}

// createSwitch makes the two L2 segments every host plugs into.
func createSwitch(sw *nsLinks) error {
	for _, br := range []string{"mgmt", "vmnet"} {
		if err := sw.addBridge(br); err != nil {
			return err
		}
	}
	return nil
}

// wireHost plugs host h's eth1 into mgmt and its eth2 into vmnet (switch
// ports <tag>-eth1 and <tag>-eth2), and gives eth1 the host's management
// address.
func wireHost(sw, host *nsLinks, h string) error {
	tag := hostTag[h]
	for _, p := range []struct{ dev, port, br string }{{"eth1", tag + "-eth1", "mgmt"}, {"eth2", tag + "-eth2", "vmnet"}} {
		if err := sw.addVeth(p.port, host, p.dev); err != nil {
			return err
		}
		if err := sw.enslave(p.port, p.br); err != nil {
			return err
		}
		if err := host.setUp(p.dev); err != nil {
			return err
		}
	}
	return host.addAddr("eth1", hostIP[h]+"/24")
}

// wireOutside joins the controller's eth0 (publicIP) and the outside
// host's eth0 (OutsideIP) with one veth pair.
func wireOutside(ctl, out *nsLinks) error {
	if err := ctl.addVeth("eth0", out, "eth0"); err != nil {
		return err
	}
	for _, end := range []struct {
		n    *nsLinks
		addr string
	}{{ctl, publicIP}, {out, OutsideIP}} {
		if err := end.n.addAddr("eth0", end.addr+"/24"); err != nil {
			return err
		}
		if err := end.n.setUp("eth0"); err != nil {
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
func (l *Lab) routeComputesViaController(nss map[string]*nsLinks) error {
	for _, h := range Hosts[1:] {
		if err := nss[l.hostNS(h)].addRoute("default", hostIP["controller"], ""); err != nil {
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
