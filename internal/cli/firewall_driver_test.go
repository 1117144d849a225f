package cli

import (
	"context"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"novanet/internal/model"
	"novanet/internal/nettest"
	"novanet/internal/plan"
)

// enterNetns moves the calling goroutine's thread into ns (as the agent
// runs inside its host's namespace) until the test ends.
func enterNetns(t *testing.T, ns string) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	target, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		target.Close()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
	})
}

func protectedFirewall(t *testing.T) plan.Firewall {
	n := model.Network{ID: 1, Label: "private", Kind: model.KindFlatDHCP, CIDR: netip.MustParsePrefix("10.0.0.0/24"),
		Gateway: netip.MustParseAddr("10.0.0.1"), DHCPStart: netip.MustParseAddr("10.0.0.2"), Bridge: "br100", MultiHost: true}
	vm := model.HostInstance{UUID: "00000000-0000-4000-8000-000000000001", Hostname: "vm-1", Address: netip.MustParseAddr("10.0.0.5"),
		MAC: "fa:16:3e:00:00:05", Device: "tap00000000001", VIFID: 1, SecurityGroups: []int64{7}}
	web := model.HostSecurityGroup{SecurityGroup: model.SecurityGroup{ID: 7, Name: "web", Rules: []model.SecurityGroupRule{
		{ID: 1, GroupID: 7, Protocol: "icmp", FromPort: -1, ToPort: -1, SourceGroupID: 7}}}, Members: []netip.Addr{vm.Address}}
	st := model.HostState{Host: "compute-1", Options: model.ClusterOptions{DHCPDomain: "novalocal", DHCPLeaseTime: 120, FixedRanges: []netip.Prefix{n.CIDR}},
		Networks: []model.HostNetwork{{Network: n, BridgeAddress: netip.MustParseAddr("10.0.0.1"), ServesDHCP: true, NAT: true,
			DHCPServer: netip.MustParseAddr("10.0.0.1"), Instances: []model.HostInstance{vm}}},
		SecurityGroups: []model.HostSecurityGroup{web}}
	pl, err := plan.Build(st, plan.Options{Host: st.Host, FlatInterface: "eth2", PublicInterface: "eth0", RoutingSourceIP: netip.MustParseAddr("192.0.2.10")})
	if err != nil {
		t.Fatal(err)
	}
	return pl.Firewall
}

// Switching firewall_driver and restarting the agent leaves only the
// chosen driver's rules: no nova-* chain or ipset under nftables, no
// novanet nft table under iptables.
func TestSwitchingFirewallDriverRemovesTheOther(t *testing.T) {
	nettest.RequireRoot(t, "iptables-save", "iptables-restore", "ipset", "nft")
	ns := nettest.Netns(t, "nnsw")
	enterNetns(t, ns)
	ctx := context.Background()
	fw := protectedFirewall(t)
	iptablesOwned := func() string {
		out := nettest.Run(t, ns, "iptables-save") + nettest.Run(t, ns, "iptables-save", "-t", "nat") + nettest.Run(t, ns, "ipset", "list", "-n")
		var own []string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "nova-") {
				own = append(own, l)
			}
		}
		return strings.Join(own, "\n")
	}
	nftOwned := func() string {
		out := nettest.Run(t, ns, "nft", "list", "tables")
		var own []string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, plan.NFTTablePrefix) && !strings.Contains(l, "bridge") {
				own = append(own, l)
			}
		}
		return strings.Join(own, "\n")
	}
	apply := func(driver string) {
		t.Helper()
		d, err := newFirewallDriver(driver, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.fw.Apply(ctx, fw, true); err != nil {
			t.Fatalf("%s: %v", driver, err)
		}
	}

	apply("iptables")
	if own := iptablesOwned(); !strings.Contains(own, "nova-compute-inst-1") || !strings.Contains(own, "nova-sg-7") {
		t.Fatalf("the iptables driver should hold the instance chain and set:\n%s", own)
	}
	apply("nftables")
	if own := iptablesOwned(); own != "" {
		t.Errorf("under nftables, iptables and ipset still hold:\n%s", own)
	}
	if own := nftOwned(); !strings.Contains(own, "novanet-filter") || !strings.Contains(own, "novanet-nat") {
		t.Errorf("the nftables driver's tables are missing: %q", own)
	}
	apply("iptables")
	if own := nftOwned(); own != "" {
		t.Errorf("back under iptables, nft still holds: %q", own)
	}
	if own := iptablesOwned(); !strings.Contains(own, "nova-compute-inst-1") {
		t.Errorf("the iptables driver's chains are missing:\n%s", own)
	}
	if _, err := newFirewallDriver("ebtables", nil); err == nil || !strings.Contains(err.Error(), "use iptables or nftables") {
		t.Errorf("an unknown driver: %v", err)
	}
}
