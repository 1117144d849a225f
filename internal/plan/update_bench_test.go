package plan

import (
	"fmt"
	"net/netip"
	"testing"

	"novanet/internal/model"
)

// BenchmarkUpdateProtected: planning one more protected instance (three
// group rules, one source group of n members) on a host protecting n,
// incrementally (Update from the previous plan and the delta) beside a
// whole Build of the new state.
func BenchmarkUpdateProtected(b *testing.B) {
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
		prev, err := Build(st, o)
		if err != nil {
			b.Fatal(err)
		}
		hn := st.Networks[0]
		in := vm("new", "vm-new", "10.255.0.9", "fa:16:3e:ff:ff:09", "tapnew")
		in.VIFID, in.SecurityGroups = int64(n+1), []int64{7}
		d := model.HostStateDelta{Host: st.Host, From: st.Revision, To: st.Revision + 1,
			Networks: []model.HostNetworkDelta{{Network: hn.Network, BridgeAddress: hn.BridgeAddress, ServesDHCP: hn.ServesDHCP, NAT: hn.NAT,
				DHCPServer: hn.DHCPServer, Instances: []model.HostInstance{in}, DHCPHosts: []model.DHCPHost{dhcpHost(in)}}},
			SecurityGroups: []model.HostSecurityGroupDelta{{SecurityGroup: web.SecurityGroup, AddedMembers: []netip.Addr{in.Address}}}}
		next, err := st.Apply(d)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("path=incremental/instances=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, ch, err := Update(prev, st, next, d, o); err != nil || ch.Full {
					b.Fatal("not incremental", err)
				}
			}
		})
		b.Run(fmt.Sprintf("path=whole/instances=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Build(next, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
