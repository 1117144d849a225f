package agent

import (
	"log/slog"
	"net/http"
	"net/netip"
	"testing"

	"novanet/internal/datapath/link"
	"novanet/internal/metadata"
	"novanet/internal/model"
	"novanet/internal/netnsdo"
	"novanet/internal/nettest"
)

type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nullWriter) WriteHeader(int)             {}

type statusWriter struct {
	h    http.Header
	code int
}

func (w *statusWriter) Header() http.Header         { return w.h }
func (w *statusWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *statusWriter) WriteHeader(c int)           { w.code = c }

// BenchmarkAgentHandlerCPU is the CPU per request of the agent's metadata
// path (cached host state, the requester's MAC read from a real neighbour
// table over netlink) beside a bare handler writing the same answer. The
// neighbour entry lives on a bridge in a throwaway namespace.
func BenchmarkAgentHandlerCPU(b *testing.B) {
	nettest.RequireRoot(b, "ip")
	ns := nettest.Netns(b, "nnmdbench")
	nettest.Run(b, ns, "ip", "link", "add", "br100", "type", "bridge")
	nettest.Run(b, ns, "ip", "link", "set", "br100", "up")
	nettest.Run(b, ns, "ip", "neigh", "replace", "10.0.0.3", "lladdr", "fa:16:3e:00:00:03", "dev", "br100", "nud", "reachable")
	var links *link.Links
	if err := netnsdo.Do(ns, func() error {
		var err error
		links, err = link.New(slog.New(slog.DiscardHandler))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	addr := netip.MustParseAddr("10.0.0.3")
	a := New(Config{Host: "compute-1", Logger: slog.New(slog.DiscardHandler)}, nil, nil, nil, nil)
	a.state = model.HostState{Host: "compute-1",
		Networks: []model.HostNetwork{{Network: model.Network{ID: 1, Bridge: "br100", Kind: model.KindFlatDHCP, CIDR: netip.MustParsePrefix("10.0.0.0/24")}}},
		Metadata: []model.InstanceMetadata{{UUID: "1a2b3c4d-0000-4000-8000-000000000003", Hostname: "vm1", Address: addr,
			MAC: "fa:16:3e:00:00:03", Network: model.Network{ID: 1}, UserData: "#!/bin/sh"}}}
	want := metadata.EC2InstanceID(a.state.Metadata[0].UUID)
	bare := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(want))
	})
	meta := metadata.New(&agentMetadata{a: a, neigh: links.NeighbourMAC}, metadata.Options{RatePerSecond: 1e12, RateBurst: 1 << 40})
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"agent-instance-id", meta}} {
		b.Run(c.name, func(b *testing.B) {
			r, _ := http.NewRequest("GET", "http://169.254.169.254/latest/meta-data/instance-id", nil)
			r.RemoteAddr = "10.0.0.3:41000"
			rec := &statusWriter{h: http.Header{}}
			c.h.ServeHTTP(rec, r)
			if rec.code != 0 && rec.code != 200 {
				b.Fatalf("%s answered %d", c.name, rec.code)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &nullWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					c.h.ServeHTTP(w, r)
				}
			})
		})
	}
}
