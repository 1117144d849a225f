package plan

import (
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"novanet/internal/model"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	a = netip.MustParseAddr
	p = netip.MustParsePrefix
)

// seedNetwork is seed 003's network: fixed_range 10.0.0.0/24 on br100,
// bridged to eth2, the controller as network host.
func seedNetwork(multi bool) model.Network {
	n := model.Network{
		ID: 1, Label: "private", Kind: model.KindFlatDHCP, CIDR: p("10.0.0.0/24"),
		Gateway: a("10.0.0.1"), Broadcast: a("10.0.0.255"), DHCPStart: a("10.0.0.2"),
		Bridge: "br100", BridgeInterface: "eth2", MultiHost: multi,
	}
	if !multi {
		n.Host = "controller-1"
	}
	return n
}

var seedOptions = model.ClusterOptions{
	DHCPDomain: "novalocal", DHCPLeaseTime: 120, FixedRanges: []netip.Prefix{p("10.0.0.0/24")},
	AllowSameNetTraffic: true,
}

func vm(uuid, name, addr, mac, dev string) model.HostInstance {
	return model.HostInstance{UUID: uuid, Hostname: name, ProjectID: "demo", Address: a(addr), MAC: mac, Device: dev}
}

func dhcpHost(in model.HostInstance) model.DHCPHost {
	return model.DHCPHost{MAC: in.MAC, Hostname: in.Hostname, Address: in.Address}
}

var (
	vm1 = withVIF(vm("0b1c5e6a-0000-4000-8000-000000000001", "cirros", "10.0.0.2", "fa:16:3e:2c:e8:ec", "tap0b1c5e6a-00"), 9)
	vm2 = withVIF(vm("0b1c5e6a-0000-4000-8000-000000000002", "vm-2", "10.0.0.3", "fa:16:3e:00:00:02", "tap0b1c5e6a-01"), 10)
	vm3 = withVIF(vm("0b1c5e6a-0000-4000-8000-000000000003", "vm-3", "10.0.0.5", "fa:16:3e:00:00:03", "tap0b1c5e6a-02"), 11)
)

func controllerOptions() Options {
	return Options{
		Host: "controller-1", FlatInterface: "eth2", PublicInterface: "eth0",
		RoutingSourceIP: a("192.168.56.200"), MetadataHost: a("192.168.56.200"), MetadataPort: 8775,
		DMZCIDRs:     []netip.Prefix{p("10.128.0.0/24")},
		NetworksPath: "/var/lib/novanet/networks", DHCPBridge: "/usr/local/bin/novanet-dhcpbridge",
		MetadataAPI: true,
	}
}

func computeOptions(host, ip string) Options {
	return Options{
		Host: host, FlatInterface: "eth2", PublicInterface: "eth0",
		RoutingSourceIP: a(ip), MetadataHost: a("192.168.56.200"),
		NetworksPath: "/var/lib/novanet/networks", DHCPBridge: "/usr/local/bin/novanet-dhcpbridge",
	}
}

// seedSingleHost: seed 003 after three VMs boot, two on compute-1 and one
// on compute-2, with the controller as gateway, DHCP server and NAT.
func seedSingleHost() map[string]struct {
	st model.HostState
	o  Options
} {
	n := seedNetwork(false)
	controller := model.HostState{Host: "controller-1", Revision: 7, Options: seedOptions, Networks: []model.HostNetwork{{
		Network: n, BridgeAddress: a("10.0.0.1"), ServesDHCP: true, NAT: true, DHCPServer: a("10.0.0.1"),
		DHCPHosts: []model.DHCPHost{dhcpHost(vm1), dhcpHost(vm2), dhcpHost(vm3)},
	}}}
	compute1 := model.HostState{Host: "compute-1", Revision: 5, Options: seedOptions, Networks: []model.HostNetwork{{
		Network: n, DHCPServer: a("10.0.0.1"), Instances: []model.HostInstance{vm1, vm2},
	}}}
	return map[string]struct {
		st model.HostState
		o  Options
	}{
		"single-controller": {controller, controllerOptions()},
		"single-compute-1":  {compute1, computeOptions("compute-1", "192.168.56.201")},
	}
}

