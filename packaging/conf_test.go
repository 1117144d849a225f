package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"novanet/internal/config"
)

var commentedOption = regexp.MustCompile(`^#([a-z0-9_]+) =(.*)$`)

// exampleOptions returns the commented options of novanet.conf by section.
func exampleOptions(t *testing.T) map[string]map[string]string {
	t.Helper()
	data, err := os.ReadFile("novanet.conf")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	sec := ""
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "[") {
			sec = strings.Trim(line, "[]")
			out[sec] = map[string]string{}
			continue
		}
		if m := commentedOption.FindStringSubmatch(line); m != nil {
			out[sec][m[1]] = strings.TrimSpace(m[2])
		}
	}
	return out
}

// TestExampleConfigListsEveryOption: the packaged novanet.conf names every
// option internal/config knows, in its section; an option added without
// documenting it here fails.
func TestExampleConfigListsEveryOption(t *testing.T) {
	got := exampleOptions(t)
	for sec, keys := range config.Keys() {
		for _, k := range keys {
			if _, ok := got[sec][k]; !ok {
				t.Errorf("packaging/novanet.conf lacks [%s] %s (as a commented '#%s = <default>' line)", sec, k, k)
			}
		}
	}
	for sec, kv := range got {
		for k := range kv {
			if !contains(config.Keys()[sec], k) {
				t.Errorf("packaging/novanet.conf names [%s] %s, which novanet does not know", sec, k)
			}
		}
	}
}

// TestExampleConfigDefaultsLoad: uncommenting every line with a concrete
// value gives a configuration novanet accepts (the documented defaults
// are real values, not prose).
func TestExampleConfigDefaultsLoad(t *testing.T) {
	var b strings.Builder
	for sec, kv := range exampleOptions(t) {
		b.WriteString("[" + sec + "]\n")
		for k, v := range kv {
			if v == "" || strings.Contains(v, "<") {
				continue
			}
			b.WriteString(k + " = " + v + "\n")
		}
	}
	path := filepath.Join(t.TempDir(), "novanet.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(config.Sources{Files: []string{path}})
	if err != nil {
		t.Fatalf("the example's defaults do not load: %v\n%s", err, b.String())
	}
	if len(c.Warnings) > 0 {
		t.Fatalf("warnings: %v", c.Warnings)
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
