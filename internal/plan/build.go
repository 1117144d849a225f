package plan

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"novanet/internal/model"
)

// Wrapped-chain prefixes, as nova's IptablesManager named them after the
// binary that owned them. novanet keeps the names operators know from
// nova: one agent plays every role the host has.
const (
	roleNetwork = "nova-network" // gateway, DHCP, NAT
	roleCompute = "nova-compute" // local instances
	roleAPI     = "nova-api"     // metadata API
	filterTop   = "nova-filter-top"
	postBottom  = "nova-postrouting-bottom"
	// MetadataAddress is where guests look for the metadata service.
	MetadataAddress = "169.254.169.254"
)

// Default values of options the planner needs.
const (
	DefaultMetadataPort  = model.DefaultMetadataPort
	DefaultLeaseTime     = model.DefaultDHCPLeaseTime
	DefaultDomain        = model.DefaultDHCPDomain
	DefaultNetworksPath  = "/var/lib/novanet/networks"
	DefaultDHCPBridgeBin = "/usr/local/bin/novanet-dhcpbridge"
)

// Build turns a host's desired state into its plan. It is pure and
// deterministic: the same input gives the same plan, byte for byte.
func Build(st model.HostState, o Options) (Plan, error) {
	if o.Host == "" {
		o.Host = st.Host
	}
	if o.MetadataPort == 0 {
		o.MetadataPort = DefaultMetadataPort
	}
	if o.NetworksPath == "" {
		o.NetworksPath = DefaultNetworksPath
	}
	if o.DHCPBridge == "" {
		o.DHCPBridge = DefaultDHCPBridgeBin
	}
	if !o.MetadataHost.IsValid() {
		o.MetadataHost = o.RoutingSourceIP
	}
	p := Plan{Host: st.Host, Revision: st.Revision}

	var nets []model.HostNetwork
	for _, hn := range st.Networks {
		switch hn.Network.Kind {
		case model.KindFlat, model.KindFlatDHCP:
			nets = append(nets, hn)
		default:
			p.Warnings = append(p.Warnings, fmt.Sprintf("network %q (%s) is a %s network, which this agent does not plan yet; it is left alone",
				hn.Network.Label, hn.Network.CIDR, hn.Network.Kind))
		}
	}
	sort.SliceStable(nets, func(i, j int) bool { return nets[i].Network.ID < nets[j].Network.ID })

	for _, hn := range nets {
		if hn.Network.Bridge == "" {
			return Plan{}, fmt.Errorf("network %q has no bridge; set one with network create --bridge", hn.Network.Label)
		}
		if hn.NAT && !o.RoutingSourceIP.IsValid() {
			return Plan{}, fmt.Errorf("host %s NATs network %q but has no routing_source_ip: set routing_source_ip or my_ip in its configuration", o.Host, hn.Network.Label)
		}
	}

	p.Bridges = planBridges(nets, o)
	dm, err := planDnsmasq(nets, st.Options, o)
	if err != nil {
		return Plan{}, err
	}
	p.Dnsmasq = dm
	p.Releases = planReleases(nets)
	p.Firewall = planFirewall(nets, st.Options, o)
	planFloating(&p, st.FloatingIPs, nets, o)
	if hasRole(nets, isNetworkHost) {
		p.Sysctls = append(p.Sysctls, Sysctl{Key: "net.ipv4.ip_forward", Value: "1"})
	}
	if len(p.Bridges) > 0 {
		// Bridged traffic must pass through iptables (br_netfilter): the
		// FORWARD accepts above and the instance firewall act on it.
		p.Sysctls = append(p.Sysctls, Sysctl{Key: "net.bridge.bridge-nf-call-iptables", Value: brNetfilter(nets)})
	}
	addInstanceFirewall(&p, nets, st.SecurityGroups, st.Options)
	return p, nil
}

// isNetworkHost: this host is a gateway, DHCP server or NAT for hn.
func isNetworkHost(hn model.HostNetwork) bool {
	return hn.ServesDHCP || hn.NAT || hn.BridgeAddress.IsValid()
}

