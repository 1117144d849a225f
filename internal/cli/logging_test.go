package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"novanet/internal/version"
)

// TestServeLogsStartAndStopAsJSON: with --log-format json every stderr
// line of serve is a JSON object; the first says it started (version,
// listen addresses, database engine), the last that it stopped.
func TestServeLogsStartAndStopAsJSON(t *testing.T) {
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte("admin-token-0123456789 admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	addrFile := filepath.Join(dir, "addr")
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--database", "sqlite://"+filepath.Join(dir, "db"),
		"--tokens_file", filepath.Join(dir, "tokens"), "--address_file", addrFile, "--log-format", "json", "--log-level", "info")
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	var addr []byte
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(addrFile); err == nil {
			addr = b
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if addr == nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("serve did not start:\n%s", stderr.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v:\n%s", err, stderr.String())
	}
	var lines []map[string]any
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		lines = append(lines, m)
	}
	if len(lines) < 2 {
		t.Fatalf("want start and stop lines, got %v", lines)
	}
	var start map[string]any
	for _, l := range lines {
		if l["msg"] == "novanet serve started" {
			start = l
		}
	}
	if start == nil || start["version"] != version.String() || start["database_engine"] != "sqlite" ||
		!strings.Contains(strings.Join(toStrings(start["listen"]), " "), string(addr)) {
		t.Errorf("start line = %v (address %s)", start, addr)
	}
	if last := lines[len(lines)-1]; last["msg"] != "novanet serve stopped" || last["level"] != "INFO" {
		t.Errorf("last line = %v, want the stop", last)
	}

	bad := exec.Command(bin, "serve", "--log-format", "xml", "--tokens_file", filepath.Join(dir, "tokens"))
	out, err := bad.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 && ee.ExitCode() != 2 || !strings.Contains(string(out), "log_format \"xml\" is unknown; use text or json") {
		t.Errorf("--log-format xml: %v %s", err, out)
	}
}

func toStrings(v any) []string {
	xs, _ := v.([]any)
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
