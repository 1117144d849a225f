package nftables_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"novanet/internal/datapath/nftables"
	"novanet/internal/model"
	"novanet/internal/nettest"
	"novanet/internal/plan"
)

var (
	a = netip.MustParseAddr
	p = netip.MustParsePrefix
)

// state: a compute host with n instances in group web (tcp 22 from a
// CIDR, tcp 80 and icmp from web itself), multi-host, so the host also
// NATs and plans floating chains.
func state(n int) model.HostState {
	net := model.Network{ID: 1, Label: "private", Kind: model.KindFlatDHCP, CIDR: p("10.0.0.0/16"),
		Gateway: a("10.0.0.1"), DHCPStart: a("10.0.0.2"), Bridge: "br100", MultiHost: true}
	hn := model.HostNetwork{Network: net, BridgeAddress: a("10.0.0.1"), ServesDHCP: true, NAT: true, DHCPServer: a("10.0.0.1")}
	web := model.HostSecurityGroup{SecurityGroup: model.SecurityGroup{ID: 7, ProjectID: "demo", Name: "web", Rules: []model.SecurityGroupRule{
		{ID: 1, GroupID: 7, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: p("203.0.113.0/24")},
		{ID: 2, GroupID: 7, Protocol: "tcp", FromPort: 80, ToPort: 80, SourceGroupID: 7},
		{ID: 3, GroupID: 7, Protocol: "icmp", FromPort: -1, ToPort: -1, SourceGroupID: 7},
	}}}
	for i := range n {
		addr := netip.AddrFrom4([4]byte{10, 0, byte(1 + i/250), byte(2 + i%250)})
		hn.Instances = append(hn.Instances, model.HostInstance{UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
			Hostname: fmt.Sprintf("vm-%d", i), Address: addr, MAC: fmt.Sprintf("fa:16:3e:00:%02x:%02x", i/256, i%256),
			Device: fmt.Sprintf("tap%011d", i), VIFID: int64(i + 1), SecurityGroups: []int64{7}})
		web.Members = append(web.Members, addr)
	}
	return model.HostState{Host: "compute-1", Networks: []model.HostNetwork{hn}, SecurityGroups: []model.HostSecurityGroup{web},
		Options: model.ClusterOptions{DHCPDomain: "novalocal", DHCPLeaseTime: 120, FixedRanges: []netip.Prefix{net.CIDR}}}
}

func firewall(t *testing.T, st model.HostState) plan.Firewall {
	t.Helper()
	pl, err := plan.Build(st, plan.Options{Host: st.Host, FlatInterface: "eth2", PublicInterface: "eth0", RoutingSourceIP: a("192.0.2.10")})
	if err != nil {
		t.Fatal(err)
	}
	return pl.Firewall
}

func newFirewall(t *testing.T, ns string) *nftables.Firewall {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	f := nftables.New()
	f.NetNS, f.Netns = int(h), ns
	return f
}

func list(t *testing.T, ns string) string {
	t.Helper()
	return nettest.Run(t, ns, "nft", "list", "ruleset")
}

func TestApplyReapplyAndTeardown(t *testing.T) {
	nettest.RequireRoot(t, "nft")
	ns := nettest.Netns(t, "nnft")
	f := newFirewall(t, ns)
	ctx := context.Background()
	before := list(t, ns)
	three := firewall(t, state(3))
	if err := f.Apply(ctx, three, true); err != nil {
		t.Fatal(err)
	}
	out := list(t, ns)
	t.Logf("nft list ruleset:\n%s", out)
	for _, s := range []string{
		"table ip novanet-filter", "table ip novanet-nat",
		"type filter hook forward priority filter - 10; policy accept;",
		"type nat hook postrouting priority srcnat - 10; policy accept;",
		"elements = { 10.0.1.2, 10.0.1.3,",
		"ct state invalid drop",
		"tcp dport 80 ip saddr @nova-sg-7 accept",
		"jump nova-compute-sg-fallback",
		`oifname "eth0" snat to 192.0.2.10`,
	} {
		if !strings.Contains(out, s) {
			t.Errorf("ruleset lacks %q", s)
		}
	}
	// Every planned chain and rule is in the kernel: one line each.
	for _, nt := range three.NFTables() {
		for _, c := range nt.Chains {
			if !strings.Contains(out, "chain "+c.Name+" {") {
				t.Errorf("chain %s missing", c.Name)
			}
		}
	}

	// Nothing changed: no transaction, from this applier or a fresh one
	// reading the kernel.
	n := f.Transactions()
	if err := f.Apply(ctx, three, true); err != nil {
		t.Fatal(err)
	}
	fresh := newFirewall(t, ns)
	if err := fresh.Apply(ctx, three, true); err != nil {
		t.Fatal(err)
	}
	if f.Transactions() != n || fresh.Transactions() != 0 {
		t.Errorf("re-applying the same plan sent %d and %d transactions", f.Transactions()-n, fresh.Transactions())
	}
	if got := list(t, ns); got != out {
		t.Errorf("re-applying changed the ruleset:\n%s", got)
	}

	// One more like instance is two set elements, nothing else.
	four := firewall(t, state(4))
	f.TakeChanges()
	n = f.Transactions()
	if err := f.Apply(ctx, four, false); err != nil {
		t.Fatal(err)
	}
	if f.Transactions() != n+1 {
		t.Errorf("adding an instance sent %d transactions, want 1", f.Transactions()-n)
	}
	ch := f.TakeChanges()
	if len(ch) != 1 || !strings.Contains(ch[0], "elements changed") || strings.Contains(ch[0], "chains") {
		t.Errorf("adding an instance changed %q, want set elements only", ch)
	}
	if got := list(t, ns); strings.Count(got, "10.0.1.5") != 2 {
		t.Errorf("the new instance's address should be in two sets:\n%s", got)
	}

	// Teardown: back to three, then to none leaves nothing naming them.
	if err := f.Apply(ctx, three, false); err != nil {
		t.Fatal(err)
	}
	if got := list(t, ns); strings.Contains(got, "10.0.1.5") {
		t.Errorf("a removed instance's address is left:\n%s", got)
	}
	if err := f.Apply(ctx, firewall(t, state(0)), false); err != nil {
		t.Fatal(err)
	}
	after := list(t, ns)
	for _, s := range []string{"10.0.1.", "nova-compute-local-", "nova-sg-7"} {
		if strings.Contains(after, s) {
			t.Errorf("with no instance, %q is left:\n%s", s, after)
		}
	}
	if err := f.Apply(ctx, plan.Firewall{}, false); err != nil {
		t.Fatal(err)
	}
	if got := list(t, ns); got != before {
		t.Errorf("an empty plan leaves:\n%s", got)
	}
}

