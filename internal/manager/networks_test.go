package manager_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"novanet/internal/model"
	"novanet/internal/store"
)

func TestCreateNetworksValidation(t *testing.T) {
	ctx := context.Background()
	base := model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100"}
	with := func(f func(*model.NetworkCreateRequest)) model.NetworkCreateRequest { r := base; f(&r); return r }
	cases := []struct {
		name string
		req  model.NetworkCreateRequest
		kind model.ErrorKind
		msg  string
	}{
		{"malformed cidr", with(func(r *model.NetworkCreateRequest) { r.FixedRangeV4 = "10.0.0/24" }), model.ErrInvalid, "not a CIDR"},
		{"ipv6", with(func(r *model.NetworkCreateRequest) { r.FixedRangeV4 = "2001:db8::/64" }), model.ErrInvalid, "not IPv4"},
		{"host bits", with(func(r *model.NetworkCreateRequest) { r.FixedRangeV4 = "10.0.0.1/24" }), model.ErrInvalid, "use 10.0.0.0/24"},
		{"overlap existing", with(func(r *model.NetworkCreateRequest) { r.Label = "x"; r.FixedRangeV4 = "10.0.0.128/25" }), model.ErrConflict, "overlaps"},
		{"not fitting", with(func(r *model.NetworkCreateRequest) {
			r.Label = "y"
			r.FixedRangeV4 = "10.1.0.0/24"
			r.NumNetworks = 2
			r.NetworkSize = 256
		}), model.ErrInvalid, "not enough"},
		{"size not power of two", with(func(r *model.NetworkCreateRequest) { r.FixedRangeV4 = "10.1.0.0/24"; r.NetworkSize = 100 }), model.ErrInvalid, "power of two"},
		{"too small", with(func(r *model.NetworkCreateRequest) { r.FixedRangeV4 = "10.1.0.0/31" }), model.ErrInvalid, "too small"},
		{"no bridge", with(func(r *model.NetworkCreateRequest) { r.FixedRangeV4 = "10.1.0.0/24"; r.Bridge = "" }), model.ErrInvalid, "bridge is required"},
		{"long bridge", with(func(r *model.NetworkCreateRequest) { r.FixedRangeV4 = "10.1.0.0/24"; r.Bridge = "br0123456789abcd" }), model.ErrInvalid, "15 bytes"},
		{"bridge slash", with(func(r *model.NetworkCreateRequest) { r.FixedRangeV4 = "10.1.0.0/24"; r.Bridge = "br/1" }), model.ErrInvalid, "may not contain"},
		{"bridge space", with(func(r *model.NetworkCreateRequest) { r.FixedRangeV4 = "10.1.0.0/24"; r.Bridge = "br 1" }), model.ErrInvalid, "may not contain"},
		{"bridge colon", with(func(r *model.NetworkCreateRequest) { r.FixedRangeV4 = "10.1.0.0/24"; r.Bridge = "br:1" }), model.ErrInvalid, "may not contain"},
		{"duplicate label", with(func(r *model.NetworkCreateRequest) { r.FixedRangeV4 = "10.1.0.0/24" }), model.ErrConflict, "labelled"},
		{"vlan without id", with(func(r *model.NetworkCreateRequest) {
			r.Label = "v"
			r.FixedRangeV4 = "10.1.0.0/24"
			r.Kind = model.KindVLAN
		}), model.ErrInvalid, "vlan id"},
		{"vlan out of range", with(func(r *model.NetworkCreateRequest) {
			r.Label = "v"
			r.FixedRangeV4 = "10.1.0.0/24"
			r.Kind = model.KindVLAN
			r.VLAN = 4095
		}), model.ErrInvalid, "1..4094"},
		{"vlan on flat", with(func(r *model.NetworkCreateRequest) { r.Label = "v"; r.FixedRangeV4 = "10.1.0.0/24"; r.VLAN = 5 }), model.ErrInvalid, "kind vlan only"},
		{"unknown kind", with(func(r *model.NetworkCreateRequest) { r.Kind = "bogus" }), model.ErrInvalid, "unknown network kind"},
		{"gateway outside", with(func(r *model.NetworkCreateRequest) {
			r.Label = "g"
			r.FixedRangeV4 = "10.1.0.0/24"
			r.Gateway = "10.2.0.1"
		}), model.ErrInvalid, "gateway"},
		{"gateway is broadcast", with(func(r *model.NetworkCreateRequest) {
			r.Label = "g"
			r.FixedRangeV4 = "10.1.0.0/24"
			r.Gateway = "10.1.0.255"
		}), model.ErrInvalid, "gateway"},
		{"dhcp_start is network", with(func(r *model.NetworkCreateRequest) {
			r.Label = "g"
			r.FixedRangeV4 = "10.1.0.0/24"
			r.DHCPStart = "10.1.0.0"
		}), model.ErrInvalid, "dhcp_start"},
		{"bad dns", with(func(r *model.NetworkCreateRequest) { r.Label = "g"; r.FixedRangeV4 = "10.1.0.0/24"; r.DNS1 = "8.8.8" }), model.ErrInvalid, "dns1"},
		{"bad mtu", with(func(r *model.NetworkCreateRequest) { r.Label = "g"; r.FixedRangeV4 = "10.1.0.0/24"; r.MTU = 100 }), model.ErrInvalid, "mtu"},
		{"new ones overlap", with(func(r *model.NetworkCreateRequest) {
			r.Label = "g"
			r.FixedRangeV4 = "10.1.0.0/24"
			r.NumNetworks = 2
			r.NetworkSize = 128
			r.Gateway = ""
		}), 0, ""},
	}
	eachEngine(t, func(t *testing.T, st *store.Store) {
		m := newManager(t, st, nil)
		mustNetwork(t, m, base)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := dump(t, st)
				_, err := m.CreateNetworks(ctx, c.req)
				if c.kind == 0 {
					if err != nil {
						t.Fatalf("unexpected error: %v", err)
					}
					return
				}
				if model.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("got %v (kind %d), want kind %d with %q", err, model.KindOf(err), c.kind, c.msg)
				}
				if after := dump(t, st); after != before {
					t.Fatalf("a rejected request changed the store")
				}
			})
		}
	})
}

