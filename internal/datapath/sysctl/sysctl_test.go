package sysctl

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"novanet/internal/plan"
)

// procFS plays a namespace's /proc/sys behind `cat` and the `sh -c
// printf` write, and the host's modprobe (which adds the keys of the
// module it loads).
type procFS struct {
	files   map[string]string
	modules map[string]map[string]string // module -> files it adds
	ran     []string
}

func (f *procFS) Run(_ context.Context, _ io.Reader, name string, args ...string) ([]byte, error) {
	f.ran = append(f.ran, strings.Join(append([]string{name}, args...), " "))
	switch {
	case name == "cat" && len(args) == 1:
		v, ok := f.files[args[0]]
		if !ok {
			return nil, errors.New("cat: " + args[0] + ": No such file or directory")
		}
		return []byte(v + "\n"), nil
	case name == "sh" && len(args) == 5:
		path := args[4]
		if _, ok := f.files[path]; !ok {
			return nil, errors.New("sh: " + path + ": No such file or directory")
		}
		f.files[path] = args[3]
		return nil, nil
	case name == "modprobe" && len(args) == 1:
		add, ok := f.modules[args[0]]
		if !ok {
			return nil, errors.New("modprobe: FATAL: Module " + args[0] + " not found")
		}
		for k, v := range add {
			f.files[k] = v
		}
		return nil, nil
	}
	return nil, errors.New("unexpected command " + name)
}

func (f *procFS) count(prefix string) int {
	n := 0
	for _, r := range f.ran {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func newFS() *procFS {
	return &procFS{files: map[string]string{
		"/proc/sys/net/ipv4/ip_forward":          "0",
		"/proc/sys/net/ipv4/ip_local_port_range": "32768\t60999",
	}, modules: map[string]map[string]string{
		"br_netfilter": {"/proc/sys/net/bridge/bridge-nf-call-iptables": "0"},
	}}
}

func TestApplyWritesOnlyWhatDiffers(t *testing.T) {
	fs := newFS()
	a := New(Proc{Netns: "nns-sysctl", Runner: fs}, fs, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	want := []plan.Sysctl{{Key: "net.ipv4.ip_forward", Value: "1"}, {Key: "net.ipv4.ip_local_port_range", Value: "32768 60999"}}
	changed, err := a.Apply(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed, []string{`sysctl net.ipv4.ip_forward was "0": set "1"`}) {
		t.Errorf("changed = %q; want only ip_forward (the port range reads back tab-separated and is equal)", changed)
	}
	if got := fs.files["/proc/sys/net/ipv4/ip_forward"]; got != "1" {
		t.Errorf("ip_forward = %q", got)
	}
	writes := fs.count("sh ")
	if changed, err := a.Apply(ctx, want); err != nil || len(changed) != 0 || fs.count("sh ") != writes {
		t.Errorf("second apply: changed %q, err %v, %d writes", changed, err, fs.count("sh ")-writes)
	}
}

func TestApplyLoadsBrNetfilterOnce(t *testing.T) {
	fs := newFS()
	a := New(Proc{Netns: "nns-sysctl", Runner: fs}, fs, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	want := []plan.Sysctl{{Key: "net.bridge.bridge-nf-call-iptables", Value: "1"}}
	if _, err := a.Apply(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got := fs.files["/proc/sys/net/bridge/bridge-nf-call-iptables"]; got != "1" {
		t.Errorf("bridge-nf-call-iptables = %q after loading the module", got)
	}

	// Without the module: a clear error, and modprobe is not run again
	// on every sync.
	fs = newFS()
	delete(fs.modules, "br_netfilter")
	a = New(Proc{Netns: "nns-sysctl", Runner: fs}, fs, slog.New(slog.DiscardHandler))
	for range 3 {
		_, err := a.Apply(ctx, want)
		if err == nil || !strings.Contains(err.Error(), "load the br_netfilter module") {
			t.Fatalf("err = %v, want one that says to load br_netfilter", err)
		}
	}
	if n := fs.count("modprobe "); n != 1 {
		t.Errorf("modprobe ran %d times, want once", n)
	}
}

func TestApplyGoesOnAfterAFailure(t *testing.T) {
	fs := newFS()
	a := New(Proc{Netns: "nns-sysctl", Runner: fs}, fs, slog.New(slog.DiscardHandler))
	_, err := a.Apply(context.Background(), []plan.Sysctl{{Key: "net.ipv4.no_such_key", Value: "1"}, {Key: "net.ipv4.ip_forward", Value: "1"}})
	if err == nil || !strings.Contains(err.Error(), "sysctl net.ipv4.no_such_key") {
		t.Errorf("err = %v, want one naming the unknown key", err)
	}
	if got := fs.files["/proc/sys/net/ipv4/ip_forward"]; got != "1" {
		t.Errorf("ip_forward = %q: the key after the failing one was not applied", got)
	}
}