func TestDriftIsRepairedFromNotifications(t *testing.T) {
	nettest.RequireRoot(t, "nft")
	ns := nettest.Netns(t, "nnftd")
	f := newFirewall(t, ns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fw := firewall(t, state(3))
	if err := f.Apply(ctx, fw, true); err != nil {
		t.Fatal(err)
	}
	want := list(t, ns)
	var events atomic.Int32
	repaired := make(chan error, 64)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		_ = f.Watch(ctx, func(string) {
			events.Add(1)
			select {
			case repaired <- f.Apply(ctx, fw, true):
			default:
			}
		})
	}()
	// The watch must end before the namespace handle closes: a late
	// repair would write through a reused descriptor.
	defer func() { cancel(); <-watching }()
	time.Sleep(200 * time.Millisecond) // the watch subscribes
	for _, drift := range [][]string{
		{"delete", "element", "ip", "novanet-filter", "nova-sg-7", "{", "10.0.1.3", "}"},
		{"flush", "chain", "ip", "novanet-filter", "nova-compute-sg-fallback"},
		{"add", "rule", "ip", "novanet-filter", "nova-compute-local", "accept"},
		{"delete", "table", "ip", "novanet-nat"},
	} {
		nettest.Run(t, ns, append([]string{"nft"}, drift...)...)
		deadline := time.Now().Add(5 * time.Second)
		for list(t, ns) != want {
			if time.Now().After(deadline) {
				t.Fatalf("after nft %s, not repaired within 5 s:\n%s", strings.Join(drift, " "), list(t, ns))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for len(repaired) > 0 {
		if err := <-repaired; err != nil {
			t.Errorf("repair: %v", err)
		}
	}
	if events.Load() == 0 {
		t.Error("no notification was seen")
	}
}

// normalize drops blank lines and indentation and joins the element
// lines nft wraps.
func normalize(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if n := len(out); n > 0 && strings.HasSuffix(out[n-1], ",") {
			out[n-1] += " " + l
			continue
		}
		out = append(out, l)
	}
	return out
}

// The renderer behind the golden files prints what nft lists from the
// kernel, line for line.
func TestRenderingMatchesNftList(t *testing.T) {
	nettest.RequireRoot(t, "nft")
	ns := nettest.Netns(t, "nnftr")
	f := newFirewall(t, ns)
	fw := firewall(t, state(3))
	// Every kind of match and target the model has.
	filter := fw.Table("filter")
	typ, code := 3, 4
	filter.Chains = append(filter.Chains, plan.Chain{Name: "nova-test", Rules: []plan.Rule{
		{Protocol: "tcp", DstPorts: plan.PortRange{From: 8000, To: 8080}, Target: plan.Target{Verdict: plan.Accept}},
		{Protocol: "icmp", ICMPType: &typ, ICMPCode: &code, Target: plan.Target{Verdict: plan.Accept}},
		{Protocol: "udp", Target: plan.Target{Verdict: plan.Return}},
		{InInterface: "eth+", Destination: p("10.1.0.0/16"), Comment: "a comment", Target: plan.Target{Verdict: plan.Drop}},
		{CTState: []string{"DNAT"}, Target: plan.Target{Verdict: plan.Accept}},
		{CTState: []string{"NEW", "INVALID"}, CTStateNegate: true, Target: plan.Target{Verdict: plan.Drop}},
	}})
	filter.Jumps = append(filter.Jumps, plan.Jump{From: "INPUT", To: "nova-test"})
	if err := f.Apply(context.Background(), fw, true); err != nil {
		t.Fatal(err)
	}
	for _, nt := range fw.NFTables() {
		got := normalize(nettest.Run(t, ns, "nft", "list", "table", "ip", nt.Name))
		want := normalize(strings.Join(nt.Listing(), "\n"))
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("table %s: nft lists\n%s\nthe renderer says\n%s", nt.Name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}
