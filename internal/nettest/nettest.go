// Package nettest gives tests and benchmarks throwaway network namespaces:
// named with a random suffix so they never collide with anything the test
// did not create, removed by exact name when the test ends. Nothing here
// touches the root namespace.
package nettest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// RequireRoot skips tb unless it runs as root with the named binaries on
// PATH. CI runs as root with everything installed, so these tests run there.
func RequireRoot(tb testing.TB, bins ...string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (network namespaces); CI runs it as root")
	}
	for _, b := range append([]string{"ip"}, bins...) {
		if _, err := exec.LookPath(b); err != nil {
			tb.Skipf("needs %s on PATH (scripts/install-deps.sh installs it)", b)
		}
	}
}

// Netns creates a network namespace named prefix-<random>, brings its
// loopback up and deletes it when tb ends.
func Netns(tb testing.TB, prefix string) string {
	tb.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := prefix + "-" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	tb.Cleanup(func() {
		// Processes still inside would keep the namespace alive.
		if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				_ = exec.Command("kill", "-9", pid).Run()
			}
		}
		_ = exec.Command("ip", "netns", "del", name).Run()
	})
	Run(tb, name, "ip", "link", "set", "lo", "up")
	return name
}

// Run runs a command inside ns and fails tb on error; it returns stdout.
func Run(tb testing.TB, ns string, args ...string) string {
	tb.Helper()
	out, err := Cmd(ns, args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		tb.Fatalf("in %s: %s: %v: %s", ns, strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// Cmd builds a command that runs inside ns.
func Cmd(ns string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
}
