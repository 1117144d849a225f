package archtest

import (
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "novanet"

// kernel is what touches the kernel or runs programs.
var kernel = []string{
	"os/exec", "syscall", "golang.org/x/sys/unix",
	"github.com/vishvananda/netlink", "github.com/vishvananda/netns",
	"github.com/mdlayher/netlink", "github.com/google/nftables",
	"novanet/internal/datapath", "novanet/internal/netnsdo",
}

// rule is one line of docs/ARCHITECTURE.md's "Rules of the house" (and
// the dependency direction beside it). A rule applies to the packages
// matching its pattern; Forbid lists imports (and, with Transitive,
// anything reached through internal packages) they must not have;
// Importers, when set, is the complete list of who may import them.
type rule struct {
	Packages string
	// Except are packages Packages matches that the rule leaves alone.
	Except     []string
	Forbid     []string
	Transitive bool
	Importers  []string
	Why        string
}

// rules is the table. A pattern ending in "/..." matches the path and
// everything below it.
var rules = []rule{
	{Packages: "novanet/internal/plan/...", Transitive: true,
		Forbid: append([]string{"os", "net/http", "novanet/internal/store", "novanet/internal/manager",
			"novanet/internal/api", "novanet/internal/client", "novanet/internal/agent"}, kernel...),
		Why: "the planner is pure: it never touches the kernel, runs a program, reads a file or calls the API"},
	{Packages: "novanet/internal/datapath/...",
		Forbid: []string{"novanet/internal/manager", "novanet/internal/store", "novanet/internal/api",
			"novanet/internal/client", "novanet/internal/agent", "novanet/internal/cli", "novanet/internal/config",
			"novanet/internal/dhcpbridge", "novanet/internal/metadata", "novanet/internal/lab"},
		Why: "appliers are thin: they apply a plan and never decide policy, read the store or the API"},
	{Packages: "novanet/internal/datapath/...", Except: []string{"novanet/internal/datapath/runner"},
		Forbid: []string{"os/exec"},
		Why:    "every exec goes through datapath/runner (LC_ALL=C, the namespace, the command and its output in errors)"},
	{Packages: "novanet/internal/manager/...", Transitive: true,
		Forbid: append([]string{"novanet/internal/api", "novanet/internal/plan", "novanet/internal/agent",
			"novanet/internal/client", "novanet/internal/cli"}, kernel...),
		Why: "the manager never knows about Linux (and implements api.Backend without importing api)"},
	{Packages: "novanet/internal/model/...", Forbid: []string{"novanet/internal/..."},
		Why: "model holds plain types every layer shares, so it imports nothing of novanet"},
	{Packages: "novanet/internal/store/...", Transitive: true,
		Forbid: append([]string{"novanet/internal/manager", "novanet/internal/api", "novanet/internal/plan",
			"novanet/internal/agent", "novanet/internal/client", "novanet/internal/cli"}, kernel...),
		Why: "the store keeps rows; what they mean is the manager's"},
	{Packages: "novanet/internal/api/...",
		Forbid: append([]string{"novanet/internal/store", "novanet/internal/manager", "novanet/internal/agent",
			"novanet/internal/plan", "novanet/internal/cli"}, kernel...),
		Why: "the API consumes the Backend interface it defines; the manager behind it is wired in by cli"},
	{Packages: "novanet/internal/agent/...",
		Forbid: []string{"novanet/internal/store", "novanet/internal/manager", "novanet/internal/api", "novanet/internal/cli"},
		Why:    "the agent reaches the server through the API only"},
	{Packages: "novanet/internal/dhcpbridge/...", Transitive: true,
		Forbid: []string{"net/http", "github.com/spf13/cobra", "novanet/internal/store", "novanet/internal/client",
			"novanet/internal/datapath", "novanet/internal/plan", "novanet/internal/agent"},
		Why: "dnsmasq forks the script for every lease event: it stays small (no store, no HTTP, no cobra)"},
	{Packages: "novanet/internal/cli", Importers: []string{"novanet/cmd/..."},
		Why: "only internal/cli wires things together, and only main calls it"},
	{Packages: "novanet/internal/manager", Importers: []string{"novanet/internal/cli"},
		Why: "only internal/cli wires things together"},
	{Packages: "novanet/internal/api", Importers: []string{"novanet/internal/cli"},
		Why: "only internal/cli wires things together"},
	{Packages: "novanet/internal/store", Importers: []string{"novanet/internal/cli", "novanet/internal/manager"},
		Why: "the store is the manager's; only cli opens it to hand it over"},
	{Packages: "novanet/...", Forbid: []string{"testing", "net/http/httptest", "novanet/internal/nettest",
		"novanet/internal/store/pgtest", "novanet/internal/agent/agenttest", "novanet/internal/archtest"},
		Why: "production code does not import test support (test helper packages end in \"test\")"},
}

func matches(pattern, pkg string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

func matchesAny(patterns []string, pkg string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return matches(p, pkg) })
}

// testSupport are packages that exist for tests (nettest, pgtest,
// agenttest, this one): they may import testing and are never imported
// by production code, which the testing rule checks from the other side.
func testSupport(pkg string) bool { return strings.HasSuffix(path.Base(pkg), "test") }

