package cli

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestDemoAPIScript runs scripts/demo-api.sh, the walk-through the README's
// quick tour shows, so the tour cannot rot: serve on SQLite, network
// create, boots, a floating IP allocated and associated, the lists.
func TestDemoAPIScript(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go toolchain not on PATH: the demo builds novanet")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed: the demo is a bash script")
	}
	out, err := exec.Command("bash", "../../scripts/demo-api.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/demo-api.sh: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"$ novanet network create", "10.0.0.0/24", "$ novanet instance boot vm1", "associated 203.0.113.", "$ novanet instance list"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	// In the listing after the association, vm1 shows its floating IP.
	if !regexp.MustCompile(`(?m)^[0-9a-f-]{36}\s+vm1\s.*\s203\.0\.113\.\d+\s*$`).MatchString(s) {
		t.Errorf("instance list does not show vm1 with its floating IP:\n%s", s)
	}
}
