package dnsmasq_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"novanet/internal/datapath/dnsmasq"
	"novanet/internal/model"
)

// TestHostsWatchRepairs: with the hosts watch running (each notification
// followed by an Apply, as the agent does), a removed entry, an edited
// entry and the whole removed directory are repaired within a second; a
// recreated directory gets dnsmasq reloaded so new entries are served
// again; dnsmasq logs to its own file.
func TestHostsWatchRepairs(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := dnsmasq.New(nil, r.dir)
	s.Netns = r.srv
	t.Cleanup(func() { _ = s.Apply(context.Background(), nil) })
	h1 := model.DHCPHost{MAC: mac1, Hostname: "vm1", Address: a("10.0.0.3")}
	h2 := model.DHCPHost{MAC: mac2, Hostname: "vm2", Address: a("10.0.0.4")}
	// mu serializes the applies (the watch's and the test's own) with
	// the test's reads of the supervisor's counters.
	var mu sync.Mutex
	d := r.dnsmasqPlan(t, h1, h2)
	apply := func() error { mu.Lock(); defer mu.Unlock(); return s.Apply(ctx, d) }
	counters := func() (reloads, starts int64) { mu.Lock(); defer mu.Unlock(); return s.Reloads(), s.Starts() }
	must(t, apply())
	s.TakeChanges()
	go func() {
		_ = s.WatchHosts(ctx, func(why string) {
			if err := apply(); err != nil && ctx.Err() == nil {
				t.Logf("apply after %q: %v", why, err)
			}
		})
	}()
	time.Sleep(200 * time.Millisecond)
	dir := d[0].HostsDir
	f1, f2 := filepath.Join(dir, d[0].Hosts[0].FileName), filepath.Join(dir, d[0].Hosts[1].FileName)
	restored := func(what string, f, line string) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			b, err := os.ReadFile(f)
			if err == nil && strings.TrimSpace(string(b)) == line {
				return time.Since(start)
			}
			if time.Since(start) > 3*time.Second {
				t.Fatalf("%s: %s not restored (%q, %v)", what, f, b, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	must(t, os.Remove(f1))
	t.Logf("removed entry restored in %s", restored("removed entry", f1, d[0].Hosts[0].Line))
	reloads, _ := counters()
	must(t, os.WriteFile(f2, []byte("fa:16:3e:00:00:02,evil,10.0.0.99\n"), 0o644))
	t.Logf("edited entry restored in %s", restored("edited entry", f2, d[0].Hosts[1].Line))
	waitFor(t, "a reload after the edit", func() bool { n, _ := counters(); return n > reloads })
	if got := r.lease(t, mac2); !strings.HasPrefix(got, "10.0.0.4 ") {
		t.Errorf("vm2 after the edit was repaired got %q, want 10.0.0.4", got)
	}

	_, starts := counters()
	// Moved away whole (rm -rf races with the repair writing entries
	// back into it).
	must(t, os.Rename(dir, dir+".gone"))
	must(t, os.RemoveAll(dir+".gone"))
	t.Logf("removed directory restored in %s", restored("removed directory", f1, d[0].Hosts[0].Line))
	restored("removed directory", f2, d[0].Hosts[1].Line)
	waitFor(t, "a restart after the directory came back", func() bool { _, n := counters(); return n > starts })
	time.Sleep(300 * time.Millisecond)
	if _, n := counters(); n != starts+1 {
		t.Errorf("the recreated directory restarted dnsmasq %d times, want once", n-starts)
	}
	if ch := s.TakeChanges(); len(ch) == 0 {
		t.Error("repairs without change descriptions")
	} else {
		t.Logf("changes: %q", ch)
	}
	// A new instance after the directory came back: dnsmasq must see its
	// file, so its inotify watch is on the new directory.
	const mac3 = "fa:16:3e:00:00:03"
	next := r.dnsmasqPlan(t, h1, h2, model.DHCPHost{MAC: mac3, Hostname: "vm3", Address: a("10.0.0.5")})
	mu.Lock()
	d = next
	mu.Unlock()
	reloads, _ = counters()
	must(t, apply())
	if got := r.lease(t, mac3); !strings.HasPrefix(got, "10.0.0.5 ") {
		t.Errorf("a new VM after the directory was recreated got %q, want 10.0.0.5", got)
	}
	if n, _ := counters(); n != reloads {
		t.Errorf("adding a host reloaded dnsmasq")
	}
	b, err := os.ReadFile(d[0].LogFile)
	if err != nil || !strings.Contains(string(b), "dnsmasq") {
		t.Errorf("dnsmasq's own log %s: %q, %v", d[0].LogFile, b, err)
	}
}