func seedMultiHost() map[string]struct {
	st model.HostState
	o  Options
} {
	n := seedNetwork(true)
	compute1 := model.HostState{Host: "compute-1", Revision: 9, Options: seedOptions, Networks: []model.HostNetwork{{
		Network: n, BridgeAddress: a("10.0.0.4"), ServesDHCP: true, NAT: true, DHCPServer: a("10.0.0.4"),
		Instances: []model.HostInstance{vm1, vm2}, DHCPHosts: []model.DHCPHost{dhcpHost(vm1), dhcpHost(vm2)},
	}}}
	o := computeOptions("compute-1", "192.168.56.201")
	o.MetadataHost = a("192.168.56.201")
	o.MetadataAPI = true
	return map[string]struct {
		st model.HostState
		o  Options
	}{"multi-compute-1": {compute1, o}}
}

// render is the golden form of a plan: what an operator would see with
// ps, iptables -S, ls and ip addr.
func render(t *testing.T, pl Plan) string {
	t.Helper()
	var b strings.Builder
	for _, s := range pl.Sysctls {
		b.WriteString("# sysctl " + s.Key + "=" + s.Value + "\n")
	}
	for _, br := range pl.Bridges {
		b.WriteString("# bridge " + br.Name + " enslaves " + br.Interface + "\n")
		for _, ad := range br.Addresses {
			b.WriteString("#   address " + ad.String() + "\n")
		}
		for _, pt := range br.Ports {
			b.WriteString("#   port " + pt.Device + " " + pt.MAC + " " + pt.Address.String() + "\n")
		}
	}
	for _, d := range pl.Dnsmasq {
		b.WriteString("# ps: dnsmasq " + strings.Join(d.Args, " ") + "\n")
		for _, h := range d.Hosts {
			b.WriteString("# " + filepath.Join(d.HostsDir, h.FileName) + ": " + h.Line + "\n")
		}
	}
	for _, tb := range pl.Firewall.Tables {
		b.WriteString("# iptables -t " + tb.Name + " -S\n")
		for _, l := range tb.Listing() {
			b.WriteString(l + "\n")
		}
	}
	writeNFT(&b, pl.Firewall)
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/plan -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

func TestGoldenSeedTopologies(t *testing.T) {
	all := seedSingleHost()
	for k, v := range seedMultiHost() {
		all[k] = v
	}
	for name, c := range all {
		t.Run(name, func(t *testing.T) {
			pl, err := Build(c.st, c.o)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name, render(t, pl))
		})
	}
}