// violations checks graph (package -> its direct imports, production
// files only) against the rules.
func violations(graph map[string][]string, rules []rule) []string {
	var out []string
	pkgs := make([]string, 0, len(graph))
	for p := range graph {
		pkgs = append(pkgs, p)
	}
	slices.Sort(pkgs)
	for _, r := range rules {
		for _, pkg := range pkgs {
			if r.Forbid != nil && matches(r.Packages, pkg) && !matchesAny(r.Except, pkg) && !testSupport(pkg) {
				for _, via := range reach(graph, pkg, r.Transitive) {
					imp := via[len(via)-1]
					if matches(r.Packages, imp) && strings.HasPrefix(imp, module+"/") && len(via) > 1 {
						continue // inside the rule's own tree, checked on its own
					}
					if matchesAny(r.Forbid, imp) {
						out = append(out, fmt.Sprintf("%s imports %s (%s): forbidden by the rule for %s: %s",
							pkg, imp, strings.Join(via, " -> "), r.Packages, r.Why))
					}
				}
			}
			if r.Importers != nil && !matches(r.Packages, pkg) && !matchesAny(r.Importers, pkg) {
				for _, imp := range graph[pkg] {
					if matches(r.Packages, imp) {
						out = append(out, fmt.Sprintf("%s imports %s: only %s may import %s: %s",
							pkg, imp, strings.Join(r.Importers, ", "), r.Packages, r.Why))
					}
				}
			}
		}
	}
	return out
}

// reach returns, for each package pkg imports (directly or, with
// transitive, through novanet packages), the shortest import path to it
// starting at pkg's direct import.
func reach(graph map[string][]string, pkg string, transitive bool) [][]string {
	var out [][]string
	seen := map[string]bool{pkg: true}
	queue := [][]string{}
	for _, imp := range graph[pkg] {
		if !seen[imp] {
			seen[imp] = true
			queue = append(queue, []string{imp})
		}
	}
	for len(queue) > 0 {
		via := queue[0]
		queue = queue[1:]
		out = append(out, via)
		if !transitive {
			continue
		}
		for _, imp := range graph[via[len(via)-1]] {
			if !seen[imp] {
				seen[imp] = true
				queue = append(queue, append(slices.Clone(via), imp))
			}
		}
	}
	return out
}

// importGraph parses the import blocks of every production .go file of
// the module (no build: a file behind any build tag counts too, the
// strict reading).
func importGraph(t *testing.T, root string) map[string][]string {
	t.Helper()
	graph := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); p != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(p))
		if err != nil {
			return err
		}
		pkg := path.Join(module, filepath.ToSlash(rel))
		imports := graph[pkg]
		for _, spec := range f.Imports {
			imp, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if imp != "C" && !slices.Contains(imports, imp) {
				imports = append(imports, imp)
			}
		}
		graph[pkg] = imports
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, imps := range graph {
		slices.Sort(imps)
	}
	return graph
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module "+module+"\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod of module " + module + " above the test's directory")
		}
		dir = parent
	}
}

// TestArchitecture fails when a package imports what
// docs/ARCHITECTURE.md forbids.
func TestArchitecture(t *testing.T) {
	graph := importGraph(t, moduleRoot(t))
	for _, must := range []string{"novanet/internal/plan", "novanet/internal/manager", "novanet/internal/datapath/dnsmasq", "novanet/cmd/novanet"} {
		if _, ok := graph[must]; !ok {
			t.Fatalf("package %s not found: the import graph was not read", must)
		}
	}
	for _, v := range violations(graph, rules) {
		t.Error(v)
	}
}

// TestRulesCatchViolations proves that each kind of rule can fail, on an
// import graph made up for the purpose.
func TestRulesCatchViolations(t *testing.T) {
	graph := map[string][]string{
		"novanet/cmd/novanet":               {"novanet/internal/cli"},
		"novanet/internal/cli":              {"novanet/internal/manager"},
		"novanet/internal/plan":             {"novanet/internal/plan/helper", "fmt"},
		"novanet/internal/plan/helper":      {"novanet/internal/shim"},
		"novanet/internal/shim":             {"github.com/vishvananda/netlink"},
		"novanet/internal/datapath/dnsmasq": {"novanet/internal/dhcpbridge", "novanet/internal/datapath/runner"},
		"novanet/internal/datapath/runner":  {"os/exec"},
		"novanet/internal/datapath/ipset":   {"os/exec"},
		"novanet/internal/dhcpbridge":       {"novanet/internal/model"},
		"novanet/internal/model":            {"net/netip", "testing"},
		"novanet/internal/lab":              {"novanet/internal/cli", "novanet/internal/nettest"},
		"novanet/internal/nettest":          {"testing"},
	}
	got := violations(graph, rules)
	want := []string{
		"novanet/internal/plan imports github.com/vishvananda/netlink (novanet/internal/plan/helper -> novanet/internal/shim -> github.com/vishvananda/netlink)",
		"novanet/internal/plan/helper imports github.com/vishvananda/netlink (novanet/internal/shim -> github.com/vishvananda/netlink)",
		"novanet/internal/datapath/dnsmasq imports novanet/internal/dhcpbridge (novanet/internal/dhcpbridge)",
		"novanet/internal/datapath/ipset imports os/exec (os/exec): forbidden by the rule for novanet/internal/datapath/...: every exec",
		"novanet/internal/lab imports novanet/internal/cli: only novanet/cmd/... may import",
		"novanet/internal/model imports testing (testing)",
		"novanet/internal/lab imports novanet/internal/nettest (novanet/internal/nettest): forbidden",
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("no violation starting %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d violations, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}
