package agent

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"novanet/internal/client"
	"novanet/internal/metadata"
	"novanet/internal/model"
)

// TestMetadataNeedsTheStatesMAC: the cached host state may still name a
// deleted instance for an address its successor already uses. The agent
// answers only when the neighbour table puts the requester at the MAC the
// state names, so the successor gets ErrUnavailable (503, retry), never
// the old instance's data.
func TestMetadataNeedsTheStatesMAC(t *testing.T) {
	addr := netip.MustParseAddr("10.0.0.5")
	a := New(Config{Host: "compute-1"}, nil, nil, nil, nil)
	a.state = model.HostState{Host: "compute-1", Metadata: []model.InstanceMetadata{
		{UUID: "old-instance", Address: addr, MAC: "fa:16:3e:00:00:01", Network: model.Network{Bridge: "br100"}, UserData: "old secrets"},
	}}
	kernel := map[netip.Addr]string{addr: "fa:16:3e:00:00:02"} // the successor's VIF
	neigh := func(dev string, a netip.Addr) (string, error) {
		if dev != "br100" {
			t.Errorf("neighbour lookup on %s, want the instance's bridge br100", dev)
		}
		mac, ok := kernel[a]
		if !ok {
			return "", errors.New("no neighbour")
		}
		return mac, nil
	}
	src := &agentMetadata{a: a, neigh: neigh}
	md, err := src.MetadataByAddress(context.Background(), addr)
	if !errors.Is(err, metadata.ErrUnavailable) {
		t.Fatalf("successor at the old address got %+v, %v; want ErrUnavailable", md, err)
	}
	delete(kernel, addr)
	if _, err := src.MetadataByAddress(context.Background(), addr); !errors.Is(err, metadata.ErrUnavailable) {
		t.Fatalf("unresolved neighbour: %v, want ErrUnavailable", err)
	}
	kernel[addr] = "FA:16:3E:00:00:01"
	if md, err := src.MetadataByAddress(context.Background(), addr); err != nil || md.UUID != "old-instance" {
		t.Fatalf("the state's own VIF: %+v, %v", md, err)
	}
	if _, err := src.MetadataByAddress(context.Background(), netip.MustParseAddr("10.0.0.6")); !model.IsKind(err, model.ErrNotFound) {
		t.Fatalf("an address no local instance has: %v, want not found", err)
	}
}

// TestMetadataPasswordWithoutAPI: a password POST on an agent whose API
// cannot be reached is ErrUnavailable with a message naming the API.
func TestMetadataPasswordWithoutAPI(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	a := New(Config{Host: "compute-1"}, nil, nil, nil, nil)
	src := &agentMetadata{a: a, api: client.New(url, "token")}
	err = src.SetMetadataPassword(context.Background(), "some-instance", "pw")
	if !errors.Is(err, metadata.ErrUnavailable) || !strings.Contains(err.Error(), "API") {
		t.Fatalf("password with the API down: %v", err)
	}
}