// The controller's listing must carry every rule seed 003 shows, with the
// addresses the seed's copy lost filled in.
func TestControllerMatchesSeedListing(t *testing.T) {
	c := seedSingleHost()["single-controller"]
	pl, err := Build(c.st, c.o)
	if err != nil {
		t.Fatal(err)
	}
	filter := strings.Join(pl.Firewall.Table("filter").Listing(), "\n")
	nat := strings.Join(pl.Firewall.Table("nat").Listing(), "\n")
	for _, want := range []string{
		"-A INPUT -j nova-network-INPUT",
		"-A INPUT -j nova-api-INPUT",
		"-A FORWARD -j nova-filter-top",
		"-A OUTPUT -j nova-filter-top",
		"-A nova-api-INPUT -d 192.168.56.200/32 -p tcp -m tcp --dport 8775 -j ACCEPT",
		"-A nova-filter-top -j nova-network-local",
		"-A nova-filter-top -j nova-api-local",
		"-A nova-network-FORWARD -i br100 -j ACCEPT",
		"-A nova-network-FORWARD -o br100 -j ACCEPT",
		"-A nova-network-INPUT -i br100 -p udp -m udp --dport 67 -j ACCEPT",
		"-A nova-network-INPUT -i br100 -p tcp -m tcp --dport 67 -j ACCEPT",
		"-A nova-network-INPUT -i br100 -p udp -m udp --dport 53 -j ACCEPT",
		"-A nova-network-INPUT -i br100 -p tcp -m tcp --dport 53 -j ACCEPT",
	} {
		if !strings.Contains(filter, want) {
			t.Errorf("filter listing lacks %q", want)
		}
	}
	for _, want := range []string{
		"-A POSTROUTING -j nova-postrouting-bottom",
		"-A nova-api-snat -j nova-api-float-snat",
		"-A nova-network-POSTROUTING -s 10.0.0.0/24 -d 192.168.56.200/32 -j ACCEPT",
		"-A nova-network-POSTROUTING -s 10.0.0.0/24 -d 10.128.0.0/24 -j ACCEPT",
		"-A nova-network-POSTROUTING -s 10.0.0.0/24 -d 10.0.0.0/24 -m conntrack ! --ctstate DNAT -j ACCEPT",
		"-A nova-network-PREROUTING -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.168.56.200:8775",
		"-A nova-network-snat -j nova-network-float-snat",
		"-A nova-network-snat -s 10.0.0.0/24 -o eth0 -j SNAT --to-source 192.168.56.200",
		"-A nova-postrouting-bottom -j nova-network-snat",
		"-A nova-postrouting-bottom -j nova-api-snat",
	} {
		if !strings.Contains(nat, want) {
			t.Errorf("nat listing lacks %q", want)
		}
	}
	d := pl.Dnsmasq[0]
	want := []string{
		"--strict-order", "--bind-interfaces", "--conf-file=",
		"--pid-file=/var/lib/novanet/networks/nova-br100.pid",
		// novanet's addition: dnsmasq's own log, for why it died.
		"--log-facility=/var/lib/novanet/networks/nova-br100.log",
		"--listen-address=10.0.0.1", "--except-interface=lo",
		"--dhcp-range=set:private,10.0.0.2,static,255.255.255.0,120s",
		"--dhcp-lease-max=256",
		"--dhcp-hostsdir=/var/lib/novanet/networks/nova-br100.hosts.d",
		"--dhcp-script=/usr/local/bin/novanet-dhcpbridge",
		"--leasefile-ro", "--domain=novalocal",
		"--dhcp-option=tag:private,option:router,10.0.0.1",
	}
	if !reflect.DeepEqual(d.Args, want) {
		t.Errorf("dnsmasq args\n got %q\nwant %q", d.Args, want)
	}
	if len(d.Hosts) != 3 || d.Hosts[0].Line != "fa:16:3e:2c:e8:ec,cirros.novalocal,10.0.0.2" {
		t.Errorf("hosts = %+v", d.Hosts)
	}
	if got := pl.Bridges[0].Addresses; len(got) != 1 || got[0] != p("10.0.0.1/24") {
		t.Errorf("controller bridge addresses = %v, want [10.0.0.1/24]", got)
	}
}

// A single-host compute node: bridge without an address, no dnsmasq, no
// NAT, only nova-compute chains; no ip_forward.
func TestSingleHostComputeHasNoGatewayRole(t *testing.T) {
	c := seedSingleHost()["single-compute-1"]
	pl, err := Build(c.st, c.o)
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Dnsmasq) != 0 || len(pl.Sysctls) != 2 || pl.Sysctls[0].Key != "net.bridge.bridge-nf-call-iptables" || pl.Sysctls[1].Key != "net.netfilter.nf_conntrack_tcp_loose" {
		t.Errorf("compute plans dnsmasq %v sysctls %v, want no dnsmasq, br_netfilter on and no loose conntrack pickup", pl.Dnsmasq, pl.Sysctls)
	}
	if len(pl.Bridges) != 1 || len(pl.Bridges[0].Addresses) != 0 || len(pl.Bridges[0].Ports) != 2 {
		t.Fatalf("bridges = %+v", pl.Bridges)
	}
	for _, tb := range pl.Firewall.Tables {
		for _, n := range tb.OwnedChainNames() {
			if strings.HasPrefix(n, "nova-network-") || strings.HasPrefix(n, "nova-api-") {
				t.Errorf("compute owns %s", n)
			}
		}
	}
	nat := strings.Join(pl.Firewall.Table("nat").Listing(), "\n")
	if strings.Contains(nat, "SNAT") || strings.Contains(nat, "DNAT") {
		t.Errorf("compute NATs:\n%s", nat)
	}
}

