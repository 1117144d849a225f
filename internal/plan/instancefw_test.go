package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"novanet/internal/model"
)

func withVIF(in model.HostInstance, id int64) model.HostInstance {
	in.VIFID = id
	return in
}

// Seed 003's compute-1 after the cirros VM booted: the instance chain,
// nova-compute-local's jump into it, provider and sg-fallback, line for
// line (the seed's copy lost the addresses; they are filled in).
func TestComputeMatchesSeedListing(t *testing.T) {
	n := seedNetwork(false)
	st := model.HostState{Host: "compute-1", Options: seedOptions, Networks: []model.HostNetwork{{
		Network: n, DHCPServer: a("10.0.0.1"), Instances: []model.HostInstance{vm1},
	}}, SecurityGroups: []model.HostSecurityGroup{{SecurityGroup: model.SecurityGroup{ID: 1, ProjectID: "demo", Name: "default"}, Members: []netip.Addr{vm1.Address}}}}
	pl, err := Build(st, computeOptions("compute-1", "192.168.56.201"))
	if err != nil {
		t.Fatal(err)
	}
	got := pl.Firewall.Table("filter").Listing()
	want := []string{
		"-N nova-compute-FORWARD",
		"-N nova-compute-INPUT",
		"-N nova-compute-OUTPUT",
		"-N nova-compute-inst-9",
		"-N nova-compute-local",
		"-N nova-compute-provider",
		"-N nova-compute-sg-fallback",
		"-N nova-filter-top",
		"-A INPUT -j nova-compute-INPUT",
		"-A FORWARD -j nova-filter-top",
		"-A FORWARD -j nova-compute-FORWARD",
		"-A OUTPUT -j nova-filter-top",
		"-A OUTPUT -j nova-compute-OUTPUT",
		"-A nova-compute-FORWARD -i br100 -j ACCEPT",
		"-A nova-compute-FORWARD -o br100 -j ACCEPT",
		"-A nova-compute-inst-9 -m state --state INVALID -j DROP",
		"-A nova-compute-inst-9 -m state --state RELATED,ESTABLISHED -j ACCEPT",
		"-A nova-compute-inst-9 -j nova-compute-provider",
		"-A nova-compute-inst-9 -s 10.0.0.1/32 -p udp -m udp --sport 67 --dport 68 -j ACCEPT",
		"-A nova-compute-inst-9 -s 10.0.0.0/24 -j ACCEPT",
		"-A nova-compute-inst-9 -j nova-compute-sg-fallback",
		"-A nova-compute-local -d 10.0.0.2/32 -j nova-compute-inst-9",
		"-A nova-compute-sg-fallback -j DROP",
		"-A nova-filter-top -j nova-compute-local",
	}
	if !slices.Equal(got, want) {
		t.Errorf("compute-1 filter listing:\n%s\nwant (seed 003):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(pl.Firewall.Sets) != 0 {
		t.Errorf("no rule names a source group, yet sets %v are planned", pl.Firewall.Sets)
	}
}

// groupsState: two instances on compute-1 in group web (tcp 22 from a
// CIDR, tcp 8000-8080 from anywhere, icmp echo from group web itself,
// udp 53 from group db, any protocol from 192.0.2.0/24), one of them also
// in db; allow_same_net_traffic off.
func groupsState() model.HostState {
	n := seedNetwork(false)
	co := seedOptions
	co.AllowSameNetTraffic = false
	web := model.SecurityGroup{ID: 2, ProjectID: "demo", Name: "web", Rules: []model.SecurityGroupRule{
		{ID: 1, GroupID: 2, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: p("203.0.113.0/24")},
		{ID: 2, GroupID: 2, Protocol: "tcp", FromPort: 8000, ToPort: 8080, CIDR: p("0.0.0.0/0")},
		{ID: 3, GroupID: 2, Protocol: "icmp", FromPort: 8, ToPort: -1, SourceGroupID: 2},
		{ID: 4, GroupID: 2, Protocol: "udp", FromPort: 53, ToPort: 53, SourceGroupID: 3},
		{ID: 5, GroupID: 2, Protocol: "", FromPort: -1, ToPort: -1, CIDR: p("192.0.2.0/24")},
		{ID: 6, GroupID: 2, Protocol: "icmp", FromPort: 3, ToPort: 4, CIDR: p("0.0.0.0/0")},
	}}
	db := model.SecurityGroup{ID: 3, ProjectID: "demo", Name: "db", Rules: []model.SecurityGroupRule{
		{ID: 7, GroupID: 3, Protocol: "tcp", FromPort: 5432, ToPort: 5432, SourceGroupID: 2},
		// the same rule as web's 1: one rule in the chain, not two
		{ID: 8, GroupID: 3, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: p("203.0.113.0/24")},
	}}
	i1, i2 := vm1, vm2
	i1.SecurityGroups = []int64{2}
	i2.SecurityGroups = []int64{2, 3}
	return model.HostState{Host: "compute-1", Options: co, Networks: []model.HostNetwork{{
		Network: n, DHCPServer: a("10.0.0.1"), Instances: []model.HostInstance{i1, i2},
	}}, SecurityGroups: []model.HostSecurityGroup{
		{SecurityGroup: web, Members: []netip.Addr{a("10.0.0.3"), a("10.0.0.2"), a("10.0.0.7")}},
		{SecurityGroup: db, Members: []netip.Addr{a("10.0.0.3")}},
	}}
}

func renderFirewall(pl Plan) string {
	var b strings.Builder
	for _, s := range pl.Firewall.Sets {
		b.WriteString("# ipset save " + s.Name + "\n")
		for _, l := range s.IpsetLines() {
			b.WriteString(l + "\n")
		}
	}
	if !pl.Firewall.Guard.IsZero() {
		b.WriteString("# l2 guard (nft bridge family)\n")
		for _, l := range pl.Firewall.Guard.Listing() {
			b.WriteString(l + "\n")
		}
	}
	for _, tb := range pl.Firewall.Tables {
		if tb.Name != "filter" {
			continue
		}
		b.WriteString("# iptables -t filter -S\n")
		for _, l := range tb.Listing() {
			b.WriteString(l + "\n")
		}
	}
	writeNFT(&b, pl.Firewall, "filter")
	return b.String()
}

// writeNFT appends the nftables driver's rendering of the named tables
// (all when none is named).
func writeNFT(b *strings.Builder, fw Firewall, only ...string) {
	for _, nt := range fw.NFTables() {
		if len(only) > 0 && !slices.Contains(only, strings.TrimPrefix(nt.Name, NFTTablePrefix)) {
			continue
		}
		b.WriteString("# nft list table ip " + nt.Name + " (firewall_driver = nftables)\n")
		for _, l := range nt.Listing() {
			b.WriteString(l + "\n")
		}
	}
}

func TestGoldenSecurityGroups(t *testing.T) {
	pl, err := Build(groupsState(), computeOptions("compute-1", "192.168.56.201"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Warnings) > 0 {
		t.Errorf("warnings: %v", pl.Warnings)
	}
	golden(t, "secgroups-compute-1", renderFirewall(pl))
}

// A source group of N members costs one rule per instance and one set of
// N elements, whatever N is.
func TestSourceGroupIsOneRuleAndOneSet(t *testing.T) {
	st := groupsState()
	for i := 10; i < 250; i++ {
		st.SecurityGroups[0].Members = append(st.SecurityGroups[0].Members, netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
	}
	pl, err := Build(st, computeOptions("compute-1", "192.168.56.201"))
	if err != nil {
		t.Fatal(err)
	}
	small, err := Build(groupsState(), computeOptions("compute-1", "192.168.56.201"))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := len(pl.Firewall.Table("filter").Listing()), len(small.Firewall.Table("filter").Listing()); a != b {
		t.Errorf("243 members give %d filter lines, 3 give %d: members must live in the set", a, b)
	}
	if got := len(pl.Firewall.Sets[0].Members); got != 243 {
		t.Errorf("set %s has %d members, want 243", pl.Firewall.Sets[0].Name, got)
	}
}

func TestInstanceWithoutVIFIDIsReported(t *testing.T) {
	st := groupsState()
	st.Networks[0].Instances[0].VIFID = 0
	pl, err := Build(st, computeOptions("compute-1", "192.168.56.201"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Warnings) != 1 || !strings.Contains(pl.Warnings[0], "no interface id") {
		t.Errorf("warnings %q, want one naming the missing interface id", pl.Warnings)
	}
}

// BenchmarkBuildProtected: plan.Build of a host whose n instances are all
// in one group with three rules, one from the group itself.
func BenchmarkBuildProtected(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		st, o := hostWithInstances(n)
		web := model.HostSecurityGroup{SecurityGroup: model.SecurityGroup{ID: 7, Name: "web", Rules: []model.SecurityGroupRule{
			{ID: 1, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: p("203.0.113.0/24")},
			{ID: 2, Protocol: "tcp", FromPort: 80, ToPort: 80, SourceGroupID: 7},
			{ID: 3, Protocol: "icmp", FromPort: -1, ToPort: -1, SourceGroupID: 7},
		}}}
		for i := range st.Networks[0].Instances {
			st.Networks[0].Instances[i].SecurityGroups = []int64{7}
			web.Members = append(web.Members, st.Networks[0].Instances[i].Address)
		}
		st.SecurityGroups = []model.HostSecurityGroup{web}
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Build(st, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