func TestCreateNetworksCarving(t *testing.T) {
	ctx := context.Background()
	eachEngine(t, func(t *testing.T, st *store.Store) {
		m := newManager(t, st, nil)
		ns := mustNetwork(t, m, model.NetworkCreateRequest{Label: "p", FixedRangeV4: "10.0.0.0/16", NumNetworks: 3, NetworkSize: 64, Bridge: "br100"})
		if len(ns) != 3 || ns[0].Label != "p_0" || ns[2].CIDR != netip.MustParsePrefix("10.0.0.128/26") ||
			ns[1].Gateway != netip.MustParseAddr("10.0.0.65") || ns[1].Broadcast != netip.MustParseAddr("10.0.0.127") ||
			ns[1].DHCPStart != netip.MustParseAddr("10.0.0.66") || ns[1].Host != "net1" || ns[1].Kind != model.KindFlatDHCP {
			t.Fatalf("carved %+v", ns)
		}
		// Default size: a /24 out of a larger range.
		ns = mustNetwork(t, m, model.NetworkCreateRequest{Label: "d", FixedRangeV4: "10.1.0.0/16", Bridge: "br101"})
		if ns[0].CIDR != netip.MustParsePrefix("10.1.0.0/24") {
			t.Fatalf("default size gave %s", ns[0].CIDR)
		}
		for _, c := range []struct {
			a        string
			reserved bool
		}{{"10.0.0.64", true}, {"10.0.0.65", true}, {"10.0.0.66", false}, {"10.0.0.127", true}} {
			f, err := m.GetFixedIP(ctx, netip.MustParseAddr(c.a))
			if err != nil || f.Reserved != c.reserved {
				t.Fatalf("%s reserved=%v err=%v, want %v", c.a, f.Reserved, err, c.reserved)
			}
		}
		// A /16 with every row, fast.
		start := time.Now()
		mustNetwork(t, m, model.NetworkCreateRequest{Label: "big", FixedRangeV4: "10.2.0.0/16", NetworkSize: 65536, Bridge: "br102"})
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("creating a /16 took %v", d)
		}
		t.Logf("/16 created in %v", time.Since(start))
		if _, err := m.GetFixedIP(ctx, netip.MustParseAddr("10.2.255.254")); err != nil {
			t.Fatal(err)
		}
		if _, err := m.GetFixedIP(ctx, netip.MustParseAddr("10.3.0.1")); !model.IsKind(err, model.ErrNotFound) {
			t.Fatalf("address outside any network: %v", err)
		}
		// Reservation rules.
		if err := m.SetFixedIPReserved(ctx, netip.MustParseAddr("10.0.0.65"), false); !model.IsKind(err, model.ErrInvalid) {
			t.Fatalf("unreserving a gateway: %v", err)
		}
		if err := m.SetFixedIPReserved(ctx, netip.MustParseAddr("10.0.0.70"), true); err != nil {
			t.Fatal(err)
		}
		// Delete by label; refused while in use.
		d, err := m.BootInstance(ctx, admin, model.BootRequest{Hostname: "vm1", Host: "c1", ProjectID: "p1", Network: "big"})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.DeleteNetwork(ctx, "big"); !model.IsKind(err, model.ErrConflict) {
			t.Fatalf("delete in use: %v", err)
		}
		if err := m.DeleteInstance(ctx, admin, d.UUID); err != nil {
			t.Fatal(err)
		}
		if err := m.DeleteNetwork(ctx, "big"); !model.IsKind(err, model.ErrConflict) {
			t.Fatalf("delete while the address awaits disassociation: %v", err)
		}
		if err := m.DeleteNetwork(ctx, "p_0"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.GetNetwork(ctx, admin, "p_0"); !model.IsKind(err, model.ErrNotFound) {
			t.Fatalf("deleted network: %v", err)
		}
	})
}