// multi-host: the router option is this host's own address.
func TestMultiHostRouterIsOwnAddress(t *testing.T) {
	c := seedMultiHost()["multi-compute-1"]
	pl, err := Build(c.st, c.o)
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Join(pl.Dnsmasq[0].Args, " ")
	if !strings.Contains(args, "option:router,10.0.0.4") || !strings.Contains(args, "--listen-address=10.0.0.4") {
		t.Errorf("args = %s", args)
	}
	if len(pl.Dnsmasq[0].Hosts) != 2 {
		t.Errorf("multi-host dnsmasq serves %d hosts, want the 2 local ones", len(pl.Dnsmasq[0].Hosts))
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	c := seedSingleHost()["single-controller"]
	first, _ := Build(c.st, c.o)
	// Reordered input must not reorder output.
	st := c.st
	st.Networks = []model.HostNetwork{st.Networks[0]}
	st.Networks[0].DHCPHosts = []model.DHCPHost{dhcpHost(vm3), dhcpHost(vm1), dhcpHost(vm2)}
	second, _ := Build(st, c.o)
	j1, _ := json.Marshal(first)
	j2, _ := json.Marshal(second)
	if string(j1) != string(j2) {
		t.Errorf("plans differ:\n%s\n%s", j1, j2)
	}
}

func TestBuildErrorsAndWarnings(t *testing.T) {
	c := seedSingleHost()["single-controller"]
	o := c.o
	o.RoutingSourceIP = netip.Addr{}
	o.MetadataHost = netip.Addr{}
	if _, err := Build(c.st, o); err == nil || !strings.Contains(err.Error(), "routing_source_ip") {
		t.Errorf("NAT without routing_source_ip: err = %v", err)
	}

	st := c.st
	st.Networks = append([]model.HostNetwork{}, st.Networks...)
	v := st.Networks[0]
	v.Network.ID, v.Network.Kind, v.Network.Label, v.Network.Bridge = 2, model.KindVLAN, "vlan100", "br_vlan100"
	st.Networks = append(st.Networks, v)
	pl, err := Build(st, c.o)
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Warnings) != 1 || !strings.Contains(pl.Warnings[0], "vlan100") || len(pl.Bridges) != 1 {
		t.Errorf("vlan network: warnings %q bridges %d", pl.Warnings, len(pl.Bridges))
	}

	st = c.st
	st.Networks = []model.HostNetwork{st.Networks[0]}
	st.Networks[0].BridgeAddress = netip.Addr{}
	if _, err := Build(st, c.o); err == nil || !strings.Contains(err.Error(), "no address") {
		t.Errorf("DHCP without bridge address: err = %v", err)
	}
}

