// Package agenttest holds in-memory appliers for the agent's Links,
// Firewall, DHCP and floating address interfaces, for tests that need no
// root. Each keeps what it was last asked to hold, as the real applier's
// contract promises the kernel will (Apply takes the full desired state),
// and prints it as stable text; Render prints a plan the same way, so a
// test compares the fakes' state with the state a plan asks for.
package agenttest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"novanet/internal/plan"
)

// Links holds bridges, sysctls (the agent's Links interface).
type Links struct {
	mu      sync.Mutex // protects the following
	bridges []plan.Bridge
	sysctls map[string]string
	applies int
}

// NewLinks returns a host with no bridges and no sysctls set.
func NewLinks() *Links { return &Links{sysctls: map[string]string{}} }

// ApplyBridges holds exactly bridges.
func (l *Links) ApplyBridges(_ context.Context, bridges []plan.Bridge, _ bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bridges = clone(bridges)
	l.applies++
	return nil
}

// ApplySysctls writes each sysctl. Like /proc/sys, a key the plan no
// longer names keeps its value: nothing unsets a sysctl.
func (l *Links) ApplySysctls(_ context.Context, sysctls []plan.Sysctl) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range sysctls {
		l.sysctls[s.Key] = s.Value
	}
	return nil
}

// Sysctls returns the sysctl values set so far.
func (l *Links) Sysctls() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]string, len(l.sysctls))
	for k, v := range l.sysctls {
		out[k] = v
	}
	return out
}

func (l *Links) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return RenderBridges(l.bridges)
}

// RenderBridges prints bridges, their uplinks, addresses and ports,
// sorted.
func RenderBridges(bridges []plan.Bridge) string {
	var b strings.Builder
	sorted := slices.Clone(bridges)
	slices.SortFunc(sorted, func(x, y plan.Bridge) int { return strings.Compare(x.Name, y.Name) })
	for _, br := range sorted {
		fmt.Fprintf(&b, "bridge %s", br.Name)
		if br.Interface != "" {
			fmt.Fprintf(&b, " uplink %s", br.Interface)
		}
		if br.VLAN != 0 {
			fmt.Fprintf(&b, " vlan %d on %s", br.VLAN, br.VLANParent)
		}
		if br.MTU != 0 {
			fmt.Fprintf(&b, " mtu %d", br.MTU)
		}
		b.WriteString("\n")
		addrs := slices.Clone(br.Addresses)
		slices.SortFunc(addrs, netip.Prefix.Compare)
		for _, a := range addrs {
			fmt.Fprintf(&b, "  address %s\n", a)
		}
		ports := slices.Clone(br.Ports)
		slices.SortFunc(ports, func(x, y plan.Port) int { return strings.Compare(x.Device, y.Device) })
		for _, p := range ports {
			fmt.Fprintf(&b, "  port %s mac %s address %s instance %s\n", p.Device, p.MAC, p.Address, p.InstanceUUID)
		}
	}
	return b.String()
}

// RenderSysctls prints sysctls sorted by key.
func RenderSysctls(sysctls map[string]string) string {
	keys := make([]string, 0, len(sysctls))
	for k := range sysctls {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "sysctl %s = %s\n", k, sysctls[k])
	}
	return b.String()
}

// Firewall holds the rule model (the agent's Firewall interface).
type Firewall struct {
	mu sync.Mutex // protects fw
	fw plan.Firewall
}

// Apply holds exactly fw.
func (f *Firewall) Apply(_ context.Context, fw plan.Firewall, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fw = clone(fw)
	return nil
}

func (f *Firewall) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return RenderFirewall(f.fw)
}

