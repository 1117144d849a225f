// Package lab builds the seed topology in network namespaces: a
// controller and two compute nodes (eth1 on a management network, eth2 on
// the VM network), an outside host on a documentation range behind the
// controller's public interface, and VMs as namespaces whose veth peer is
// the tap on their compute node. `novanet serve` and one `novanet agent`
// per host run inside their namespaces, exactly as on real machines.
//
// Every name derives from the lab's name, and `down` removes exactly what
// `up` and `boot` made, by name. Nothing touches the root namespace.
package lab

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"novanet/internal/model"
)

// Hosts of the topology and their management addresses.
var (
	Hosts    = []string{"controller", "compute-1", "compute-2"}
	hostIP   = map[string]string{"controller": "192.168.56.200", "compute-1": "192.168.56.201", "compute-2": "192.168.56.202"}
	hostTag  = map[string]string{"controller": "ctl", "compute-1": "c1", "compute-2": "c2", "outside": "out"}
	apiAddr  = "192.168.56.200:8774"
	publicIP = "203.0.113.1"
	// OutsideIP is the outside host's address.
	OutsideIP = "203.0.113.254"
)

// RootDir holds every lab's state directory.
var RootDir = "/run/novanet-lab"

var validName = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)

// Options shape a lab at `up`.
type Options struct {
	MultiHost           bool   `json:"multi_host"`
	ForceDHCPRelease    bool   `json:"force_dhcp_release"`
	DisassociateTimeout int    `json:"disassociate_timeout"` // seconds
	ResyncInterval      string `json:"resync_interval"`      // e.g. "60s"
	DHCPClient          string `json:"dhcp_client"`          // udhcpc or dhclient
	// FixedRange is the VM network (default 10.0.0.0/24; the bridge
	// addresses and router follow it).
	FixedRange string `json:"fixed_range"`
	// AllowSameNetTraffic is nova's allow_same_net_traffic; nil keeps
	// its default (true).
	AllowSameNetTraffic *bool `json:"allow_same_net_traffic,omitempty"`
	// FirewallDriver is the agents' firewall_driver (iptables when empty).
	FirewallDriver string `json:"firewall_driver,omitempty"`
}

// DefaultOptions are the lab's defaults.
func DefaultOptions() Options {
	return Options{ForceDHCPRelease: true, DisassociateTimeout: 600, ResyncInterval: "10s", DHCPClient: "udhcpc"}
}

// VM is one booted VM.
type VM struct {
	Name      string `json:"name"`
	UUID      string `json:"uuid"`
	Host      string `json:"host"`
	MAC       string `json:"mac"`
	Device    string `json:"device"`
	Address   string `json:"address"`
	Client    string `json:"client"`
	ClientPID int    `json:"client_pid"`
}

// Lab is one named lab.
type Lab struct {
	Name string
	Dir  string
	Out  io.Writer // progress lines
	st   State
	// loadErr is why Open could not read the state.
	loadErr error
}

// Open returns the lab with this name (up or not).
func Open(name string, out io.Writer) (*Lab, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("lab name %q: use 1-8 lower-case letters or digits, starting with a letter", name)
	}
	if out == nil {
		out = io.Discard
	}
	l := &Lab{Name: name, Dir: filepath.Join(RootDir, name), Out: out}
	// An unreadable state is reported by every call but Down, which
	// removes the lab by name regardless.
	l.loadErr = l.load()
	return l, nil
}

// Namespace returns the namespace of a host ("controller", "compute-1",
// "compute-2", "outside") or VM.
func (l *Lab) Namespace(target string) (string, error) {
	if t, ok := hostTag[target]; ok {
		ns := l.Name + "-" + t
		if !nsExists(ns) {
			return "", fmt.Errorf("lab %s is not up (no namespace %s): run `novanet lab up --name %s`", l.Name, ns, l.Name)
		}
		return ns, nil
	}
	for _, vm := range l.st.VMs {
		if vm.Name == target && vm.Client == QEMUClient {
			return "", fmt.Errorf("VM %s is a QEMU guest with no namespace of its own: run commands in it with `novanet lab exec --name %s %s -- COMMAND`", vm.Name, l.Name, vm.Name)
		}
		if vm.Name == target {
			return l.vmNS(vm.Name), nil
		}
	}
	return "", fmt.Errorf("no host or VM named %q in lab %s (hosts: controller, compute-1, compute-2, outside)", target, l.Name)
}

