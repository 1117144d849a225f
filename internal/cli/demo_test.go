package cli

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// quickTour returns the lines of the README's Quick tour block and of
// scripts/demo-api.sh's TOUR document.
func quickTour(t *testing.T) (readme, script []string) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	r := string(b)
	i := strings.Index(r, "## Quick tour")
	j := strings.Index(r[i:], "```sh\n")
	k := strings.Index(r[i+j+6:], "\n```")
	if i < 0 || j < 0 || k < 0 {
		t.Fatal("README.md has no ```sh block under ## Quick tour")
	}
	readme = strings.Split(r[i+j+6:i+j+6+k], "\n")
	b, err = os.ReadFile("../../scripts/demo-api.sh")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	a := strings.Index(s, "<<'TOUR'\n")
	z := strings.Index(s, "\nTOUR\n")
	if a < 0 || z < 0 {
		t.Fatal("scripts/demo-api.sh has no TOUR here-document")
	}
	return readme, strings.Split(s[a+len("<<'TOUR'\n"):z], "\n")
}

// TestDemoAPIScript runs scripts/demo-api.sh, which runs the README's Quick
// tour line by line, and checks that the README shows exactly those lines,
// so the tour cannot rot: build, tokens, a writable state path, serve on
// SQLite, network create, a boot, a floating IP allocated and associated
// by hostname, the lists.
func TestDemoAPIScript(t *testing.T) {
	readme, script := quickTour(t)
	if strings.Join(readme, "\n") != strings.Join(script, "\n") {
		t.Fatalf("README's Quick tour and scripts/demo-api.sh differ:\n--- README\n%s\n--- script\n%s", strings.Join(readme, "\n"), strings.Join(script, "\n"))
	}
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
	for _, line := range script {
		if !strings.Contains(s, "$ "+line+"\n") {
			t.Errorf("the demo did not show (run) %q", line)
		}
	}
	for _, want := range []string{"10.0.0.0/24", "associated 203.0.113.", `"label": "private"`} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "novanet: ") {
		t.Errorf("a tour command failed:\n%s", s)
	}
	// In the listing after the association, vm1 shows its floating IP.
	if !regexp.MustCompile(`(?m)^[0-9a-f-]{36}\s+vm1\s.*\s203\.0\.113\.\d+\s*$`).MatchString(s) {
		t.Errorf("instance list does not show vm1 with its floating IP:\n%s", s)
	}
}
