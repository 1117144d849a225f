package manager_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"testing"

	"novanet/internal/api"
	"novanet/internal/client"
	"novanet/internal/model"
	"novanet/internal/store"
)

// TestHostStateDeltaReplay replays random sequences of API changes on a
// real server over HTTP and checks, after each, that every host's cached
// state with the watch's delta applied is JSON-equal to the whole state
// fetched afresh: hosts of a single-host network (its network host and
// computes), of a multi-host network, and one in both. Two servers share
// the store, as controllers do: each change goes to one of them at
// random, each watch and fetch to one of them at random.
func TestHostStateDeltaReplay(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			url := e.url(t)
			var servers []replayServer
			for range 2 {
				st, err := store.Open(context.Background(), url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				servers = append(servers, newReplayServer(t, st))
			}
			for seed := range uint64(3) {
				t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { replayDeltas(t, servers, seed) })
			}
		})
	}
}

type replayServer struct{ admin, proj *client.Client }

func newReplayServer(t *testing.T, st *store.Store) replayServer {
	m := newManager(t, st, nil)
	srv := httptest.NewServer(api.New(m, api.Options{
		Tokens: api.StaticTokens(map[string]api.Principal{"admin-token-0123456789": {Role: api.RoleAdmin, ProjectID: "admin"},
			"proj-token-0123456789": {Role: api.RoleProject, ProjectID: "p1"}}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	t.Cleanup(srv.Close)
	return replayServer{admin: client.New(srv.URL, "admin-token-0123456789"), proj: client.New(srv.URL, "proj-token-0123456789")}
}

func replayDeltas(t *testing.T, servers []replayServer, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 42))
	admin, proj := servers[0].admin, servers[0].proj
	pick := func() {
		s := servers[rng.IntN(len(servers))]
		admin, proj = s.admin, s.proj
	}

	sfx := fmt.Sprint(seed)
	if _, err := admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "single" + sfx, FixedRangeV4: fmt.Sprintf("10.%d.1.0/24", seed+10), Bridge: "br100", Host: "net1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "multi" + sfx, FixedRangeV4: fmt.Sprintf("10.%d.2.0/24", seed+10), Bridge: "br101", MultiHost: new(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateFloatingRange(ctx, model.FloatingRangeRequest{IPRange: fmt.Sprintf("203.0.113.%d/29", 8*seed)}); err != nil {
		t.Fatal(err)
	}
	web, err := proj.CreateSecurityGroup(ctx, "web"+sfx, "")
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"net1", "c1", "c2", "c3"}
	cached := map[string]model.HostState{}
	for _, h := range hosts {
		if cached[h], err = admin.HostState(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	var instances []model.InstanceDetail
	var rules []int64
	var floatings []netip.Addr
	fulls, partial := 0, 0
	ops := []struct {
		name string
		do   func() error
	}{
		{"boot", func() error {
			net := []string{"single" + sfx, "multi" + sfx}[rng.IntN(2)]
			groups := [][]string{nil, {"web" + sfx}, {"default", "web" + sfx}}[rng.IntN(3)]
			d, err := proj.BootInstance(ctx, model.BootRequest{Hostname: fmt.Sprintf("vm%d", len(instances)), Host: hosts[1+rng.IntN(3)],
				Network: net, SecurityGroups: groups, UserData: "u"})
			if err == nil {
				instances = append(instances, d)
			}
			return err
		}},
		{"delete", func() error {
			if len(instances) == 0 {
				return nil
			}
			i := rng.IntN(len(instances))
			err := proj.DeleteInstance(ctx, instances[i].UUID)
			instances = append(instances[:i], instances[i+1:]...)
			return err
		}},
		{"rule add", func() error {
			r := model.SecurityGroupRule{GroupID: web.ID, Protocol: "tcp", FromPort: 1 + rng.IntN(1000), ToPort: 2000}
			if rng.IntN(2) == 0 {
				r.SourceGroupID = web.ID
			} else {
				r.CIDR = netip.MustParsePrefix("198.51.100.0/24")
			}
			x, err := proj.CreateSecurityGroupRule(ctx, r)
			if err == nil {
				rules = append(rules, x.ID)
			}
			return ignoreKind(err, model.ErrConflict, model.ErrQuota)
		}},
		{"rule delete", func() error {
			if len(rules) == 0 {
				return nil
			}
			i := rng.IntN(len(rules))
			err := proj.DeleteSecurityGroupRule(ctx, rules[i])
			rules = append(rules[:i], rules[i+1:]...)
			return err
		}},
		{"membership", func() error {
			if len(instances) == 0 {
				return nil
			}
			inst := instances[rng.IntN(len(instances))]
			if err := proj.AddInstanceSecurityGroup(ctx, inst.UUID, "web"+sfx); model.KindOf(err) != model.ErrConflict {
				return err
			}
			return proj.RemoveInstanceSecurityGroup(ctx, inst.UUID, "web"+sfx)
		}},
		{"floating associate", func() error {
			if len(instances) == 0 {
				return nil
			}
			f, err := proj.AllocateFloatingIP(ctx, "")
			if model.KindOf(err) == model.ErrExhausted || model.KindOf(err) == model.ErrQuota {
				return nil
			}
			if err != nil {
				return err
			}
			floatings = append(floatings, f.Address)
			inst := instances[rng.IntN(len(instances))]
			return proj.AssociateFloatingIP(ctx, f.Address, inst.UUID, netip.Addr{})
		}},
		{"floating disassociate", func() error {
			if len(floatings) == 0 {
				return nil
			}
			i := rng.IntN(len(floatings))
			a := floatings[i]
			floatings = append(floatings[:i], floatings[i+1:]...)
			if err := proj.DisassociateFloatingIP(ctx, a, ""); err != nil && model.KindOf(err) != model.ErrConflict && model.KindOf(err) != model.ErrNotFound {
				return err
			}
			return ignoreKind(proj.ReleaseFloatingIP(ctx, a.String()), model.ErrNotFound)
		}},
		{"network create", func() error {
			_, err := admin.CreateNetworks(ctx, model.NetworkCreateRequest{Label: fmt.Sprintf("extra%s-%d", sfx, rng.Uint32()),
				FixedRangeV4: fmt.Sprintf("10.%d.%d.0/24", seed+100, rng.IntN(250)), Bridge: "br102", Host: hosts[rng.IntN(2)]})
			return ignoreKind(err, model.ErrConflict)
		}},
	}
	for step := range 80 {
		pick()
		op := ops[rng.IntN(len(ops))]
		if op.name == "network create" && rng.IntN(4) != 0 {
			op = ops[0] // rarer: each one sends every host its whole state
		}
		if err := op.do(); err != nil {
			t.Fatalf("step %d %s: %v", step, op.name, err)
		}
		for _, h := range hosts {
			pick()
			d, err := admin.WatchHost(ctx, h, cached[h].Revision, 0)
			if err != nil {
				t.Fatalf("step %d %s: watch %s: %v", step, op.name, h, err)
			}
			if d.Full != nil {
				fulls++
			} else if !d.Empty() {
				partial++
			}
			next, err := cached[h].Apply(d)
			if err != nil {
				t.Fatalf("step %d %s: host %s: apply %+v: %v", step, op.name, h, d, err)
			}
			pick()
			whole, err := admin.HostState(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(next)
			want, _ := json.Marshal(whole)
			if string(got) != string(want) {
				dj, _ := json.Marshal(d)
				t.Fatalf("step %d %s: host %s: cached state + delta differs from the whole state\ndelta: %s\n got: %s\nwant: %s", step, op.name, h, dj, got, want)
			}
			cached[h] = next
		}
	}
	if partial == 0 {
		t.Errorf("no partial delta in the replay (%d whole states): the change log was never used", fulls)
	}
	t.Logf("%d partial deltas, %d whole states", partial, fulls)
}

func ignoreKind(err error, kinds ...model.ErrorKind) error {
	for _, k := range kinds {
		if model.KindOf(err) == k {
			return nil
		}
	}
	return err
}