func (l *Lab) switchNS() string       { return l.Name + "-sw" }
func (l *Lab) hostNS(h string) string { return l.Name + "-" + hostTag[h] }
func (l *Lab) vmNS(vm string) string  { return l.Name + "-vm-" + vm }
func (l *Lab) allHostNS() []string {
	return []string{l.switchNS(), l.hostNS("controller"), l.hostNS("compute-1"), l.hostNS("compute-2"), l.hostNS("outside")}
}
func (l *Lab) path(parts ...string) string {
	return filepath.Join(append([]string{l.Dir}, parts...)...)
}

// IsUp reports whether the lab has state on disk.
func (l *Lab) IsUp() bool {
	_, err := os.Stat(l.path("lab.json"))
	return err == nil
}

// State returns what the lab holds.
func (l *Lab) State() State { return l.st }

func (l *Lab) printf(format string, args ...any) { fmt.Fprintf(l.Out, format+"\n", args...) }

// Up builds the topology and starts serve and the agents. bin is the
// novanet binary to run inside the namespaces.
func (l *Lab) Up(ctx context.Context, bin string, o Options) error {
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root (network namespaces); run it with sudo")
	}
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return l.up(ctx, bin, o)
}

func (l *Lab) up(ctx context.Context, bin string, o Options) (err error) {
	if o.DHCPClient == "" {
		o.DHCPClient = "udhcpc"
	}
	fixed, err := l.preflight(o)
	if err != nil {
		return err
	}
	if err := l.createState(bin, o); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			l.printf("up failed: %v; tearing down what was made", err)
			_ = l.down()
		}
	}()
	if err := l.buildTopology(o); err != nil {
		return err
	}
	if err := l.writeConfigs(o); err != nil {
		return err
	}
	l.printf("lab %s: starting novanet serve on %s (SQLite in %s)", l.Name, apiAddr, l.path("controller"))
	if err := l.startDaemon("serve", "controller", "serve"); err != nil {
		return err
	}
	if err := l.waitAPI(ctx); err != nil {
		return err
	}
	if err := l.createNetwork(ctx, o, fixed); err != nil {
		return err
	}
	if err := l.setupFloating(ctx, o); err != nil {
		return err
	}
	for _, h := range Hosts {
		l.printf("lab %s: starting novanet agent on %s", l.Name, h)
		if err := l.startDaemon("agent-"+h, h, "agent"); err != nil {
			return err
		}
	}
	if !o.MultiHost {
		if err := l.waitGateway(ctx, fixed); err != nil {
			return err
		}
	}
	l.printf("lab %s: up; boot VMs with `novanet lab boot NAME --host compute-1`", l.Name)
	return nil
}

// preflight refuses a lab that cannot come up before anything is made:
// missing tools, a bad option, or a lab or namespace of this name that
// exists already. It returns the VM network.
func (l *Lab) preflight(o Options) (netip.Prefix, error) {
	for _, tool := range []string{"ip", "dnsmasq", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			return netip.Prefix{}, fmt.Errorf("the lab needs %s: run scripts/install-deps.sh", tool)
		}
	}
	if err := checkClient(o.DHCPClient); err != nil {
		return netip.Prefix{}, err
	}
	fixed, err := parseFixedRange(o)
	if err != nil {
		return netip.Prefix{}, err
	}
	if l.IsUp() {
		return netip.Prefix{}, fmt.Errorf("lab %s is already up; run `novanet lab down --name %s` first (or use another --name)", l.Name, l.Name)
	}
	for _, ns := range l.allHostNS() {
		if nsExists(ns) {
			return netip.Prefix{}, fmt.Errorf("network namespace %s already exists (left over from lab %s?); run `novanet lab down --name %s`", ns, l.Name, l.Name)
		}
	}
	return fixed, nil
}

