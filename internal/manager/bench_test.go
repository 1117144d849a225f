package manager_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"novanet/internal/manager"
	"novanet/internal/model"
	"novanet/internal/store"
)

// BenchmarkAllocateDeallocate boots and deletes one instance in a /16
// that already has N allocated addresses (pre-filled with SQL): the cost
// must not grow with N.
func BenchmarkAllocateDeallocate(b *testing.B) { benchAllocate(b, false) }

// BenchmarkAllocate times the boot (allocation) alone; the delete that
// keeps N constant runs with the timer stopped.
func BenchmarkAllocate(b *testing.B) { benchAllocate(b, true) }

func benchAllocate(b *testing.B, allocOnly bool) {
	ctx := context.Background()
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			for _, n := range []int{100, 10000, 60000} {
				b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
					st, err := store.Open(ctx, e.url(b))
					if err != nil {
						b.Fatal(err)
					}
					defer st.Close()
					m := newManager(b, st, func(o *manager.Options) { o.ForceDHCPRelease = true })
					ns := mustNetwork(b, m, model.NetworkCreateRequest{Label: "big", FixedRangeV4: "10.0.0.0/16", NetworkSize: 65536, Bridge: "br100"})
					_, err = st.DB().ExecContext(ctx, st.Rebind(`UPDATE fixed_ips SET allocated = TRUE, instance_uuid = 'prefill-' || CAST(id AS TEXT)
						WHERE id IN (SELECT id FROM fixed_ips WHERE network_id = ? AND NOT reserved ORDER BY id LIMIT ?)`), ns[0].ID, n)
					if err != nil {
						b.Fatal(err)
					}
					p := model.Scope{ProjectID: "p"}
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						d, err := m.BootInstance(ctx, p, model.BootRequest{Hostname: "vm", Host: "c1"})
						if err != nil {
							b.Fatal(err)
						}
						if allocOnly {
							b.StopTimer()
						}
						if err := m.DeleteInstance(ctx, p, d.UUID); err != nil {
							b.Fatal(err)
						}
						if allocOnly {
							b.StartTimer()
						}
					}
				})
			}
		})
	}
}

// BenchmarkBaselineHostLocal times the baseline in the same run:
// one IPAM ADD by the CNI host-local plugin (one file per address, and a
// walk over every file to look the container up) in a /16 with N
// addresses already allocated. The plugin is not in Debian and is not
// built by this repository: build containernetworking/plugins'
// plugins/ipam/host-local yourself and set NOVANET_HOSTLOCAL to it.
func BenchmarkBaselineHostLocal(b *testing.B) {
	bin := os.Getenv("NOVANET_HOSTLOCAL")
	if bin == "" {
		b.Skip("set NOVANET_HOSTLOCAL to a built CNI host-local plugin to time the baseline")
	}
	for _, n := range []int{100, 10000, 60000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			dataDir := b.TempDir()
			netDir := filepath.Join(dataDir, "bench")
			if err := os.MkdirAll(netDir, 0o755); err != nil {
				b.Fatal(err)
			}
			// The plugin's own on-disk format: a file per address holding
			// "<container id>\r\n<ifname>", and the last address handed out.
			last := netip.MustParseAddr("10.0.0.2") // .1 is the gateway the plugin skips
			a := last
			for i := range n {
				if err := os.WriteFile(filepath.Join(netDir, a.String()), []byte(fmt.Sprintf("prefill-%d\r\neth0", i)), 0o644); err != nil {
					b.Fatal(err)
				}
				last, a = a, a.Next()
			}
			if err := os.WriteFile(filepath.Join(netDir, "last_reserved_ip.0"), []byte(last.String()), 0o644); err != nil {
				b.Fatal(err)
			}
			conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"bench","type":"host-local","ipam":{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/16"}]],"dataDir":%q}}`, dataDir)
			call := func(command, id string) {
				cmd := exec.Command(bin)
				cmd.Env = []string{"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + id, "CNI_NETNS=/proc/self/ns/net", "CNI_NETNS_OVERRIDE=1", // the plugin refuses its own netns otherwise
					"CNI_IFNAME=eth0", "CNI_PATH=" + filepath.Dir(bin)}
				cmd.Stdin = strings.NewReader(conf)
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("host-local %s %s: %v\n%s", command, id, err, out)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id := fmt.Sprintf("bench-%d", i)
				call("ADD", id)
				b.StopTimer()
				call("DEL", id) // keeps N constant, untimed like the delete in BenchmarkAllocate
				b.StartTimer()
			}
		})
	}
}
