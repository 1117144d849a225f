package plan

import (
	"net/netip"
	"novanet/internal/model"
	"slices"
	"testing"
)

func buildFW(t *testing.T, mutate func(st *model.HostState)) Firewall {
	t.Helper()
	st := groupsState()
	if mutate != nil {
		mutate(&st)
	}
	pl, err := Build(st, computeOptions("compute-1", "192.168.56.201"))
	if err != nil {
		t.Fatal(err)
	}
	return pl.Firewall
}

func TestRevocations(t *testing.T) {
	base := buildFW(t, nil)
	cases := []struct {
		name   string
		mutate func(st *model.HostState)
		want   []Revocation
	}{
		{"nothing changed", func(st *model.HostState) {}, nil},
		{"a member joins", func(st *model.HostState) {
			st.SecurityGroups[0].Members = append(st.SecurityGroups[0].Members, a("10.0.0.99"))
		}, nil},
		{"tcp 22 rule removed from web", func(st *model.HostState) {
			st.SecurityGroups[0].Rules = slices.Delete(st.SecurityGroups[0].Rules, 0, 1)
		}, []Revocation{
			// 10.0.0.3 keeps tcp 22 through group db's copy of the rule
			{Proto: "tcp", Dst: a("10.0.0.2"), DstPort: 22},
		}},
		{"member 10.0.0.7 leaves web", func(st *model.HostState) {
			st.SecurityGroups[0].Members = []netip.Addr{a("10.0.0.2"), a("10.0.0.3")}
		}, []Revocation{{Src: a("10.0.0.7")}}},
		{"instance 10.0.0.2 deleted", func(st *model.HostState) {
			st.Networks[0].Instances = st.Networks[0].Instances[1:]
		}, []Revocation{{Src: a("10.0.0.2")}, {Dst: a("10.0.0.2")}}},
		{"port range rule removed", func(st *model.HostState) {
			st.SecurityGroups[0].Rules = slices.Delete(st.SecurityGroups[0].Rules, 1, 2)
		}, []Revocation{{Proto: "tcp", Dst: a("10.0.0.2")}, {Proto: "tcp", Dst: a("10.0.0.3")}}},
		{"allow_same_net_traffic turned off", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			old, new := base, base
			if c.mutate != nil {
				new = buildFW(t, c.mutate)
			} else {
				// from a plan with same-net traffic allowed to one without
				old = buildFW(t, func(st *model.HostState) { st.Options.AllowSameNetTraffic = true })
				c.want = []Revocation{{Dst: a("10.0.0.2")}, {Dst: a("10.0.0.3")}}
			}
			if got := Revocations(old, new); !slices.Equal(got, c.want) {
				t.Errorf("revocations:\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}
