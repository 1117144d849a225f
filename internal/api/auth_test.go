package api

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseTokens(t *testing.T) {
	good := `
# operators
0123456789abcdef0 admin
0123456789abcdef1 admin ops
0123456789abcdef2 project demo   # the demo project
0123456789abcdef3 agent compute-1
`
	m, err := ParseTokens(good, "tokens")
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 4 {
		t.Fatalf("got %d tokens, want 4", len(m))
	}
	tk := StaticTokens(nil)
	tk.byHash = m
	for tok, want := range map[string]Principal{
		"0123456789abcdef0": {Role: RoleAdmin, ProjectID: "admin"},
		"0123456789abcdef1": {Role: RoleAdmin, ProjectID: "ops"},
		"0123456789abcdef2": {Role: RoleProject, ProjectID: "demo"},
		"0123456789abcdef3": {Role: RoleAgent, Host: "compute-1"},
	} {
		if p, ok := tk.Lookup(tok); !ok || p != want {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v", tok, p, ok, want)
		}
	}
	if _, ok := tk.Lookup("0123456789abcdef9"); ok {
		t.Error("unknown token accepted")
	}
	if _, ok := tk.Lookup(""); ok {
		t.Error("empty token accepted")
	}

	bad := []struct{ text, want string }{
		{"short admin", "shorter than 16"},
		{"0123456789abcdef0", "missing role"},
		{"0123456789abcdef0 root", `unknown role "root"`},
		{"0123456789abcdef0 project", "exactly one project id"},
		{"0123456789abcdef0 agent a b", "exactly one host name"},
		{"0123456789abcdef0 admin a b", "too many fields"},
		{"0123456789abcdef0 admin\n0123456789abcdef0 admin", "tokens:2: duplicate token"},
	}
	for _, b := range bad {
		if _, err := ParseTokens(b.text, "tokens"); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("ParseTokens(%q) err = %v, want %q", b.text, err, b.want)
		}
	}
}

func TestTokensReloadOnChange(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte("0123456789abcdef0 admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tk, err := LoadTokens(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tk.Lookup("0123456789abcdef0"); !ok {
		t.Fatal("token from file not accepted")
	}
	if err := os.WriteFile(p, []byte("fedcba98765432100 project p\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(2 * time.Second)
	os.Chtimes(p, future, future)
	tk.mu.Lock()
	tk.checked = time.Time{}
	tk.mu.Unlock()
	if _, ok := tk.Lookup("0123456789abcdef0"); ok {
		t.Error("removed token still accepted after the file changed")
	}
	if p, ok := tk.Lookup("fedcba98765432100"); !ok || p.ProjectID != "p" {
		t.Errorf("new token: %+v, %v", p, ok)
	}
	// A broken edit keeps the last good table and Reload reports it.
	os.WriteFile(p, []byte("oops\n"), 0o600)
	if err := tk.Reload(); err == nil || !strings.Contains(err.Error(), "shorter than 16") {
		t.Errorf("Reload of a broken file: %v", err)
	}
	if _, ok := tk.Lookup("fedcba98765432100"); !ok {
		t.Error("a broken file dropped the last good tokens")
	}
}