func hasInstances(hn model.HostNetwork) bool { return len(hn.Instances) > 0 }

func hasRole(nets []model.HostNetwork, f func(model.HostNetwork) bool) bool {
	return slices.ContainsFunc(nets, f)
}

func planBridges(nets []model.HostNetwork, o Options) []Bridge {
	var out []Bridge
	index := map[string]int{}
	for _, hn := range nets {
		n := hn.Network
		i, ok := index[n.Bridge]
		if !ok {
			iface := n.BridgeInterface
			if iface == "" {
				iface = o.FlatInterface
			}
			out = append(out, Bridge{Name: n.Bridge, Interface: iface, MTU: n.MTU, Addresses: []netip.Prefix{}, Ports: []Port{}})
			i = len(out) - 1
			index[n.Bridge] = i
		}
		b := &out[i]
		if hn.BridgeAddress.IsValid() {
			a := netip.PrefixFrom(hn.BridgeAddress, n.CIDR.Bits())
			if !slices.Contains(b.Addresses, a) {
				b.Addresses = append(b.Addresses, a)
			}
		}
		b.Ports = slices.Grow(b.Ports, len(hn.Instances))
		for _, in := range hn.Instances {
			if in.Device == "" {
				continue
			}
			b.Ports = append(b.Ports, Port{Device: in.Device, MAC: in.MAC, Address: in.Address, InstanceUUID: in.UUID})
		}
	}
	byDevice := func(a, b Port) int { return strings.Compare(a.Device, b.Device) }
	for i := range out {
		if !slices.IsSortedFunc(out[i].Ports, byDevice) {
			slices.SortFunc(out[i].Ports, byDevice)
		}
	}
	return out
}

var safeTag = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// dhcpTag is the dnsmasq tag of a network: its label as nova did when the
// label is a plain word, else a name derived from its id.
func dhcpTag(n model.Network) string {
	if safeTag.MatchString(n.Label) {
		return n.Label
	}
	return "net" + strconv.FormatInt(n.ID, 10)
}

