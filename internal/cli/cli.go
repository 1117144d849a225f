// Package cli is novanet's command tree (cobra): serve, agent,
// dhcpbridge, lab and the client commands (network, fixed-ip,
// floating-ip, secgroup, instance, host, lease), one file a resource.
// Client commands reach the API through globals.call and print through
// one output layer (output.go, views.go). It only wires: configuration is
// loaded once and typed values are passed inward.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"novanet/internal/client"
	"novanet/internal/config"
	"novanet/internal/version"
)

// usageError marks a command-line mistake (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// globals are the flags every command shares.
type globals struct {
	configFiles []string
	osURL       string
	osToken     string
	output      string
	columns     []string
	stdout      io.Writer
	stderr      io.Writer
}

// Main runs the command line args (args[0] is the program) and returns the
// exit status: 0 success, 1 failure, 2 usage error.
func Main(ctx context.Context, args []string) int {
	return run(ctx, args[1:], os.Stdout, os.Stderr)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "novanet: %s\n", oneLine(err.Error()))
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return 2
	}
	return 1
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// isCobraUsage recognises cobra's own argument errors, which are plain
// errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "required flag", "flag needs an argument", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// commands is every subcommand of novanet, constructed afresh for each
// run so that no flag value outlives it.
func commands(g *globals) []*cobra.Command {
	cmds := []*cobra.Command{networkCmd(g), fixedIPCmd(g), floatingIPCmd(g), secgroupCmd(g), instanceCmd(g), hostCmd(g), leaseCmd(g),
		versionCmd(g), labCmd(g), dhcpbridgeCmd(), serveCmd(), agentCmd()}
	return cmds
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "novanet",
		Short:         "nova-network, re-implemented: flat networking for VMs",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	// A bad -o is a usage error before anything is asked of the server.
	root.PersistentPreRunE = func(*cobra.Command, []string) error { _, err := g.format(); return err }
	pf := root.PersistentFlags()
	pf.StringArrayVar(&g.configFiles, "config-file", nil, "nova.conf-style file (repeatable; later files win)")
	pf.StringVar(&g.osURL, "os-url", "", "API endpoint (default $NOVANET_URL, then api_url from the config file)")
	pf.StringVar(&g.osToken, "os-token", "", "API token (default $NOVANET_TOKEN, then auth_token from the config file)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table, json or value")
	pf.StringSliceVarP(&g.columns, "column", "c", nil, "columns (table, value) or fields to show (repeatable or comma-separated)")

	root.Version = version.String()
	root.SetVersionTemplate(version.Get().Text())
	root.AddCommand(commands(g)...)
	for _, c := range root.Commands() {
		wrapArgs(c)
	}
	return root
}

// wrapArgs turns cobra's argument-count errors into usage errors that
// name the missing arguments, and makes a command group (network,
// instance, ...) refuse an unknown or missing subcommand with exit 2 and
// the nearest names instead of printing help and exiting 0.
func wrapArgs(c *cobra.Command) {
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = cobra.ArbitraryArgs
		c.SuggestionsMinimumDistance = 2 // cobra sets it only on the root
		c.RunE = func(cmd *cobra.Command, args []string) error {
			var names []string
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, sub.Name())
				}
			}
			if len(args) == 0 {
				return usagef("%s needs a subcommand: %s (see %s --help)", cmd.CommandPath(), strings.Join(names, ", "), cmd.CommandPath())
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if sugg := cmd.SuggestionsFor(args[0]); len(sugg) > 0 {
				msg += "; did you mean " + strings.Join(sugg, " or ") + "?"
			} else {
				msg += "; its subcommands are " + strings.Join(names, ", ")
			}
			return usagef("%s", msg)
		}
	} else if c.Args != nil {
		orig := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := orig(cmd, args); err != nil {
				return usageError{argsProblem(cmd, args, err)}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// argsProblem names the missing arguments from the command's Use line
// ("show <instance>"), or says which are too many.
func argsProblem(cmd *cobra.Command, args []string, err error) error {
	words := strings.Fields(cmd.Use)[1:]
	var required []string
	for _, w := range words {
		if !strings.HasPrefix(w, "[") && w != "--" && !strings.HasSuffix(w, "...") {
			required = append(required, w)
		}
	}
	usage := cmd.CommandPath() + " " + strings.Join(words, " ")
	switch {
	case len(args) < len(required):
		return fmt.Errorf("missing %s; usage: %s", strings.Join(required[len(args):], " "), usage)
	case len(words) == 0 && len(args) > 0:
		return fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), strings.Join(args, " "))
	case len(args) > len(words):
		return fmt.Errorf("too many arguments (%q); usage: %s", strings.Join(args[len(words):], " "), usage)
	}
	return fmt.Errorf("%v; usage: %s", err, usage)
}

// underscores lets nova-manage's --fixed_range_v4 and --fixed-range-v4
// name the same flag.
func underscores(f *pflag.FlagSet, name string) pflag.NormalizedName {
	return pflag.NormalizedName(strings.ReplaceAll(name, "-", "_"))
}

// LoadConfig loads the configuration from --config-file, the environment
// and overrides (for commands in other files too).
func LoadConfig(cmd *cobra.Command, overrides map[string][]string) (*config.Config, error) {
	files, _ := cmd.Flags().GetStringArray("config-file")
	if files == nil {
		files, _ = cmd.Flags().GetStringArray("config_file")
	}
	c, err := config.Load(config.Sources{Files: files, Env: os.Environ(), Overrides: overrides})
	if err != nil {
		return nil, err
	}
	for _, w := range c.Warnings {
		fmt.Fprintf(cmd.ErrOrStderr(), "novanet: warning: %s\n", w)
	}
	return c, nil
}

// client builds an API client from flags, environment and config file,
// in that order of precedence.
func (g *globals) client(cmd *cobra.Command) (*client.Client, error) {
	url, token := g.osURL, g.osToken
	if url == "" {
		url = os.Getenv("NOVANET_URL")
	}
	if token == "" {
		token = os.Getenv("NOVANET_TOKEN")
	}
	if url == "" || token == "" {
		var cfgURL, cfgToken string
		if len(g.configFiles) > 0 {
			c, err := config.Load(config.Sources{Files: g.configFiles, Env: os.Environ()})
			if err != nil {
				return nil, err
			}
			cfgURL, cfgToken = c.APIURL, c.AuthToken
		}
		if url == "" {
			url = cfgURL
		}
		if token == "" {
			token = cfgToken
		}
	}
	if url == "" {
		url = "http://127.0.0.1:8774"
	}
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, usagef("API URL %q has no http:// or https:// scheme; add it (http://%s)", url, strings.TrimPrefix(url, "//"))
	}
	if token == "" {
		return nil, usagef("no API token: pass --os-token, set NOVANET_TOKEN, or set auth_token in [novanet] of --config-file")
	}
	return client.New(url, token), nil
}

// call builds the API client from the global flags and runs f with it:
// every client command's one way to reach the API.
func (g *globals) call(cmd *cobra.Command, f func(ctx context.Context, c *client.Client) error) error {
	c, err := g.client(cmd)
	if err != nil {
		return err
	}
	return f(cmd.Context(), c)
}
