package manager_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"novanet/internal/manager"
	"novanet/internal/model"
	"novanet/internal/store"
)

func TestHostStateSingleHost(t *testing.T) {
	ctx := context.Background()
	eachEngine(t, func(t *testing.T, st *store.Store) {
		m := newManager(t, st, nil)
		mustNetwork(t, m, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100"})
		p := model.Scope{ProjectID: "p"}
		a, _ := m.BootInstance(ctx, p, model.BootRequest{Hostname: "vm1", Host: "c1"})
		b, err := m.BootInstance(ctx, p, model.BootRequest{Hostname: "vm2", Host: "c2"})
		if err != nil {
			t.Fatal(err)
		}
		nh, _ := m.HostState(ctx, "net1")
		if len(nh.Networks) != 1 {
			t.Fatalf("network host networks %+v", nh.Networks)
		}
		n := nh.Networks[0]
		if n.BridgeAddress != netip.MustParseAddr("10.0.0.1") || !n.ServesDHCP || !n.NAT || len(n.DHCPHosts) != 2 ||
			n.DHCPHosts[0].Hostname != "vm1" || n.DHCPHosts[1].MAC != b.VIFs[0].MAC || len(n.Instances) != 0 {
			t.Fatalf("network host view %+v", n)
		}
		if fmt.Sprint(nh.Options.FixedRanges) != "[10.0.0.0/24]" || nh.Options.DHCPDomain != "novalocal" {
			t.Fatalf("options %+v", nh.Options)
		}
		c1, _ := m.HostState(ctx, "c1")
		n = c1.Networks[0]
		if n.BridgeAddress.IsValid() || n.ServesDHCP || n.NAT || n.DHCPServer != netip.MustParseAddr("10.0.0.1") ||
			len(n.Instances) != 1 || n.Instances[0].UUID != a.UUID || len(n.DHCPHosts) != 0 {
			t.Fatalf("compute view %+v", n)
		}
		if len(c1.SecurityGroups) != 1 || c1.SecurityGroups[0].Name != "default" || len(c1.SecurityGroups[0].Members) != 2 {
			t.Fatalf("groups %+v", c1.SecurityGroups)
		}
		if idle, _ := m.HostState(ctx, "c9"); len(idle.Networks) != 0 {
			t.Fatalf("idle host has networks")
		}
		// Revisions: a boot on c1 moves c1 and net1, not c2.
		r1, _ := st.Revision(ctx, "c1")
		r2, _ := st.Revision(ctx, "c2")
		rn, _ := st.Revision(ctx, "net1")
		if _, err := m.BootInstance(ctx, model.Scope{ProjectID: "other"}, model.BootRequest{Hostname: "vm3", Host: "c1"}); err != nil {
			t.Fatal(err)
		}
		s1, _ := st.Revision(ctx, "c1")
		s2, _ := st.Revision(ctx, "c2")
		sn, _ := st.Revision(ctx, "net1")
		if s1 <= r1 || sn <= rn || s2 != r2 {
			t.Fatalf("revisions c1 %d->%d net1 %d->%d c2 %d->%d", r1, s1, rn, sn, r2, s2)
		}
		// Floating IPs: NATed by the network host.
		if _, err := m.CreateFloatingRange(ctx, model.FloatingRangeRequest{IPRange: "203.0.113.0/30"}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.CreateFloatingRange(ctx, model.FloatingRangeRequest{IPRange: "10.0.0.0/28"}); !model.IsKind(err, model.ErrConflict) {
			t.Fatalf("floating over a fixed network: %v", err)
		}
		fl, err := m.AllocateFloatingIP(ctx, p, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := m.AssociateFloatingIP(ctx, model.Scope{ProjectID: "other"}, fl.Address, a.UUID, netip.Addr{}); !model.IsKind(err, model.ErrNotFound) {
			t.Fatalf("foreign associate: %v", err)
		}
		if err := m.AssociateFloatingIP(ctx, p, fl.Address, a.UUID, netip.Addr{}); err != nil {
			t.Fatal(err)
		}
		nh, _ = m.HostState(ctx, "net1")
		if len(nh.FloatingIPs) != 1 || nh.FloatingIPs[0].FixedAddress != a.FixedIPs[0].Address || nh.FloatingIPs[0].Interface != "eth0" {
			t.Fatalf("floating %+v", nh.FloatingIPs)
		}
		if _, err := m.AllocateFloatingIP(ctx, p, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := m.AllocateFloatingIP(ctx, p, ""); !model.IsKind(err, model.ErrExhausted) {
			t.Fatalf("empty pool: %v", err)
		}
		if _, err := m.DeleteFloatingRange(ctx, "203.0.113.0/30"); !model.IsKind(err, model.ErrConflict) {
			t.Fatalf("delete allocated range: %v", err)
		}
		if err := m.ReleaseFloatingIP(ctx, p, fl.Address.String()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestHostStateMultiHost(t *testing.T) {
	ctx := context.Background()
	eachEngine(t, func(t *testing.T, st *store.Store) {
		m := newManager(t, st, nil)
		mustNetwork(t, m, model.NetworkCreateRequest{Label: "mh", FixedRangeV4: "10.0.0.0/24", Bridge: "br100", MultiHost: new(true)})
		p := model.Scope{ProjectID: "p"}
		a, _ := m.BootInstance(ctx, p, model.BootRequest{Hostname: "vm1", Host: "c1"})
		if _, err := m.BootInstance(ctx, p, model.BootRequest{Hostname: "vm2", Host: "c2"}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.BootInstance(ctx, p, model.BootRequest{Hostname: "vm3", Host: "c1"}); err != nil {
			t.Fatal(err)
		}
		c1, _ := m.HostState(ctx, "c1")
		n := c1.Networks[0]
		// c1 took 10.0.0.3 for itself after vm1's 10.0.0.2.
		if n.BridgeAddress != netip.MustParseAddr("10.0.0.3") || n.DHCPServer != n.BridgeAddress || !n.ServesDHCP || !n.NAT ||
			len(n.DHCPHosts) != 2 || len(n.Instances) != 2 || n.Instances[0].UUID != a.UUID {
			t.Fatalf("multi-host view %+v", n)
		}
		c2, _ := m.HostState(ctx, "c2")
		if c2.Networks[0].BridgeAddress == n.BridgeAddress || len(c2.Networks[0].DHCPHosts) != 1 {
			t.Fatalf("c2 view %+v", c2.Networks[0])
		}
		if nh, _ := m.HostState(ctx, "net1"); len(nh.Networks) != 0 {
			t.Fatalf("no network host in multi-host mode: %+v", nh.Networks)
		}
		// Leases for c1's dnsmasq: only its instances.
		ls, _ := m.Leases(ctx, "c1", "br100")
		if len(ls) != 2 {
			t.Fatalf("leases %+v", ls)
		}
	})
}

func TestSecurityGroups(t *testing.T) {
	ctx := context.Background()
	eachEngine(t, func(t *testing.T, st *store.Store) {
		m := newManager(t, st, func(o *manager.Options) {})
		mustNetwork(t, m, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100"})
		p := model.Scope{ProjectID: "p"}
		if _, err := m.CreateDefaultRule(ctx, model.SecurityGroupRule{Protocol: "tcp", FromPort: 22, ToPort: 22}); err != nil {
			t.Fatal(err)
		}
		gs, err := m.ListSecurityGroups(ctx, p, false)
		if err != nil || len(gs) != 1 || gs[0].Name != "default" || len(gs[0].Rules) != 1 {
			t.Fatalf("default group %+v %v", gs, err)
		}
		def := gs[0]
		if err := m.DeleteSecurityGroup(ctx, p, def.ID); !model.IsKind(err, model.ErrInvalid) {
			t.Fatalf("delete default: %v", err)
		}
		if _, err := m.UpdateSecurityGroup(ctx, p, def.ID, "x", ""); !model.IsKind(err, model.ErrInvalid) {
			t.Fatalf("rename default: %v", err)
		}
		web, err := m.CreateSecurityGroup(ctx, p, "web", "web servers")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.CreateSecurityGroup(ctx, p, "web", ""); !model.IsKind(err, model.ErrConflict) {
			t.Fatalf("duplicate group: %v", err)
		}
		bad := []model.SecurityGroupRule{
			{GroupID: web.ID, Protocol: "tcp", FromPort: 0, ToPort: 80},
			{GroupID: web.ID, Protocol: "tcp", FromPort: 90, ToPort: 80},
			{GroupID: web.ID, Protocol: "icmp", FromPort: 256, ToPort: -1},
			{GroupID: web.ID, Protocol: "gre"},
			{GroupID: web.ID, Protocol: "tcp", FromPort: 80, ToPort: 80, CIDR: netip.MustParsePrefix("10.0.0.1/24")},
		}
		for _, r := range bad {
			if _, err := m.CreateSecurityGroupRule(ctx, p, r); !model.IsKind(err, model.ErrInvalid) {
				t.Fatalf("rule %+v: %v", r, err)
			}
		}
		r, err := m.CreateSecurityGroupRule(ctx, p, model.SecurityGroupRule{GroupID: web.ID, Protocol: "tcp", FromPort: 80, ToPort: 80, SourceGroupID: def.ID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.CreateSecurityGroupRule(ctx, p, model.SecurityGroupRule{GroupID: web.ID, Protocol: "tcp", FromPort: 80, ToPort: 80, SourceGroupID: def.ID}); !model.IsKind(err, model.ErrConflict) {
			t.Fatalf("duplicate rule: %v", err)
		}
		if _, err := m.CreateSecurityGroupRule(ctx, model.Scope{ProjectID: "q"}, model.SecurityGroupRule{GroupID: web.ID, Protocol: "udp", FromPort: 53, ToPort: 53}); !model.IsKind(err, model.ErrNotFound) {
			t.Fatalf("foreign rule: %v", err)
		}
		a, err := m.BootInstance(ctx, p, model.BootRequest{Hostname: "vm1", Host: "c1", SecurityGroups: []string{"web"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.DeleteSecurityGroup(ctx, p, web.ID); !model.IsKind(err, model.ErrConflict) {
			t.Fatalf("delete used group: %v", err)
		}
		// A member joining the source group moves c1 (its rules name it).
		before, _ := st.Revision(ctx, "c1")
		if _, err := m.BootInstance(ctx, p, model.BootRequest{Hostname: "vm2", Host: "c2"}); err != nil {
			t.Fatal(err)
		}
		after, _ := st.Revision(ctx, "c1")
		if after <= before {
			t.Fatalf("c1 not bumped when the source group gained a member")
		}
		hs, _ := m.HostState(ctx, "c1")
		if len(hs.SecurityGroups) != 2 || hs.SecurityGroups[0].ID != def.ID || len(hs.SecurityGroups[0].Members) != 1 {
			t.Fatalf("host groups %+v", hs.SecurityGroups)
		}
		if err := m.AddInstanceSecurityGroup(ctx, p, a.UUID, "default"); err != nil {
			t.Fatal(err)
		}
		if err := m.RemoveInstanceSecurityGroup(ctx, p, a.UUID, "web"); err != nil {
			t.Fatal(err)
		}
		if err := m.DeleteSecurityGroupRule(ctx, p, r.ID); err != nil {
			t.Fatal(err)
		}
		if err := m.DeleteSecurityGroup(ctx, p, web.ID); err != nil {
			t.Fatal(err)
		}
	})
}
