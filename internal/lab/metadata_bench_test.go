package lab_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"novanet/internal/lab"
)

// bootPaths are 30 metadata reads of a first boot: cloud-init's
// OpenStack source (versions, meta_data, network_data, vendor data, user
// data) and an EC2-style crawl of meta-data, as cirros and cloud-init's
// EC2 source make them.
var bootPaths = []string{
	"/openstack", "/openstack/latest/meta_data.json", "/openstack/latest/network_data.json",
	"/openstack/latest/vendor_data.json", "/openstack/latest/vendor_data2.json", "/openstack/latest/user_data",
	"/", "/2009-04-04/meta-data/instance-id", "/latest/meta-data/", "/latest/meta-data/instance-id",
	"/latest/meta-data/ami-id", "/latest/meta-data/ami-launch-index", "/latest/meta-data/ami-manifest-path",
	"/latest/meta-data/hostname", "/latest/meta-data/local-hostname", "/latest/meta-data/local-ipv4",
	"/latest/meta-data/public-hostname", "/latest/meta-data/public-ipv4", "/latest/meta-data/reservation-id",
	"/latest/meta-data/security-groups", "/latest/meta-data/instance-type", "/latest/meta-data/instance-action",
	"/latest/meta-data/placement/", "/latest/meta-data/placement/availability-zone",
	"/latest/meta-data/block-device-mapping/", "/latest/meta-data/block-device-mapping/ami",
	"/latest/meta-data/block-device-mapping/root", "/latest/meta-data/public-keys/",
	"/latest/meta-data/public-keys/0/openssh-key", "/latest/user-data",
}

// BenchmarkMetadataBootStorm boots 100 VMs (with user data and a key)
// across both computes, then has every VM fetch the 30 boot paths at
// once with one curl inside each guest (which, like cloud-init's
// requests session, keeps its connection open between requests). It reports how many were
// answered 200 and the p99 per request; the baseline in the same run is
// one VM alone. Single- and multi-host labs.
func BenchmarkMetadataBootStorm(b *testing.B) {
	requireLabB(b)
	if _, err := exec.LookPath("curl"); err != nil {
		b.Skip("needs curl (scripts/install-deps.sh)")
	}
	for _, multi := range []bool{false, true} {
		for _, n := range []int{1, 100} {
			b.Run(fmt.Sprintf("multihost=%t/vms=%d", multi, n), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					o := fastOptions()
					o.MultiHost = multi
					l := upWith(b, o)
					specs := make([]lab.VMSpec, n)
					for j := range specs {
						specs[j] = lab.VMSpec{Name: fmt.Sprintf("v%d", j), Host: []string{"compute-1", "compute-2"}[j%2],
							UserData: "#cloud-config\n", KeyName: "k", KeyData: "ssh-ed25519 AAAA k@lab"}
					}
					if _, err := l.BootMany(context.Background(), specs, 60*time.Second); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					lat, bad := storm(b, l, specs)
					b.StopTimer()
					sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
					b.ReportMetric(float64(len(lat)-bad), "answered")
					b.ReportMetric(float64(bad), "failed")
					b.ReportMetric(percentile(lat, 0.50).Seconds()*1000, "p50-ms")
					b.ReportMetric(percentile(lat, 0.99).Seconds()*1000, "p99-ms")
					b.ReportMetric(lat[len(lat)-1].Seconds()*1000, "max-ms")
					if err := l.Down(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// storm runs every VM's 30 requests concurrently and returns each
// request's time and how many were not 200.
func storm(b *testing.B, l *lab.Lab, specs []lab.VMSpec) ([]time.Duration, int) {
	var mu sync.Mutex
	var lat []time.Duration
	bad := 0
	var wg sync.WaitGroup
	for _, sp := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns, err := l.Namespace(sp.Name)
			if err != nil {
				b.Error(err)
				return
			}
			args := []string{"netns", "exec", ns, "curl", "-s", "-m", "10", "-w", "%{http_code} %{time_total}\n"}
			for _, p := range bootPaths {
				args = append(args, metadataURL+p, "-o", "/dev/null")
			}
			out, _ := exec.Command("ip", args...).Output()
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			mu.Lock()
			defer mu.Unlock()
			if len(lines) != len(bootPaths) {
				bad += len(bootPaths)
				return
			}
			for _, line := range lines {
				code, secs, _ := strings.Cut(line, " ")
				f, _ := strconv.ParseFloat(secs, 64)
				lat = append(lat, time.Duration(f*float64(time.Second)))
				if code != "200" {
					bad++
				}
			}
		}()
	}
	wg.Wait()
	if len(lat) == 0 {
		b.Fatal("no metadata request was answered")
	}
	return lat, bad
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// upWith brings a quiet lab with options o up for a benchmark.
func upWith(b *testing.B, o lab.Options) *lab.Lab {
	b.Helper()
	var r [3]byte
	_, _ = rand.Read(r[:])
	l, err := lab.Open("b"+hex.EncodeToString(r[:]), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Down(context.Background()) })
	if err := l.Up(context.Background(), bin, o); err != nil {
		b.Fatal(err)
	}
	return l
}