// RenderFirewall prints each table as `iptables -t <table> -S` lists
// novanet's part of it, then the address sets and the L2 guard.
func RenderFirewall(fw plan.Firewall) string {
	var b strings.Builder
	tables := slices.Clone(fw.Tables)
	slices.SortFunc(tables, func(x, y plan.Table) int { return strings.Compare(x.Name, y.Name) })
	for _, t := range tables {
		b.WriteString("*" + t.Name + "\n")
		for _, line := range t.Listing() {
			b.WriteString(line + "\n")
		}
	}
	sets := slices.Clone(fw.Sets)
	slices.SortFunc(sets, func(x, y plan.AddrSet) int { return strings.Compare(x.Name, y.Name) })
	for _, s := range sets {
		members := slices.Clone(s.Members)
		slices.SortFunc(members, netip.Addr.Compare)
		fmt.Fprintf(&b, "ipset %s:", s.Name)
		for _, m := range members {
			b.WriteString(" " + m.String())
		}
		b.WriteString("\n")
	}
	if !fw.Guard.IsZero() {
		for _, line := range fw.Guard.Listing() {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// Release is one DHCPRELEASE the fake DHCP was asked to send.
type Release struct {
	Bridge  string
	Server  netip.Addr
	MAC     string
	Address netip.Addr
}

// DHCP runs dnsmasq instances in memory (the agent's DHCP interface):
// an instance left out of a plan is stopped; its host entries are the
// files of its hosts directory.
type DHCP struct {
	mu        sync.Mutex // protects the following
	instances map[string]plan.Dnsmasq
	released  []Release
}

// NewDHCP returns a host running no dnsmasq.
func NewDHCP() *DHCP { return &DHCP{instances: map[string]plan.Dnsmasq{}} }

// Apply runs exactly instances.
func (d *DHCP) Apply(_ context.Context, instances []plan.Dnsmasq) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	next := make(map[string]plan.Dnsmasq, len(instances))
	for _, in := range instances {
		if _, dup := next[in.Name]; dup {
			return fmt.Errorf("dnsmasq %s planned twice", in.Name)
		}
		next[in.Name] = clone(in)
	}
	d.instances = next
	return nil
}

// Release records a DHCPRELEASE sent to the bridge's dnsmasq.
func (d *DHCP) Release(_ context.Context, bridge string, server netip.Addr, mac string, addr netip.Addr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.released = append(d.released, Release{Bridge: bridge, Server: server, MAC: mac, Address: addr})
	return nil
}

// Released returns every release sent so far, in order.
func (d *DHCP) Released() []Release {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.released)
}

func (d *DHCP) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	ins := make([]plan.Dnsmasq, 0, len(d.instances))
	for _, in := range d.instances {
		ins = append(ins, in)
	}
	return RenderDHCP(ins)
}

// RenderDHCP prints each dnsmasq, its command line and its host entries,
// sorted by name and file.
func RenderDHCP(instances []plan.Dnsmasq) string {
	var b strings.Builder
	sorted := slices.Clone(instances)
	slices.SortFunc(sorted, func(x, y plan.Dnsmasq) int { return strings.Compare(x.Name, y.Name) })
	for _, in := range sorted {
		fmt.Fprintf(&b, "dnsmasq %s bridge %s listen %s\n", in.Name, in.Bridge, in.ListenAddress)
		fmt.Fprintf(&b, "  argv %s\n", strings.Join(in.Args, " "))
		hosts := slices.Clone(in.Hosts)
		slices.SortFunc(hosts, func(x, y plan.HostEntry) int { return strings.Compare(x.FileName, y.FileName) })
		for _, h := range hosts {
			fmt.Fprintf(&b, "  host %s: %s\n", h.FileName, h.Line)
		}
	}
	return b.String()
}

// FloatingAddrs holds the floating /32s (the agent's FloatingAddrs
// interface).
type FloatingAddrs struct {
	mu     sync.Mutex // protects floats
	floats []plan.FloatingAddr
}

// Apply holds exactly floats.
func (f *FloatingAddrs) Apply(_ context.Context, floats []plan.FloatingAddr, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.floats = clone(floats)
	return nil
}

func (f *FloatingAddrs) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return RenderFloating(f.floats)
}

// RenderFloating prints the floating addresses sorted by address.
func RenderFloating(floats []plan.FloatingAddr) string {
	sorted := slices.Clone(floats)
	slices.SortFunc(sorted, func(x, y plan.FloatingAddr) int { return x.Address.Addr().Compare(y.Address.Addr()) })
	var b strings.Builder
	for _, f := range sorted {
		fmt.Fprintf(&b, "floating %s on %s -> %s", f.Address, f.Interface, f.Fixed)
		if f.Port != "" {
			fmt.Fprintf(&b, " hairpin %s", f.Port)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Host is one host's set of fakes.
type Host struct {
	Links    *Links
	Firewall *Firewall
	DHCP     *DHCP
	Floating *FloatingAddrs
}

// NewHost returns a host with nothing applied.
func NewHost() *Host {
	return &Host{Links: NewLinks(), Firewall: &Firewall{}, DHCP: NewDHCP(), Floating: &FloatingAddrs{}}
}

// String prints everything the host holds except sysctls (which outlive
// the plans that set them; see Links.Sysctls).
func (h *Host) String() string {
	return section("links", h.Links.String()) + section("floating", h.Floating.String()) +
		section("firewall", h.Firewall.String()) + section("dhcp", h.DHCP.String())
}

// Render prints what p asks a host to hold, as Host.String prints it.
func Render(p plan.Plan) string {
	return section("links", RenderBridges(p.Bridges)) + section("floating", RenderFloating(p.FloatingAddrs)) +
		section("firewall", RenderFirewall(p.Firewall)) + section("dhcp", RenderDHCP(p.Dnsmasq))
}

func section(name, body string) string { return "== " + name + "\n" + body }

// clone deep-copies v, so a fake never shares memory with the plan the
// caller still holds.
func clone[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("agenttest: copying %T: %v", v, err))
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("agenttest: copying %T: %v", v, err))
	}
	return out
}
