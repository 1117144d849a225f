package model

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// randomHostState draws a host state shaped as the server sends it (every
// list present, in the state's sort orders) from small key spaces, so that
// two draws share most keys and differ in a few entries.
func randomHostState(r *rand.Rand, rev int64) HostState {
	hs := HostState{Host: "compute1", Revision: rev, Networks: []HostNetwork{}, FloatingIPs: []HostFloatingIP{}, SecurityGroups: []HostSecurityGroup{}}
	hs.Options = ClusterOptions{DHCPDomain: "novalocal", DHCPLeaseTime: 120, AllowSameNetTraffic: r.IntN(4) != 0, FixedRanges: []netip.Prefix{}}
	for n := 1; n <= 4; n++ {
		hs.Options.FixedRanges = append(hs.Options.FixedRanges, netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/16", n)))
	}
	macShift := r.IntN(3)
	for id := int64(1); id <= 4; id++ {
		if r.IntN(5) == 0 {
			continue
		}
		n := HostNetwork{
			Network:   Network{ID: id, UUID: fmt.Sprintf("net-%d", id), Label: "net", Kind: KindFlatDHCP, CIDR: netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/16", id)), Bridge: fmt.Sprintf("br%d", id), MTU: []int{0, 1500}[r.IntN(2)], CreatedAt: time.Unix(1700000000, 0).UTC()},
			Instances: []HostInstance{}, DHCPHosts: []DHCPHost{}, Releases: []DHCPRelease{},
		}
		if r.IntN(2) == 0 {
			n.BridgeAddress, n.ServesDHCP, n.NAT = netip.MustParseAddr(fmt.Sprintf("10.%d.0.1", id)), true, true
			n.DHCPServer = n.BridgeAddress
		}
		for i := 2; i < 14; i++ {
			if r.IntN(3) == 0 {
				continue
			}
			addr := netip.MustParseAddr(fmt.Sprintf("10.%d.0.%d", id, i))
			mac := fmt.Sprintf("fa:16:3e:%02x:00:%02x", id, (i+macShift)%14)
			groups := []int64{}
			for g := int64(1); g <= 3; g++ {
				if r.IntN(3) == 0 {
					groups = append(groups, g)
				}
			}
			n.Instances = append(n.Instances, HostInstance{UUID: fmt.Sprintf("uuid-%d-%d", id, i), VIFID: id*100 + int64(i),
				Hostname: fmt.Sprintf("vm-%d", r.IntN(3)), ProjectID: "p", Address: addr, MAC: mac, Device: fmt.Sprintf("vnet%d", i), SecurityGroups: groups})
			if n.ServesDHCP {
				n.DHCPHosts = append(n.DHCPHosts, DHCPHost{MAC: mac, Hostname: fmt.Sprintf("vm-%d", r.IntN(3)), Address: addr})
			}
			for k := 0; k < 2; k++ {
				if r.IntN(6) != 0 {
					continue
				}
				// Releases may share an address (an old lease beside a
				// new one): ordered by address, then MAC.
				n.Releases = append(n.Releases, DHCPRelease{MAC: fmt.Sprintf("fa:16:3e:ff:%02x:%02x", id, r.IntN(4)), Address: addr})
			}
		}
		slices.SortFunc(n.Releases, func(a, b DHCPRelease) int {
			if c := a.Address.Compare(b.Address); c != 0 {
				return c
			}
			return strings.Compare(a.MAC, b.MAC)
		})
		n.Releases = slices.CompactFunc(n.Releases, func(a, b DHCPRelease) bool { return a == b })
		hs.Networks = append(hs.Networks, n)
	}
	for i := 1; i < 8; i++ {
		if r.IntN(2) == 0 {
			hs.FloatingIPs = append(hs.FloatingIPs, HostFloatingIP{Address: netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", i)),
				FixedAddress: netip.MustParseAddr(fmt.Sprintf("10.1.0.%d", 2+r.IntN(10))), InstanceUUID: "u"})
		}
	}
	for id := int64(1); id <= 4; id++ {
		if r.IntN(4) == 0 {
			continue
		}
		g := HostSecurityGroup{SecurityGroup: SecurityGroup{ID: id, ProjectID: "p", Name: fmt.Sprintf("g%d", id), Rules: []SecurityGroupRule{}}, Members: []netip.Addr{}}
		for k := 0; k < r.IntN(3); k++ {
			g.Rules = append(g.Rules, SecurityGroupRule{ID: id*10 + int64(k), GroupID: id, Protocol: "tcp", FromPort: 20 + r.IntN(3), ToPort: 22, SourceGroupID: int64(r.IntN(3))})
		}
		for i := 2; i < 14; i++ {
			if r.IntN(2) == 0 {
				g.Members = append(g.Members, netip.MustParseAddr(fmt.Sprintf("10.%d.0.%d", 1+i%2, i)))
			}
		}
		slices.SortFunc(g.Members, func(a, b netip.Addr) int { return a.Compare(b) })
		hs.SecurityGroups = append(hs.SecurityGroups, g)
	}
	for i := 2; i < 10; i++ {
		if r.IntN(2) == 0 {
			hs.Metadata = append(hs.Metadata, InstanceMetadata{UUID: fmt.Sprintf("uuid-1-%d", i), Hostname: fmt.Sprintf("vm-%d", r.IntN(2)),
				Address: netip.MustParseAddr(fmt.Sprintf("10.1.0.%d", i)), MAC: fmt.Sprintf("fa:16:3e:01:00:%02x", (i+macShift)%14),
				SecurityGroups: []string{"default"}, DNS: []netip.Addr{}, Network: Network{ID: 1}})
		}
	}
	return hs
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestApplyDiffRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		old := randomHostState(r, int64(10+i))
		new := randomHostState(r, int64(11+i))
		oldJSON, newJSON := mustJSON(t, old), mustJSON(t, new)
		d := Diff(old, new)
		if mustJSON(t, old) != oldJSON || mustJSON(t, new) != newJSON {
			t.Fatalf("draw %d: Diff modified its inputs", i)
		}
		deltaJSON := mustJSON(t, d)
		got, err := old.Apply(d)
		if err != nil {
			t.Fatalf("draw %d: %v", i, err)
		}
		if mustJSON(t, old) != oldJSON || mustJSON(t, d) != deltaJSON {
			t.Fatalf("draw %d: Apply modified its inputs", i)
		}
		if g := mustJSON(t, got); g != newJSON {
			t.Fatalf("draw %d: old.Apply(Diff(old, new)) differs from new\n got %s\nwant %s\ndelta %s", i, g, newJSON, deltaJSON)
		}
		// The delta as the agent receives it: through JSON.
		var wire HostStateDelta
		if err := json.Unmarshal([]byte(deltaJSON), &wire); err != nil {
			t.Fatal(err)
		}
		got, err = old.Apply(wire)
		if err != nil {
			t.Fatalf("draw %d: %v", i, err)
		}
		if g := mustJSON(t, got); g != newJSON {
			t.Fatalf("draw %d: the decoded delta applied differs from new\n got %s\nwant %s", i, g, newJSON)
		}
		if same := Diff(new, new); !same.Empty() || same.From != new.Revision || same.To != new.Revision {
			t.Fatalf("draw %d: Diff(s, s) = %s, want an empty delta", i, mustJSON(t, same))
		}
	}
}

func TestApplyRefusesAForeignDelta(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	s := randomHostState(r, 7)
	before := mustJSON(t, s)
	for _, d := range []HostStateDelta{
		{Host: s.Host, From: 6, To: 8},
		{Host: "compute2", From: 7, To: 8},
		{Host: s.Host, From: 7, To: 6},
	} {
		if _, err := s.Apply(d); err == nil || !strings.Contains(err.Error(), "whole state") {
			t.Errorf("Apply(%+v) = %v, want an error that says to fetch the whole state", d, err)
		}
	}
	full := randomHostState(r, 3)
	full.Host = "compute2"
	got, err := s.Apply(HostStateDelta{Host: "compute2", From: 1, To: 3, Full: &full})
	if err != nil || mustJSON(t, got) != mustJSON(t, full) {
		t.Errorf("a full delta: got %v, want the full state", err)
	}
	if mustJSON(t, s) != before {
		t.Error("Apply modified the state")
	}
}

func TestApplyOneMoreInstance(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	s := randomHostState(r, 1)
	for len(s.Networks) == 0 {
		s = randomHostState(r, 1)
	}
	n := s.Networks[0]
	add := HostInstance{UUID: "new", Address: netip.MustParseAddr(fmt.Sprintf("10.%d.0.200", n.Network.ID)), MAC: "fa:16:3e:aa:bb:cc", SecurityGroups: []int64{}}
	d := HostStateDelta{Host: s.Host, From: 1, To: 2, Networks: []HostNetworkDelta{{Network: n.Network, BridgeAddress: n.BridgeAddress,
		ServesDHCP: n.ServesDHCP, NAT: n.NAT, DHCPServer: n.DHCPServer, Instances: []HostInstance{add}}}}
	got, err := s.Apply(d)
	if err != nil {
		t.Fatal(err)
	}
	gi := got.Networks[0].Instances
	if len(gi) != len(n.Instances)+1 || gi[len(gi)-1].UUID != "new" {
		t.Fatalf("instances after one more: %+v", gi)
	}
	if len(s.Networks[0].Instances) != len(n.Instances) {
		t.Fatal("Apply modified the state's instances")
	}
	if len(got.Networks) > 1 && len(s.Networks[1].Instances) > 0 && &got.Networks[1].Instances[0] != &s.Networks[1].Instances[0] {
		t.Error("an unchanged network's instances were copied, not shared")
	}
}