func TestHostnamesAreMadeSafeForDnsmasq(t *testing.T) {
	for in, want := range map[string]string{
		"Web_01":                "web-01",
		"my server":             "my-server",
		"--x--":                 "x",
		"":                      "host-10-0-0-9",
		"a,b;rm -rf":            "abrm--rf",
		strings.Repeat("a", 80): strings.Repeat("a", 63),
	} {
		if got := dnsLabel(in, a("10.0.0.9")); got != want {
			t.Errorf("dnsLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTwoNetworksOnOneBridgeShareOneDnsmasq(t *testing.T) {
	c := seedSingleHost()["single-controller"]
	st := c.st
	second := st.Networks[0]
	second.Network.ID, second.Network.Label = 2, "private2"
	second.Network.CIDR, second.Network.DHCPStart = p("10.0.1.0/24"), a("10.0.1.2")
	second.BridgeAddress = a("10.0.1.1")
	second.DHCPHosts = nil
	st.Networks = append([]model.HostNetwork{}, st.Networks[0], second)
	pl, err := Build(st, c.o)
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Dnsmasq) != 1 || len(pl.Bridges) != 1 || len(pl.Bridges[0].Addresses) != 2 {
		t.Fatalf("dnsmasq %d bridges %+v", len(pl.Dnsmasq), pl.Bridges)
	}
	args := strings.Join(pl.Dnsmasq[0].Args, " ")
	for _, w := range []string{"--listen-address=10.0.1.1", "set:private2,10.0.1.2,static", "--dhcp-lease-max=512", "tag:private2,option:router,10.0.1.1"} {
		if !strings.Contains(args, w) {
			t.Errorf("args lack %q: %s", w, args)
		}
	}
}

func TestRuleSpecRendering(t *testing.T) {
	eight, zero, any := 8, 0, -1
	for _, c := range []struct {
		r    Rule
		want string
	}{
		{Rule{Target: Target{Verdict: Drop}}, "-j DROP"},
		{Rule{Source: p("10.0.0.7/24"), Target: accept()}, "-s 10.0.0.0/24 -j ACCEPT"},
		{Rule{Protocol: "tcp", DstPorts: PortRange{From: 1000, To: 2000}, Target: accept()}, "-p tcp -m tcp --dport 1000:2000 -j ACCEPT"},
		{Rule{Source: p("10.0.0.1/32"), Protocol: "udp", SrcPorts: PortRange{From: 67}, DstPorts: PortRange{From: 68}, Target: accept()}, "-s 10.0.0.1/32 -p udp -m udp --sport 67 --dport 68 -j ACCEPT"},
		{Rule{Protocol: "icmp", ICMPType: &eight, ICMPCode: &zero, Target: accept()}, "-p icmp -m icmp --icmp-type 8/0 -j ACCEPT"},
		{Rule{Protocol: "icmp", ICMPType: &any, Target: accept()}, "-p icmp -j ACCEPT"},
		{Rule{State: []string{"RELATED", "ESTABLISHED"}, Target: accept()}, "-m state --state RELATED,ESTABLISHED -j ACCEPT"},
		{Rule{SourceSet: "nova-sg-1", Target: accept()}, "-m set --match-set nova-sg-1 src -j ACCEPT"},
		{Rule{Destination: p("10.0.0.3/32"), Target: jumpTo("nova-compute-inst-9")}, "-d 10.0.0.3/32 -j nova-compute-inst-9"},
		{Rule{Comment: "two words", Target: accept()}, `-m comment --comment "two words" -j ACCEPT`},
		{Rule{Destination: p("203.0.113.5/32"), Target: Target{Verdict: DNAT, ToAddr: a("10.0.0.3")}}, "-d 203.0.113.5/32 -j DNAT --to-destination 10.0.0.3"},
	} {
		if got := c.r.Spec(); got != c.want {
			t.Errorf("Spec() = %q, want %q", got, c.want)
		}
	}
}

func TestRestoreTextDeclaresAndFillsChains(t *testing.T) {
	c := seedSingleHost()["single-controller"]
	pl, _ := Build(c.st, c.o)
	nat := pl.Firewall.Table("nat")
	got := nat.RestoreText([]string{"nova-network-snat"})
	want := "*nat\n:nova-network-snat - [0:0]\n-A nova-network-snat -j nova-network-float-snat\n-A nova-network-snat -s 10.0.0.0/24 -o eth0 -j SNAT --to-source 192.168.56.200\nCOMMIT\n"
	if got != want {
		t.Errorf("RestoreText:\n%s\nwant\n%s", got, want)
	}
}

func TestNetworkMTUAndDNSReachTheGuests(t *testing.T) {
	c := seedSingleHost()["single-controller"]
	st := c.st
	hn := st.Networks[0]
	hn.Network.MTU = 1450
	hn.Network.DNS1, hn.Network.DNS2 = a("192.0.2.53"), a("192.0.2.54")
	st.Networks = []model.HostNetwork{hn}
	pl, err := Build(st, c.o)
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Join(pl.Dnsmasq[0].Args, " ")
	for _, w := range []string{"--dhcp-option=tag:private,option:mtu,1450", "--dhcp-option=tag:private,option:dns-server,192.0.2.53,192.0.2.54"} {
		if !strings.Contains(args, w) {
			t.Errorf("args lack %q: %s", w, args)
		}
	}
	if pl.Bridges[0].MTU != 1450 {
		t.Errorf("bridge MTU %d, want 1450", pl.Bridges[0].MTU)
	}
}
