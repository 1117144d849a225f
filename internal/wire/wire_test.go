package wire

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"

	"novanet/internal/model"
)

// through encodes v as the server does and decodes it as the client does.
func through[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return out
}

func TestModelRoundTrip(t *testing.T) {
	for _, f := range []model.FloatingIP{
		{ID: 1, Address: netip.MustParseAddr("203.0.113.1"), Pool: "nova"},
		{ID: 2, Address: netip.MustParseAddr("203.0.113.2"), Pool: "nova", Interface: "eth0", ProjectID: "p",
			FixedAddress: netip.MustParseAddr("10.0.0.3"), InstanceUUID: "i", Host: "h"},
	} {
		if got := through(t, NewFloatingIP(f)).Model(); got != f {
			t.Errorf("floating IP %+v read back as %+v", f, got)
		}
		if got := through(t, NewBulkFloatingIP(f)).Model(); got != f {
			t.Errorf("bulk floating IP %+v read back as %+v", f, got)
		}
	}
	g := model.SecurityGroup{ID: 2, Name: "web", Description: "d", ProjectID: "p", Rules: []model.SecurityGroupRule{
		{ID: 1, GroupID: 2, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("192.0.2.0/24")},
		{ID: 2, GroupID: 2, Protocol: "icmp", FromPort: -1, ToPort: -1, SourceGroupID: 2},
	}}
	if got := through(t, NewSecurityGroup(g, nil)).Model(); !reflect.DeepEqual(got, g) {
		t.Errorf("group %+v read back as %+v", g, got)
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	b, _ := json.Marshal(NewSecurityGroup(model.SecurityGroup{ID: 1, Name: "default"}, nil))
	if want := `{"description":"","id":1,"name":"default","rules":[],"tenant_id":""}`; string(b) != want {
		t.Errorf("rule-less group = %s, want %s", b, want)
	}
	b, _ = json.Marshal(FloatingIPList{})
	if want := `{"floating_ips":[]}`; string(b) != want {
		t.Errorf("empty list = %s, want %s", b, want)
	}
}
