// Package sysctl reads and writes the kernel settings of /proc/sys (and
// the few /sys files the link applier consults) in one network namespace,
// and applies a plan's sysctls: each is written only when the kernel's
// value differs, so a sync with nothing to do writes nothing.
package sysctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"novanet/internal/datapath/runner"
	"novanet/internal/plan"
)

// Path is the /proc/sys file of a dotted key ("net.ipv4.ip_forward").
func Path(key string) string { return "/proc/sys/" + strings.ReplaceAll(key, ".", "/") }

// Proc reads and writes kernel files in the named network namespace
// (empty: the current one). /proc/sys/net is per network namespace, and
// reading it for another namespace needs a process inside it, so a named
// namespace goes through Runner.
type Proc struct {
	Netns string
	// Runner runs the cat and sh that read and write in Netns; nil is
	// runner.Exec{Netns: Netns}.
	Runner runner.Runner
}

func (p Proc) runner() runner.Runner {
	if p.Runner != nil {
		return p.Runner
	}
	return runner.Exec{Netns: p.Netns}
}

// ReadFile returns the file's content without surrounding white space.
func (p Proc) ReadFile(ctx context.Context, path string) (string, error) {
	if p.Netns != "" {
		out, err := p.runner().Run(ctx, nil, "cat", path)
		return strings.TrimSpace(string(out)), err
	}
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// WriteFile writes value and a newline to the file.
func (p Proc) WriteFile(ctx context.Context, path, value string) error {
	if p.Netns != "" {
		_, err := p.runner().Run(ctx, nil, "sh", "-c", `printf '%s\n' "$1" > "$2"`, "sh", value, path)
		return err
	}
	return os.WriteFile(path, []byte(value+"\n"), 0o644)
}

// Applier writes a plan's sysctls. Use New.
type Applier struct {
	proc Proc
	// modules runs modprobe, in the host's namespace: modules are not
	// per namespace.
	modules runner.Runner
	log     *slog.Logger

	mu sync.Mutex // protects modprobed
	// modprobed: loading br_netfilter was tried (once per applier).
	modprobed bool
}

// New returns an applier over proc. modules runs modprobe (nil:
// runner.Exec{}, this host's namespace).
func New(proc Proc, modules runner.Runner, log *slog.Logger) *Applier {
	if modules == nil {
		modules = runner.Exec{}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Applier{proc: proc, modules: modules, log: log}
}

// Apply writes each sysctl whose value differs and returns what it
// changed, one description each. It goes on after a failing key and
// returns every failure.
func (a *Applier) Apply(ctx context.Context, sysctls []plan.Sysctl) ([]string, error) {
	var errs []error
	var changed []string
	for _, s := range sysctls {
		cur, err := a.read(ctx, s.Key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Multi-value keys read back tab-separated ("32768\t60999").
		if strings.Join(strings.Fields(cur), " ") == strings.Join(strings.Fields(s.Value), " ") {
			continue
		}
		if err := a.proc.WriteFile(ctx, Path(s.Key), s.Value); err != nil {
			errs = append(errs, fmt.Errorf("sysctl %s=%s: %w", s.Key, s.Value, err))
			continue
		}
		changed = append(changed, fmt.Sprintf("sysctl %s was %q: set %q", s.Key, cur, s.Value))
		a.log.Info("set sysctl", "key", s.Key, "value", s.Value)
	}
	return changed, errors.Join(errs...)
}

// read reads key, loading br_netfilter once when one of its keys is
// missing: they exist only once the module is loaded, and trying on
// every sync would run modprobe every 500 ms on a host without it.
func (a *Applier) read(ctx context.Context, key string) (string, error) {
	cur, err := a.proc.ReadFile(ctx, Path(key))
	if err == nil {
		return cur, nil
	}
	if !strings.HasPrefix(key, "net.bridge.") {
		return "", fmt.Errorf("sysctl %s: %w", key, err)
	}
	a.mu.Lock()
	try := !a.modprobed
	a.modprobed = true
	a.mu.Unlock()
	if try {
		if _, merr := a.modules.Run(ctx, nil, "modprobe", "br_netfilter"); merr != nil {
			a.log.Warn("modprobe br_netfilter failed", "err", merr)
		}
		cur, err = a.proc.ReadFile(ctx, Path(key))
	}
	if err != nil {
		return "", fmt.Errorf("sysctl %s does not exist: load the br_netfilter module (modprobe br_netfilter) or build it into the kernel: %w", key, err)
	}
	return cur, nil
}
