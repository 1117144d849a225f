package manager_test

import (
	"context"
	"net/netip"
	"testing"

	"novanet/internal/manager"
	"novanet/internal/model"
	"novanet/internal/store"
)

// TestMetadataFollowsTheAddress: the metadata source keeps built answers,
// but a delete and a boot of another instance on the same address are
// seen by the very next request, user data and key included; the host
// state of a multi-host gateway carries its local instances' metadata.
func TestMetadataFollowsTheAddress(t *testing.T) {
	ctx := context.Background()
	eachEngine(t, func(t *testing.T, st *store.Store) {
		m := newManager(t, st, func(o *manager.Options) { o.ForceDHCPRelease = true })
		mustNetwork(t, m, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/29", Bridge: "br100", MultiHost: new(true)})
		p1 := model.Scope{ProjectID: "p1"}
		addr := netip.MustParseAddr("10.0.0.5")
		src := m.NewMetadataSource()
		old, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "old", Host: "c1", FixedAddress: addr,
			UserData: "old secret", KeyName: "k", KeyData: "ssh-ed25519 OLD"})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 { // built once, then reused
			md, err := src.MetadataByAddress(ctx, addr)
			if err != nil || md.UUID != old.UUID || md.UserData != "old secret" || md.Gateway == md.Network.Gateway {
				t.Fatalf("old instance: %+v, %v (a multi-host gateway is its host's own address)", md, err)
			}
		}
		hs, err := m.HostState(ctx, "c1")
		if err != nil || len(hs.Metadata) != 1 || hs.Metadata[0].KeyData != "ssh-ed25519 OLD" {
			t.Fatalf("c1's host state metadata: %+v, %v", hs.Metadata, err)
		}
		if err := m.DeleteInstance(ctx, p1, old.UUID); err != nil {
			t.Fatal(err)
		}
		if md, err := src.MetadataByAddress(ctx, addr); !model.IsKind(err, model.ErrNotFound) {
			t.Fatalf("after delete: %+v, %v; want not found", md, err)
		}
		fresh, err := m.BootInstance(ctx, p1, model.BootRequest{Hostname: "fresh", Host: "c2", FixedAddress: addr})
		if err != nil {
			t.Fatal(err)
		}
		md, err := src.MetadataByAddress(ctx, addr)
		if err != nil || md.UUID != fresh.UUID || md.UserData != "" || md.KeyData != "" {
			t.Fatalf("after re-boot on %s: %+v, %v", addr, md, err)
		}
		if err := src.SetMetadataPassword(ctx, fresh.UUID, "pw"); err != nil {
			t.Fatal(err)
		}
		if err := src.SetMetadataPassword(ctx, fresh.UUID, "again"); !model.IsKind(err, model.ErrConflict) {
			t.Fatalf("second password: %v, want conflict", err)
		}
		if md, _ := src.MetadataByAddress(ctx, addr); md.Password != "pw" {
			t.Fatalf("password not seen at once: %q", md.Password)
		}
		if err := m.SetHostInstancePassword(ctx, "c1", fresh.UUID, "x"); !model.IsKind(err, model.ErrForbidden) {
			t.Fatalf("another host's agent setting the password: %v, want forbidden", err)
		}
	})
}
