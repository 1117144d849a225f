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
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"novanet/internal/client"
	"novanet/internal/model"
	"novanet/internal/netnsdo"
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

// State is what `up` and `boot` made, persisted in the lab directory.
type State struct {
	Name       string         `json:"name"`
	Binary     string         `json:"binary"`
	Options    Options        `json:"options"`
	AdminToken string         `json:"admin_token"`
	PIDs       map[string]int `json:"pids"` // "serve", "agent-<host>"
	VMs        []VM           `json:"vms"`

	// ProjectToken acts in ProjectID, the VMs' project.
	ProjectToken string `json:"project_token"`
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

// load reads the lab's state from disk (empty when the lab is down).
func (l *Lab) load() error {
	l.st = State{}
	b, err := os.ReadFile(l.path("lab.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = json.Unmarshal(b, &l.st)
	}
	if err != nil {
		return fmt.Errorf("lab %s: unreadable %s: %w; run `novanet lab down --name %s`", l.Name, l.path("lab.json"), err, l.Name)
	}
	return nil
}

// lockDir serializes the labs' state changes across processes (`novanet
// lab boot a & novanet lab boot b`). It flocks RootDir itself, so nothing
// is left behind by down.
func (l *Lab) lockDir() (unlock func(), err error) {
	if err := os.MkdirAll(RootDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", RootDir, err)
	}
	f, err := os.Open(RootDir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", RootDir, err)
	}
	return func() { f.Close() }, nil // closing the descriptor drops the lock
}

// lock takes lockDir and reloads the state under it.
func (l *Lab) lock() (unlock func(), err error) {
	if unlock, err = l.lockDir(); err != nil {
		return nil, err
	}
	if err := l.load(); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
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

func (l *Lab) save() error {
	b, err := json.MarshalIndent(l.st, "", "  ")
	if err != nil {
		return err
	}
	tmp := l.path("lab.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, l.path("lab.json"))
}

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

func token() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

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
	for _, tool := range []string{"ip", "dnsmasq", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the lab needs %s: run scripts/install-deps.sh", tool)
		}
	}
	if o.DHCPClient == "" {
		o.DHCPClient = "udhcpc"
	}
	if err := checkClient(o.DHCPClient); err != nil {
		return err
	}
	if l.IsUp() {
		return fmt.Errorf("lab %s is already up; run `novanet lab down --name %s` first (or use another --name)", l.Name, l.Name)
	}
	for _, ns := range l.allHostNS() {
		if nsExists(ns) {
			return fmt.Errorf("network namespace %s already exists (left over from lab %s?); run `novanet lab down --name %s`", ns, l.Name, l.Name)
		}
	}
	if bin, err = filepath.Abs(bin); err != nil {
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
	if err := l.save(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			l.printf("up failed: %v; tearing down what was made", err)
			_ = l.down()
		}
	}()

	l.printf("lab %s: creating namespaces", l.Name)
	for _, ns := range l.allHostNS() {
		if err := run("ip", "netns", "add", ns); err != nil {
			return err
		}
		if _, err := In(ns, "ip", "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	sw := l.switchNS()
	for _, br := range []string{"mgmt", "vmnet"} {
		if _, err := In(sw, "ip", "link", "add", br, "type", "bridge"); err != nil {
			return err
		}
		if _, err := In(sw, "ip", "link", "set", br, "up"); err != nil {
			return err
		}
	}
	l.printf("lab %s: wiring eth1 (management 192.168.56.0/24) and eth2 (VM network) of each host", l.Name)
	for _, h := range Hosts {
		ns, tag := l.hostNS(h), hostTag[h]
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
		if _, err := In(ns, "ip", "addr", "add", hostIP[h]+"/24", "dev", "eth1"); err != nil {
			return err
		}
	}
	l.printf("lab %s: outside host %s behind the controller's eth0 (%s)", l.Name, OutsideIP, publicIP)
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
	if o.MultiHost {
		// Compute hosts NAT their own VMs to their management address and
		// route out through the controller, which plays the site's
		// upstream router for the management network (the lab's rule, in
		// the lab's namespace; novanet's chains are nova-* only).
		for _, h := range Hosts[1:] {
			if _, err := In(l.hostNS(h), "ip", "route", "add", "default", "via", hostIP["controller"]); err != nil {
				return err
			}
		}
		for _, c := range [][]string{
			{"sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"},
			{"iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "192.168.56.0/24", "-o", "eth0", "-j", "MASQUERADE"},
		} {
			if _, err := In(ctl, c...); err != nil {
				return err
			}
		}
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
	if o.FixedRange == "" {
		o.FixedRange = "10.0.0.0/24"
	}
	fixed, err := netip.ParsePrefix(o.FixedRange)
	if err != nil || !fixed.Addr().Is4() || fixed.Bits() > 29 {
		return fmt.Errorf("fixed range %q: give an IPv4 CIDR of /29 or larger, such as 10.0.0.0/24", o.FixedRange)
	}
	req := model.NetworkCreateRequest{Label: "private", Kind: model.KindFlatDHCP, FixedRangeV4: o.FixedRange,
		NetworkSize: 1 << (32 - fixed.Bits()), Bridge: "br100", BridgeInterface: "eth2", MultiHost: o.MultiHost}
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
	l.printf("lab %s: network private %s on br100, %s", l.Name, o.FixedRange, mode)
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
		gw := netip.PrefixFrom(fixed.Addr().Next(), fixed.Bits()).String()
		if err := waitUntil(ctx, 10*time.Second, func() bool {
			out, _ := In(ctl, "ip", "-4", "addr", "show", "br100")
			return strings.Contains(out, gw)
		}); err != nil {
			return fmt.Errorf("the controller agent did not put %s on br100: see %s", gw, l.path("controller", "agent.log"))
		}
	}
	l.printf("lab %s: up; boot VMs with `novanet lab boot NAME --host compute-1`", l.Name)
	return nil
}

func checkClient(c string) error {
	switch c {
	case "udhcpc":
		if _, err := exec.LookPath("busybox"); err != nil {
			return errors.New("udhcpc needs busybox: run scripts/install-deps.sh")
		}
	case "dhclient":
		if _, err := exec.LookPath("dhclient"); err != nil {
			return errors.New("dhclient needs isc-dhcp-client: run scripts/install-deps.sh")
		}
	default:
		return fmt.Errorf("unknown DHCP client %q: use udhcpc or dhclient", c)
	}
	return nil
}

func (l *Lab) writeConfigs(o Options) error {
	var tokens strings.Builder
	fmt.Fprintf(&tokens, "%s admin\n", l.st.AdminToken)
	fmt.Fprintf(&tokens, "%s project %s\n", l.st.ProjectToken, ProjectID)
	agentTokens := map[string]string{}
	for _, h := range Hosts {
		agentTokens[h] = token()
		fmt.Fprintf(&tokens, "%s agent %s\n", agentTokens[h], h)
	}
	if err := os.WriteFile(l.path("tokens"), []byte(tokens.String()), 0o600); err != nil {
		return err
	}
	for _, h := range Hosts {
		dir := l.path(h)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		public, routing := "eth1", hostIP[h]
		if h == "controller" {
			public, routing = "eth0", publicIP
		}
		metadata := hostIP["controller"]
		if o.MultiHost {
			metadata = hostIP[h]
		}
		conf := fmt.Sprintf(`[DEFAULT]
host = %s
my_ip = %s
state_path = %s
flat_interface = eth2
public_interface = %s
routing_source_ip = %s
metadata_host = %s
network_host = controller
multi_host = %t
force_dhcp_release = %t
fixed_ip_disassociate_timeout = %d
dhcp_lease_time = 120
send_arp_for_ha = true
allow_same_net_traffic = %t

[novanet]
listen = %s
database = sqlite://%s/novanet.db
tokens_file = %s
api_url = http://%s
auth_token = %s
agent_socket = %s/agent.sock
resync_interval = %s
firewall_driver = %s
`, h, hostIP[h], dir, public, routing, metadata, o.MultiHost, o.ForceDHCPRelease, o.DisassociateTimeout,
			o.AllowSameNetTraffic == nil || *o.AllowSameNetTraffic,
			apiAddr, dir, l.path("tokens"), apiAddr, agentTokens[h], dir, o.ResyncInterval, cmp.Or(o.FirewallDriver, "iptables"))
		if err := os.WriteFile(filepath.Join(dir, "novanet.conf"), []byte(conf), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// startDaemon runs `novanet --config-file <host conf> <cmd>` inside the
// host's namespace, detached, logging to <host>/<cmd>.log.
func (l *Lab) startDaemon(key, host, cmd string) error {
	logf, err := os.OpenFile(l.path(host, cmd+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	c := exec.Command("ip", "netns", "exec", l.hostNS(host), l.st.Binary, "--config-file", l.path(host, "novanet.conf"), cmd)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return fmt.Errorf("start %s on %s: %w", cmd, host, err)
	}
	go func() { _ = c.Wait() }() // reap if it exits while we run
	l.st.PIDs[key] = c.Process.Pid
	return l.save()
}

// StopDaemon stops serve ("serve") or an agent ("agent-compute-1").
func (l *Lab) StopDaemon(key string) error {
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	pid, ok := l.st.PIDs[key]
	if !ok {
		return fmt.Errorf("no %s in lab %s", key, l.Name)
	}
	killOurs(pid, l.daemonMark(key))
	delete(l.st.PIDs, key)
	return l.save()
}

// StartDaemon starts serve or an agent again after StopDaemon.
func (l *Lab) StartDaemon(key string) error {
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if !l.IsUp() {
		return fmt.Errorf("lab %s is not up: run `novanet lab up` first", l.Name)
	}
	if _, ok := l.st.PIDs[key]; ok {
		return fmt.Errorf("%s of lab %s is already started", key, l.Name)
	}
	if key == "serve" {
		return l.startDaemon("serve", "controller", "serve")
	}
	h, ok := strings.CutPrefix(key, "agent-")
	if !ok || !slices.Contains(Hosts, h) {
		return fmt.Errorf("unknown daemon %q: use serve or agent-<host>", key)
	}
	return l.startDaemon(key, h, "agent")
}

// daemonMark is what the command line of serve or an agent of this lab
// holds and no other process's does: its config file's path.
func (l *Lab) daemonMark(key string) string {
	if key == "serve" {
		return l.path("controller", "novanet.conf")
	}
	return l.path(strings.TrimPrefix(key, "agent-"), "novanet.conf")
}

// clientMark is the same for a VM's DHCP client: its script's directory.
func (l *Lab) clientMark(vm string) string { return l.path("vms", vm) + "/" }

// alive reports whether pid runs and its command line contains mark.
func alive(pid int, mark string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && strings.Contains(string(b), mark)
}

// killOurs kills pid if its command line contains mark (a recycled pid of
// another program is left alone) and waits for it.
func killOurs(pid int, mark string) {
	if !alive(pid, mark) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	// A zombie has an empty command line: it has exited even when its
	// reaper (init, once the CLI that started it is gone) takes its time.
	for i := 0; i < 100; i++ {
		if !alive(pid, mark) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func waitUntil(ctx context.Context, d time.Duration, f func() bool) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("timed out")
}

// Client is an admin API client that reaches serve inside the
// controller's namespace.
func (l *Lab) Client() *client.Client {
	return l.clientWithToken(l.st.AdminToken)
}

func (l *Lab) clientWithToken(tok string) *client.Client {
	ns := l.hostNS("controller")
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialIn(ctx, ns, network, addr)
		},
		DisableKeepAlives: true,
	}
	return client.New("http://"+apiAddr, tok).WithHTTPClient(&http.Client{Transport: tr, Timeout: 90 * time.Second})
}

// dialIn opens a connection from inside a namespace: the socket keeps the
// namespace it was created in.
func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := netnsdo.Do(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil && !nsExists(ns) {
		return nil, fmt.Errorf("lab namespace %s is gone; is the lab up? (%w)", ns, err)
	}
	return c, err
}

func (l *Lab) waitAPI(ctx context.Context) error {
	c := l.Client()
	err := waitUntil(ctx, 15*time.Second, func() bool {
		_, err := c.ListNetworks(ctx)
		return err == nil
	})
	if err != nil {
		return fmt.Errorf("novanet serve did not answer on %s: see %s", apiAddr, l.path("controller", "serve.log"))
	}
	return nil
}

// Boot allocates an instance on host through the API and plugs a VM
// namespace into it, then runs the DHCP client and waits for its lease.
func (l *Lab) Boot(ctx context.Context, name, host string) (VM, error) {
	vms, err := l.BootMany(ctx, []VMSpec{{Name: name, Host: host}}, 20*time.Second)
	if len(vms) == 0 {
		return VM{}, err
	}
	return vms[0], err
}

// VMSpec names a VM to boot, its host and optionally its DHCP client
// (udhcpc or dhclient; the lab's default when empty) and what the
// metadata service hands it: user data and an SSH public key.
type VMSpec struct {
	Name, Host, Client         string
	UserData, KeyName, KeyData string
	// QEMU boots a real guest under QEMU instead of a namespace (qemu.go).
	QEMU bool
}

// BootMany boots VMs at once (API boots in parallel, plugs, DHCP clients)
// and waits up to wait for all their leases.
func (l *Lab) BootMany(ctx context.Context, specs []VMSpec, wait time.Duration) ([]VM, error) {
	if !l.IsUp() { // before the lock, which needs root
		return nil, fmt.Errorf("lab %s is not up: run `novanet lab up` first", l.Name)
	}
	unlock, err := l.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !l.IsUp() {
		return nil, fmt.Errorf("lab %s is not up: run `novanet lab up` first", l.Name)
	}
	seen := map[string]bool{}
	for _, vm := range l.st.VMs {
		seen[vm.Name] = true
	}
	for _, sp := range specs {
		if !validName.MatchString(sp.Name) {
			return nil, fmt.Errorf("VM name %q: use 1-8 lower-case letters or digits, starting with a letter", sp.Name)
		}
		if sp.Host != "compute-1" && sp.Host != "compute-2" && sp.Host != "controller" {
			return nil, fmt.Errorf("host %q: use compute-1, compute-2 or controller", sp.Host)
		}
		if sp.Client != "" {
			if err := checkClient(sp.Client); err != nil {
				return nil, err
			}
		}
		if seen[sp.Name] {
			return nil, fmt.Errorf("VM %s already exists in lab %s", sp.Name, l.Name)
		}
		seen[sp.Name] = true
	}
	img, err := l.qemuImageFor(specs)
	if err != nil {
		return nil, err
	}
	vms := make([]VM, len(specs))
	errs := make([]error, len(specs))
	c := l.Client()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, sp := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			d, err := c.BootInstance(ctx, model.BootRequest{Hostname: sp.Name, Host: sp.Host, ProjectID: "demo",
				UserData: sp.UserData, KeyName: sp.KeyName, KeyData: sp.KeyData})
			if err != nil {
				errs[i] = fmt.Errorf("boot %s: %w", sp.Name, err)
				return
			}
			if len(d.VIFs) == 0 || len(d.FixedIPs) == 0 {
				errs[i] = fmt.Errorf("boot %s: the API returned no VIF or fixed IP", sp.Name)
				return
			}
			vm := VM{Name: sp.Name, UUID: d.UUID, Host: sp.Host, MAC: d.VIFs[0].MAC, Device: d.VIFs[0].Device,
				Address: d.FixedIPs[0].Address.String(), Client: cmp.Or(sp.Client, l.st.Options.DHCPClient, "udhcpc")}
			if sp.QEMU {
				vm.Client = QEMUClient
				vm.ClientPID, errs[i] = l.startQEMU(vm, img)
				vms[i] = vm
				return
			}
			if err := l.plug(vm); err != nil {
				errs[i] = err
				vms[i] = vm
				return
			}
			vm.ClientPID, errs[i] = l.startDHCPClient(vm)
			vms[i] = vm
		}()
	}
	wg.Wait()
	var booted []VM
	for _, vm := range vms {
		if vm.UUID != "" {
			booted = append(booted, vm)
			l.st.VMs = append(l.st.VMs, vm)
			l.printf("lab %s: %s on %s: allocated %s, MAC %s, tap %s", l.Name, vm.Name, vm.Host, vm.Address, vm.MAC, vm.Device)
		}
	}
	if err := l.save(); err != nil {
		return booted, err
	}
	if err := errors.Join(errs...); err != nil {
		return booted, err
	}
	deadline := time.Now().Add(wait)
	for _, vm := range booted {
		lease, err := l.WaitLease(ctx, vm.Name, time.Until(deadline))
		if err != nil {
			return booted, err
		}
		if len(booted) <= 5 {
			l.printf("lab %s: %s leased %s, router %s, dns %s", l.Name, vm.Name, lease.Address, lease.Router, lease.DNS)
		}
	}
	if len(booted) > 5 {
		l.printf("lab %s: %d VMs leased", l.Name, len(booted))
	}
	return booted, nil
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

// The event scripts get the lease file's path baked in: dhclient runs its
// script with a scrubbed environment.
const udhcpcScript = `#!/bin/sh
# busybox udhcpc event script for a lab VM: configure eth0 and record the
# lease for novanet lab status.
LEASE_FILE='%s'
case "$1" in
deconfig) ip -4 addr flush dev "$interface"; rm -f "$LEASE_FILE" ;;
bound|renew)
	# A renewal of the same address keeps it, as a guest's dhclient-script
	# does: flushing would drop the default route and lose packets.
	if ! ip -4 -o addr show dev "$interface" | grep -q " $ip/$mask "; then
		ip -4 addr flush dev "$interface"
		ip addr add "$ip/$mask" dev "$interface"
	fi
	[ -n "$router" ] && ip route replace default via "${router%%%% *}" dev "$interface"
	echo "$ip ${router%%%% *} ${dns%%%% *} $1 $(date +%%s) $serverid" > "$LEASE_FILE.tmp" && mv "$LEASE_FILE.tmp" "$LEASE_FILE"
	;;
esac
exit 0
`

const dhclientScript = `#!/bin/sh
# dhclient script for a lab VM (instead of dhclient-script, which would
# rewrite the host's /etc/resolv.conf).
LEASE_FILE='%s'
case "$reason" in
BOUND|RENEW|REBIND|REBOOT)
	ip -4 addr flush dev "$interface"
	ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
	r="${new_routers%%%% *}"
	[ -n "$r" ] && ip route replace default via "$r" dev "$interface"
	echo "$new_ip_address $r ${new_domain_name_servers%%%% *} $reason $(date +%%s) $new_dhcp_server_identifier" > "$LEASE_FILE.tmp" && mv "$LEASE_FILE.tmp" "$LEASE_FILE"
	;;
EXPIRE|FAIL|RELEASE|STOP) ip -4 addr flush dev "$interface"; rm -f "$LEASE_FILE" ;;
esac
exit 0
`

const dhclientConf = `initial-interval 1;
backoff-cutoff 2;
timeout 60;
retry 1;
send host-name "%s";
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, host-name, interface-mtu;
`

func (l *Lab) startDHCPClient(vm VM) (int, error) {
	dir := l.path("vms", vm.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	leaseFile := filepath.Join(dir, "lease")
	var args []string
	switch vm.Client {
	case "dhclient":
		script := filepath.Join(dir, "dhclient.sh")
		if err := os.WriteFile(script, fmt.Appendf(nil, dhclientScript, leaseFile), 0o755); err != nil {
			return 0, err
		}
		// Its own config: dhclient's default back-off waits 7-15 s after a
		// DISCOVER that dnsmasq ignored because the agent had not yet
		// written the host entry; udhcpc retries every second.
		conf := filepath.Join(dir, "dhclient.conf")
		if err := os.WriteFile(conf, fmt.Appendf(nil, dhclientConf, vm.Name), 0o644); err != nil {
			return 0, err
		}
		args = []string{"dhclient", "-d", "-4", "-cf", conf, "-sf", script, "-lf", filepath.Join(dir, "dhclient.leases"),
			"-pf", filepath.Join(dir, "dhclient.pid"), "eth0"}
	default:
		script := filepath.Join(dir, "udhcpc.sh")
		if err := os.WriteFile(script, fmt.Appendf(nil, udhcpcScript, leaseFile), 0o755); err != nil {
			return 0, err
		}
		// -f: stay in the foreground (we keep its pid); it renews at T1.
		args = []string{"busybox", "udhcpc", "-f", "-i", "eth0", "-s", script, "-t", "20", "-T", "1", "-A", "1", "-x", "hostname:" + vm.Name}
	}
	logf, err := os.OpenFile(filepath.Join(dir, "dhcp-client.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	c := exec.Command("ip", append([]string{"netns", "exec", l.vmNS(vm.Name)}, args...)...)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return 0, fmt.Errorf("start %s in %s: %w", vm.Client, vm.Name, err)
	}
	go func() { _ = c.Wait() }()
	return c.Process.Pid, nil
}

// Lease is what a VM's DHCP client last got. Server is the DHCP server
// identifier: the bridge address of the dnsmasq that answered.
type Lease struct {
	Address, Router, DNS, Event, Server string
	At                                  time.Time
}

// LeaseOf reads the VM's last lease ("" Address when it has none).
func (l *Lab) LeaseOf(name string) (Lease, error) {
	if lease, ok, err := l.consoleLease(name); ok {
		return lease, err
	}
	b, err := os.ReadFile(l.path("vms", name, "lease"))
	if err != nil {
		return Lease{}, err
	}
	return parseLease(b)
}

func parseLease(b []byte) (Lease, error) {
	f := strings.Fields(string(b))
	if len(f) < 5 {
		return Lease{}, fmt.Errorf("short lease record %q", b)
	}
	sec, _ := strconv.ParseInt(f[4], 10, 64)
	lease := Lease{Address: f[0], Router: f[1], DNS: f[2], Event: f[3], At: time.Unix(sec, 0)}
	if len(f) > 5 {
		lease.Server = f[5]
	}
	return lease, nil
}

// WaitLease waits for the VM to hold a lease.
func (l *Lab) WaitLease(ctx context.Context, name string, d time.Duration) (Lease, error) {
	var lease Lease
	err := waitUntil(ctx, d, func() bool {
		var err error
		lease, err = l.LeaseOf(name)
		return err == nil && lease.Address != ""
	})
	if err != nil {
		log := l.path("vms", name, "dhcp-client.log")
		if _, err := os.Stat(l.path("vms", name, "console.log")); err == nil {
			log = l.path("vms", name, "console.log") // a QEMU guest's
		}
		return Lease{}, fmt.Errorf("VM %s got no DHCP lease within %s: see %s", name, d.Round(time.Second), log)
	}
	return lease, nil
}

// Renew asks a VM's DHCP client to renew its lease now (udhcpc: SIGUSR1).
func (l *Lab) Renew(name string) error {
	for _, vm := range l.st.VMs {
		if vm.Name != name {
			continue
		}
		if vm.Client != "udhcpc" {
			return fmt.Errorf("renew is supported for udhcpc VMs only")
		}
		if !alive(vm.ClientPID, l.clientMark(vm.Name)) {
			return fmt.Errorf("the DHCP client of %s (pid %d) is not running: see %s", name, vm.ClientPID, l.path("vms", name, "dhcp-client.log"))
		}
		// ip netns exec execs busybox in place, so the pid is udhcpc's.
		return syscall.Kill(vm.ClientPID, syscall.SIGUSR1)
	}
	return fmt.Errorf("no VM %s", name)
}

// Delete deletes the instance through the API and unplugs the VM.
func (l *Lab) Delete(ctx context.Context, name string) error {
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	i := slices.IndexFunc(l.st.VMs, func(v VM) bool { return v.Name == name })
	if i < 0 {
		return fmt.Errorf("no VM %s in lab %s", name, l.Name)
	}
	vm := l.st.VMs[i]
	if err := l.Client().DeleteInstance(ctx, vm.UUID); err != nil && model.KindOf(err) != model.ErrNotFound {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	l.unplug(vm)
	l.st.VMs = slices.Delete(l.st.VMs, i, i+1)
	l.printf("lab %s: deleted %s (%s)", l.Name, name, vm.Address)
	return l.save()
}

func (l *Lab) unplug(vm VM) {
	if vm.Client == QEMUClient {
		l.stopQEMU(vm)
		_ = os.RemoveAll(l.path("vms", vm.Name))
		return
	}
	if vm.ClientPID > 0 {
		killOurs(vm.ClientPID, l.clientMark(vm.Name))
	}
	ns := l.vmNS(vm.Name)
	// Deleting the VM's end takes the tap with it at once, as a
	// hypervisor's unplug does; the namespace itself is torn down by the
	// kernel asynchronously once its last process has exited.
	if nsExists(ns) {
		_ = run("ip", "-n", ns, "link", "del", "eth0")
	}
	killNamespace(ns)
	_ = os.RemoveAll(l.path("vms", vm.Name))
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

// Status is what `novanet lab status` shows.
type Status struct {
	Name       string
	Up         bool
	Namespaces []NamespaceStatus
	Daemons    []DaemonStatus
	VMs        []VMStatus
	// APIError is set when serve did not answer (VMStatus.APILeased is
	// then unknown).
	APIError string
	// API is how to drive the lab's API (floating.go).
	API APIAccess
}

// NamespaceStatus is one namespace of the lab.
type NamespaceStatus struct {
	Name, Role string
	Exists     bool
}

// DaemonStatus is serve or an agent.
type DaemonStatus struct {
	Key     string
	PID     int
	Running bool
}

// VMStatus is a VM with its last lease as the guest saw it and the
// store's view of its address.
type VMStatus struct {
	VM
	Lease         Lease
	ClientRunning bool
	APIAllocated  bool
	APILeased     bool
	// FloatingIPs associated with the VM, from the API.
	FloatingIPs []string
}

// Status reports the lab's namespaces, daemons and VMs; the store's
// leased flag comes from the API when serve answers.
func (l *Lab) Status(ctx context.Context) (Status, error) {
	if l.loadErr != nil {
		return Status{Name: l.Name, Up: l.IsUp()}, l.loadErr
	}
	st := Status{Name: l.Name, Up: l.IsUp()}
	roles := []string{"switch", "controller", "compute-1", "compute-2", "outside"}
	for i, ns := range l.allHostNS() {
		st.Namespaces = append(st.Namespaces, NamespaceStatus{Name: ns, Role: roles[i], Exists: nsExists(ns)})
	}
	for _, vm := range l.st.VMs {
		if vm.Client == QEMUClient {
			continue
		}
		ns := l.vmNS(vm.Name)
		st.Namespaces = append(st.Namespaces, NamespaceStatus{Name: ns, Role: "vm " + vm.Name, Exists: nsExists(ns)})
	}
	if !st.Up {
		return st, nil
	}
	keys := make([]string, 0, len(l.st.PIDs))
	for k := range l.st.PIDs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		pid := l.st.PIDs[k]
		st.Daemons = append(st.Daemons, DaemonStatus{Key: k, PID: pid, Running: alive(pid, l.daemonMark(k))})
	}
	// The agents' dnsmasqs, one per bridge, from their pid files.
	for _, h := range Hosts {
		files, _ := filepath.Glob(l.path(h, "networks", "nova-*.pid"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || pid <= 0 {
				continue
			}
			bridge := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "nova-"), ".pid")
			st.Daemons = append(st.Daemons, DaemonStatus{Key: "dnsmasq-" + bridge + "-" + h, PID: pid, Running: alive(pid, f)})
		}
	}
	c := l.Client()
	for _, vm := range l.st.VMs {
		vs := VMStatus{VM: vm, ClientRunning: vm.ClientPID > 0 && alive(vm.ClientPID, l.clientMark(vm.Name))}
		vs.Lease, _ = l.LeaseOf(vm.Name)
		if st.APIError == "" {
			fi, err := c.GetFixedIP(ctx, Addr(vm.Address))
			if err != nil {
				st.APIError = err.Error()
			} else {
				vs.APIAllocated, vs.APILeased = fi.Allocated, fi.Leased
			}
		}
		st.VMs = append(st.VMs, vs)
	}
	l.floatingStatus(ctx, c, &st)
	return st, nil
}

// Addr returns a parsed address or the zero Addr.
func Addr(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}