// planDnsmasq plans one dnsmasq per bridge that serves DHCP here, with a
// dhcp-range, listen address and router option per network on it.
func planDnsmasq(nets []model.HostNetwork, co model.ClusterOptions, o Options) ([]Dnsmasq, error) {
	lease := co.DHCPLeaseTime
	if lease <= 0 {
		lease = DefaultLeaseTime
	}
	domain := co.DHCPDomain
	if domain == "" {
		domain = DefaultDomain
	}
	type group struct {
		bridge string
		nets   []model.HostNetwork
	}
	var groups []*group
	byBridge := map[string]*group{}
	for _, hn := range nets {
		if !hn.ServesDHCP || hn.Network.Kind != model.KindFlatDHCP {
			continue
		}
		if !hn.BridgeAddress.IsValid() {
			return nil, fmt.Errorf("host serves DHCP for network %q but has no address on %s; the server must give the host a gateway address", hn.Network.Label, hn.Network.Bridge)
		}
		g := byBridge[hn.Network.Bridge]
		if g == nil {
			g = &group{bridge: hn.Network.Bridge}
			byBridge[g.bridge] = g
			groups = append(groups, g)
		}
		g.nets = append(g.nets, hn)
	}
	var out []Dnsmasq
	for _, g := range groups {
		name := "nova-" + g.bridge
		d := Dnsmasq{
			Name:          name,
			Bridge:        g.bridge,
			ListenAddress: g.nets[0].BridgeAddress,
			PidFile:       filepath.Join(o.NetworksPath, name+".pid"),
			HostsDir:      filepath.Join(o.NetworksPath, name+".hosts.d"),
			LogFile:       filepath.Join(o.NetworksPath, name+".log"),
			Hosts:         []HostEntry{},
		}
		args := []string{
			"--strict-order",
			"--bind-interfaces",
			"--conf-file=" + o.DnsmasqConfigFile,
			"--pid-file=" + d.PidFile,
			"--log-facility=" + d.LogFile,
		}
		for _, hn := range g.nets {
			args = append(args, "--listen-address="+hn.BridgeAddress.String())
		}
		args = append(args, "--except-interface=lo")
		leaseMax := 0
		for _, hn := range g.nets {
			n := hn.Network
			start := n.DHCPStart
			if !start.IsValid() {
				start = hn.BridgeAddress.Next()
			}
			args = append(args, fmt.Sprintf("--dhcp-range=set:%s,%s,static,%s,%ds", dhcpTag(n), start, n.Netmask(), lease))
			leaseMax += 1 << (32 - n.CIDR.Bits())
		}
		args = append(args,
			"--dhcp-lease-max="+strconv.Itoa(leaseMax),
			"--dhcp-hostsdir="+d.HostsDir,
			"--dhcp-script="+o.DHCPBridge,
			"--leasefile-ro",
			"--domain="+domain,
		)
		for _, hn := range g.nets {
			n := hn.Network
			tag := dhcpTag(n)
			// The router is the serving host's own bridge address: the
			// network host in single-host mode, this host in multi-host.
			args = append(args, fmt.Sprintf("--dhcp-option=tag:%s,option:router,%s", tag, hn.BridgeAddress))
			// Without dns1/dns2 (flat_network_dns fills dns1 when the
			// network is created) guests use dnsmasq on the bridge.
			var dns []string
			for _, a := range []netip.Addr{n.DNS1, n.DNS2} {
				if a.IsValid() {
					dns = append(dns, a.String())
				}
			}
			if len(dns) > 0 {
				args = append(args, fmt.Sprintf("--dhcp-option=tag:%s,option:dns-server,%s", tag, strings.Join(dns, ",")))
			}
			if n.MTU > 0 {
				// Guests must match the bridge's MTU or large packets
				// vanish (nova's network_device_mtu).
				args = append(args, fmt.Sprintf("--dhcp-option=tag:%s,option:mtu,%d", tag, n.MTU))
			}
			if len(d.Hosts) == 0 {
				d.Hosts = make([]HostEntry, 0, len(hn.DHCPHosts))
			}
			// Entries follow the network order, then address order: the
			// server sends hosts sorted by address, so this usually costs
			// one pass, and the plan stays the same whatever the input
			// order. (Sorting by file name instead cost 1 ms at 5,000.)
			hosts := hn.DHCPHosts
			if !slices.IsSortedFunc(hosts, compareDHCPHost) {
				hosts = slices.Clone(hosts)
				slices.SortFunc(hosts, compareDHCPHost)
			}
			for _, h := range hosts {
				d.Hosts = append(d.Hosts, hostEntry(h, domain))
			}
		}
		d.Args = args
		out = append(out, d)
	}
	return out, nil
}

func compareDHCPHost(a, b model.DHCPHost) int {
	if c := a.Address.Compare(b.Address); c != 0 {
		return c
	}
	return strings.Compare(a.MAC, b.MAC)
}

// hostEntry is one dnsmasq static host, "<mac>,<name>.<domain>,<ip>",
// in a file named after the MAC ("fa-16-3e-..."). It runs once per
// instance on every sync, so the file name and the line are cut from one
// string built in one buffer.
func hostEntry(h model.DHCPHost, domain string) HostEntry {
	mac := h.MAC
	if strings.ContainsAny(mac, "ABCDEF") {
		mac = strings.ToLower(mac)
	}
	name := dnsLabel(h.Hostname, h.Address)
	buf := make([]byte, 0, 2*len(mac)+len(name)+len(domain)+18)
	buf = append(buf, mac...)
	for i := range len(mac) {
		if buf[i] == ':' {
			buf[i] = '-'
		}
	}
	buf = append(buf, mac...)
	buf = append(buf, ',')
	buf = append(buf, name...)
	buf = append(buf, '.')
	buf = append(buf, domain...)
	buf = append(buf, ',')
	buf = h.Address.AppendTo(buf)
	all := string(buf)
	return HostEntry{FileName: all[:len(mac)], Line: all[len(mac):]}
}

