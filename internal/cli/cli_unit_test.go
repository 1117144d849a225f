package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestUsageExitCodes(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"network", "create", "--os-token", "t"}, 2, "--fixed_range_v4 is required"},
		{[]string{"network", "create", "--fixed_range_v4", "10.0.0.0/24", "--num_networks", "two"}, 2, "invalid argument"},
		{[]string{"network", "show"}, 2, "missing <id|uuid|label>; usage: novanet network show <id|uuid|label>"},
		{[]string{"network", "shwo"}, 2, `unknown command "shwo" for "novanet network"; did you mean show?`},
		{[]string{"network"}, 2, "novanet network needs a subcommand: create, delete, list, show"},
		{[]string{"lab", "stats"}, 2, `did you mean status?`},
		{[]string{"network", "list", "extra"}, 2, `takes no arguments, got "extra"`},
		{[]string{"network", "list", "--os-url", "127.0.0.1:8774", "--os-token", "t"}, 2, "has no http:// or https:// scheme; add it (http://127.0.0.1:8774)"},
		{[]string{"network", "list", "-o", "yaml", "--os-token", "t"}, 2, "use table, json or value"},
		{[]string{"network", "create", "--fixed_range_v4", "10.0.0.0/33", "--os-token", "t"}, 1, "not an IPv4 CIDR"},
		{[]string{"network", "list", "--os-url", "http://127.0.0.1:1"}, 2, "no API token"},
		{[]string{"floating-ip", "associate", "1.2.3", "u", "--os-token", "t"}, 2, "nor \"u\" is an IPv4 floating address"},
	}
	t.Setenv("NOVANET_URL", "")
	t.Setenv("NOVANET_TOKEN", "")
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) || strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
			t.Errorf("novanet %s: exit %d stderr %q; want exit %d, one line containing %q", strings.Join(tc.args, " "), code, errb.String(), tc.code, tc.want)
		}
	}
}

func TestDashesAndUnderscores(t *testing.T) {
	for _, flag := range []string{"--fixed_range_v4", "--fixed-range-v4"} {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"network", "create", flag, "bad", "--os-token", "t"}, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), `"bad" is not an IPv4 CIDR`) {
			t.Errorf("%s: exit %d %q", flag, code, errb.String())
		}
	}
}

func TestEndpointPrecedence(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "nova.conf")
	os.WriteFile(conf, []byte("[novanet]\napi_url = http://192.0.2.1:8774\nauth_token = from-file-token-0123\n"), 0o600)
	resolve := func(args ...string) (string, error) {
		g := &globals{}
		root := newRoot(g)
		var got string
		root.AddCommand(&cobra.Command{Use: "probe", RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			got = c.String()
			return nil
		}})
		root.SetArgs(append([]string{"probe"}, args...))
		err := root.Execute()
		return got, err
	}
	t.Setenv("NOVANET_URL", "")
	t.Setenv("NOVANET_TOKEN", "")
	if got, err := resolve("--config-file", conf); err != nil || got != "http://192.0.2.1:8774 token=from…" {
		t.Errorf("config file: %q %v", got, err)
	}
	t.Setenv("NOVANET_URL", "http://198.51.100.1:8774")
	t.Setenv("NOVANET_TOKEN", "env-token-0123456789")
	if got, err := resolve("--config-file", conf); err != nil || got != "http://198.51.100.1:8774 token=env-…" {
		t.Errorf("env over file: %q %v", got, err)
	}
	if got, err := resolve("--config-file", conf, "--os-url", "http://203.0.113.1:1", "--os-token", "flag-token-0123456789"); err != nil || got != "http://203.0.113.1:1 token=flag…" {
		t.Errorf("flags over env: %q %v", got, err)
	}
}

// TestVersionCommand: `novanet version -o json` is one object naming the
// version, commit, build date and Go version; --version prints the same.
func TestVersionCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"version", "-o", "json"}, &out, &errb); code != 0 {
		t.Fatalf("version: exit %d %q", code, errb.String())
	}
	var v map[string]string
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, out.String())
	}
	for _, k := range []string{"version", "commit", "build_date", "go_version"} {
		if v[k] == "" {
			t.Errorf("version -o json lacks %s: %v", k, v)
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"--version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "novanet "+v["version"]+"\ncommit: ") {
		t.Errorf("--version: exit %d %q", code, out.String())
	}
}