// defaultFixedRange is the VM network when Options.FixedRange is empty.
const defaultFixedRange = "10.0.0.0/24"

func parseFixedRange(o Options) (netip.Prefix, error) {
	s := cmp.Or(o.FixedRange, defaultFixedRange)
	fixed, err := netip.ParsePrefix(s)
	if err != nil || !fixed.Addr().Is4() || fixed.Bits() > 29 {
		return netip.Prefix{}, fmt.Errorf("fixed range %q: give an IPv4 CIDR of /29 or larger, such as 10.0.0.0/24", s)
	}
	return fixed, nil
}

// createState makes the lab directory and its first lab.json, so that a
// failure from here on is torn down by name.
func (l *Lab) createState(bin string, o Options) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", l.Dir, err)
	}
	// dnsmasq drops to nobody and must reach each host's networks_path.
	if err := os.Chmod(l.Dir, 0o755); err != nil {
		return err
	}
	l.st = State{Name: l.Name, Binary: bin, Options: o, AdminToken: token(), ProjectToken: token(), PIDs: map[string]int{}}
	return l.save()
}

// createNetwork creates the lab's one FlatDHCP network, br100 on eth2,
// hosted by the controller unless the lab is multi-host.
func (l *Lab) createNetwork(ctx context.Context, o Options, fixed netip.Prefix) error {
	cidr := cmp.Or(o.FixedRange, defaultFixedRange)
	req := model.NetworkCreateRequest{Label: "private", Kind: model.KindFlatDHCP, FixedRangeV4: cidr,
		NetworkSize: 1 << (32 - fixed.Bits()), Bridge: "br100", BridgeInterface: "eth2", MultiHost: new(o.MultiHost)}
	if !o.MultiHost {
		req.Host = "controller"
	}
	if _, err := l.Client().CreateNetworks(ctx, req); err != nil {
		return fmt.Errorf("network create: %w", err)
	}
	mode := "single-host (controller is gateway, DHCP and NAT)"
	if o.MultiHost {
		mode = "multi-host (every compute is its VMs' gateway, DHCP and NAT)"
	}
	l.printf("lab %s: network private %s on br100, %s", l.Name, cidr, mode)
	return nil
}

// waitGateway waits for the controller's agent to put the network's
// first address on br100, which a single-host lab's VMs route through.
func (l *Lab) waitGateway(ctx context.Context, fixed netip.Prefix) error {
	gw := netip.PrefixFrom(fixed.Addr().Next(), fixed.Bits())
	ctl, err := openNS(l.hostNS("controller"))
	if err != nil {
		return err
	}
	defer ctl.Close()
	if err := waitUntil(ctx, 10*time.Second, func() bool { return ctl.hasAddr("br100", gw) }); err != nil {
		return fmt.Errorf("the controller agent did not put %s on br100: see %s", gw, l.path("controller", "agent.log"))
	}
	return nil
}

// Down removes everything up and boot made, by name. It is safe to run
// twice and on a half-built lab.
func (l *Lab) Down(ctx context.Context) error {
	unlock, err := l.lockDir()
	if err != nil {
		return err
	}
	defer unlock()
	if err := l.load(); err != nil {
		// Unreadable state: still remove everything named after the lab.
		l.printf("%v; removing the lab's namespaces and directory by name", err)
	}
	return l.down()
}

func (l *Lab) down() error {
	for _, vm := range l.st.VMs {
		l.unplug(vm)
	}
	// Leftover VM namespaces of this lab that the state lost.
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), l.Name+"-vm-") {
				killNamespace(e.Name())
			}
		}
	}
	for key, pid := range l.st.PIDs {
		killOurs(pid, l.daemonMark(key))
		delete(l.st.PIDs, key)
	}
	for _, ns := range l.allHostNS() {
		killNamespace(ns) // dnsmasq and anything else left inside
	}
	if err := os.RemoveAll(l.Dir); err != nil {
		return fmt.Errorf("remove %s: %w", l.Dir, err)
	}
	l.st = State{}
	l.printf("lab %s: down", l.Name)
	return nil
}

// Addr returns a parsed address or the zero Addr.
func Addr(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}