// isDNSLabel reports whether s is already what dnsLabel would return.
func isDNSLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// dnsLabel makes a hostname dnsmasq accepts: lower case letters, digits
// and inner dashes, at most 63 bytes; an empty result falls back to a
// name derived from the address (nova's "host-10-0-0-3" style).
func dnsLabel(name string, addr netip.Addr) string {
	if isDNSLabel(name) {
		return name
	}
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-' || r == '_' || r == '.' || r == ' ':
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	if s == "" {
		s = "host-" + strings.ReplaceAll(addr.String(), ".", "-")
	}
	return s
}

func planReleases(nets []model.HostNetwork) []Release {
	var out []Release
	for _, hn := range nets {
		if !hn.ServesDHCP || !hn.BridgeAddress.IsValid() {
			continue
		}
		for _, r := range hn.Releases {
			out = append(out, Release{Bridge: hn.Network.Bridge, Server: hn.BridgeAddress, MAC: strings.ToLower(r.MAC), Address: r.Address})
		}
	}
	return out
}

// wrapped is one role's set of wrapped chains.
type wrapped struct {
	role   string
	filter map[string][]Rule // INPUT, FORWARD, OUTPUT, local
	nat    map[string][]Rule // PREROUTING, OUTPUT, POSTROUTING, snat, float-snat
}

var (
	filterWrapped = []string{"INPUT", "FORWARD", "OUTPUT", "local"}
	natWrapped    = []string{"PREROUTING", "OUTPUT", "POSTROUTING", "snat", "float-snat"}
)

func newWrapped(role string) *wrapped {
	return &wrapped{role: role, filter: map[string][]Rule{}, nat: map[string][]Rule{}}
}

func accept() Target { return Target{Verdict: Accept} }

func jumpTo(chain string) Target { return Target{Verdict: Goto, Chain: chain} }

