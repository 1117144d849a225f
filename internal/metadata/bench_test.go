package metadata_test

import (
	"context"
	"net/http"
	"net/netip"
	"path/filepath"
	"testing"

	"novanet/internal/manager"
	"novanet/internal/metadata"
	"novanet/internal/model"
	"novanet/internal/store"
)

// nullWriter is the cheapest ResponseWriter, so the benchmarks measure the
// handlers, not a recorder.
type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nullWriter) WriteHeader(int)             {}

// BenchmarkHandlerCPU is the CPU per request of the metadata handler over
// serve's real source (manager over SQLite, the change-counter check per
// request) beside a bare net/http handler writing the same answer, without
// the network (bench/metadata-wrk.sh measures with it).
func BenchmarkHandlerCPU(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "novanet.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	o := manager.DefaultOptions()
	o.NetworkHost = "net1"
	m := manager.New(st, o)
	if _, err := m.CreateNetworks(ctx, model.NetworkCreateRequest{Label: "private", FixedRangeV4: "10.0.0.0/24", Bridge: "br100"}); err != nil {
		b.Fatal(err)
	}
	addr := netip.MustParseAddr("10.0.0.3")
	inst, err := m.BootInstance(ctx, model.Scope{ProjectID: "p1"}, model.BootRequest{Hostname: "vm1", Host: "c1", FixedAddress: addr, UserData: "#!/bin/sh"})
	if err != nil {
		b.Fatal(err)
	}
	want := metadata.EC2InstanceID(inst.UUID)
	bare := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(want))
	})
	meta := metadata.New(m.NewMetadataSource(), metadata.Options{RatePerSecond: 1e12, RateBurst: 1 << 40})
	for _, c := range []struct {
		name string
		h    http.Handler
		path string
	}{
		{"bare", bare, "/latest/meta-data/instance-id"},
		{"metadata-instance-id", meta, "/latest/meta-data/instance-id"},
		{"metadata-meta_data.json", meta, "/openstack/latest/meta_data.json"},
	} {
		b.Run(c.name, func(b *testing.B) {
			r, _ := http.NewRequest("GET", "http://169.254.169.254"+c.path, nil)
			r.RemoteAddr = "10.0.0.3:41000"
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
