package dhcpbridge

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkScriptEventCPU execs the real novanet-dhcpbridge for one `old`
// event against a live agent socket, as dnsmasq does on every renewal,
// and reports the CPU time the process used, beside /bin/true in the
// same run (the floor of a fork+exec).
func BenchmarkScriptEventCPU(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "novanet")
	if out, err := exec.Command("go", "build", "-o", bin, "novanet/cmd/novanet").CombinedOutput(); err != nil {
		b.Fatalf("build: %v: %s", err, out)
	}
	script := filepath.Join(dir, "novanet-dhcpbridge")
	if err := os.Symlink(bin, script); err != nil {
		b.Fatal(err)
	}
	startServer(b, &recorder{})
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"novanet-dhcpbridge", []string{script, "old", "fa:16:3e:00:00:01", "10.0.0.3", "vm1"}},
		{"bin-true-baseline", []string{"/bin/true", "old", "fa:16:3e:00:00:01", "10.0.0.3", "vm1"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				cmd := exec.Command(c.argv[0], c.argv[1:]...)
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/event")
		})
	}
}