// planFirewall lays the rules out in nova's wrapped-chain layout.
func planFirewall(nets []model.HostNetwork, co model.ClusterOptions, o Options) Firewall {
	var roles []*wrapped

	if hasRole(nets, isNetworkHost) {
		w := newWrapped(roleNetwork)
		seen := map[string]bool{}
		for _, hn := range nets {
			if !isNetworkHost(hn) || seen[hn.Network.Bridge] {
				continue
			}
			seen[hn.Network.Bridge] = true
			br := hn.Network.Bridge
			w.filter["FORWARD"] = append(w.filter["FORWARD"],
				Rule{InInterface: br, Target: accept()},
				Rule{OutInterface: br, Target: accept()})
		}
		seen = map[string]bool{}
		for _, hn := range nets {
			if !hn.ServesDHCP || hn.Network.Kind != model.KindFlatDHCP || seen[hn.Network.Bridge] {
				continue
			}
			seen[hn.Network.Bridge] = true
			for _, port := range []uint16{67, 53} {
				for _, proto := range []string{"udp", "tcp"} {
					w.filter["INPUT"] = append(w.filter["INPUT"], Rule{InInterface: hn.Network.Bridge, Protocol: proto, DstPorts: PortRange{From: port}, Target: accept()})
				}
			}
		}
		if hasRole(nets, func(hn model.HostNetwork) bool { return hn.NAT }) {
			ranges := slices.Clone(co.FixedRanges)
			if len(ranges) == 0 {
				for _, hn := range nets {
					if hn.NAT && !slices.Contains(ranges, hn.Network.CIDR) {
						ranges = append(ranges, hn.Network.CIDR)
					}
				}
			}
			meta := netip.MustParseAddr(MetadataAddress)
			w.nat["PREROUTING"] = append(w.nat["PREROUTING"], Rule{
				Destination: hostPrefix(meta), Protocol: "tcp", DstPorts: PortRange{From: 80},
				Target: Target{Verdict: DNAT, ToAddr: o.MetadataHost, ToPort: uint16(o.MetadataPort)},
			})
			for _, r := range ranges {
				w.nat["POSTROUTING"] = append(w.nat["POSTROUTING"], Rule{Source: r, Destination: hostPrefix(o.MetadataHost), Target: accept()})
				for _, dmz := range o.DMZCIDRs {
					w.nat["POSTROUTING"] = append(w.nat["POSTROUTING"], Rule{Source: r, Destination: dmz, Target: accept()})
				}
				w.nat["POSTROUTING"] = append(w.nat["POSTROUTING"], Rule{Source: r, Destination: r, CTState: []string{"DNAT"}, CTStateNegate: true, Target: accept()})
				w.nat["snat"] = append(w.nat["snat"], Rule{Source: r, OutInterface: o.PublicInterface, Target: Target{Verdict: SNAT, ToAddr: o.RoutingSourceIP}})
			}
		}
		roles = append(roles, w)
	}

	if hasRole(nets, hasInstances) {
		w := newWrapped(roleCompute)
		seen := map[string]bool{}
		for _, hn := range nets {
			if !hasInstances(hn) || seen[hn.Network.Bridge] {
				continue
			}
			seen[hn.Network.Bridge] = true
			w.filter["FORWARD"] = append(w.filter["FORWARD"],
				Rule{InInterface: hn.Network.Bridge, Target: accept()},
				Rule{OutInterface: hn.Network.Bridge, Target: accept()})
		}
		roles = append(roles, w)
	}

	if o.MetadataAPI && o.MetadataHost.IsValid() {
		w := newWrapped(roleAPI)
		w.filter["INPUT"] = append(w.filter["INPUT"], Rule{
			Destination: hostPrefix(o.MetadataHost), Protocol: "tcp", DstPorts: PortRange{From: uint16(o.MetadataPort)}, Target: accept(),
		})
		roles = append(roles, w)
	}

	if len(roles) == 0 {
		return Firewall{Tables: []Table{}}
	}

	filter := Table{Name: "filter"}
	nat := Table{Name: "nat"}
	var top, bottom []Rule
	for _, w := range roles {
		for _, c := range filterWrapped {
			filter.Chains = append(filter.Chains, Chain{Name: w.role + "-" + c, Rules: nonNil(w.filter[c])})
		}
		top = append(top, Rule{Target: jumpTo(w.role + "-local")})
		snat := append([]Rule{{Target: jumpTo(w.role + "-float-snat")}}, w.nat["snat"]...)
		w.nat["snat"] = snat
		for _, c := range natWrapped {
			nat.Chains = append(nat.Chains, Chain{Name: w.role + "-" + c, Rules: nonNil(w.nat[c])})
		}
		bottom = append(bottom, Rule{Target: jumpTo(w.role + "-snat")})
	}
	filter.Chains = append(filter.Chains, Chain{Name: filterTop, Rules: top})
	nat.Chains = append(nat.Chains, Chain{Name: postBottom, Rules: bottom})

	// Jumps, in the order nova's listing shows them: the shared top chain
	// first in FORWARD and OUTPUT, each role's wrapped chain after it, and
	// the shared bottom chain last in POSTROUTING.
	filter.Jumps = append(filter.Jumps, jumps("INPUT", roles)...)
	filter.Jumps = append(filter.Jumps, Jump{From: "FORWARD", To: filterTop})
	filter.Jumps = append(filter.Jumps, jumps("FORWARD", roles)...)
	filter.Jumps = append(filter.Jumps, Jump{From: "OUTPUT", To: filterTop})
	filter.Jumps = append(filter.Jumps, jumps("OUTPUT", roles)...)
	nat.Jumps = append(nat.Jumps, jumps("PREROUTING", roles)...)
	nat.Jumps = append(nat.Jumps, jumps("OUTPUT", roles)...)
	nat.Jumps = append(nat.Jumps, jumps("POSTROUTING", roles)...)
	nat.Jumps = append(nat.Jumps, Jump{From: "POSTROUTING", To: postBottom})
	return Firewall{Tables: []Table{filter, nat}}
}

func jumps(builtin string, roles []*wrapped) []Jump {
	out := make([]Jump, 0, len(roles))
	for _, w := range roles {
		out = append(out, Jump{From: builtin, To: w.role + "-" + builtin})
	}
	return out
}

func nonNil(r []Rule) []Rule {
	if r == nil {
		return []Rule{}
	}
	return r
}
