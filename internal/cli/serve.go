package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"novanet/internal/api"
	"novanet/internal/config"
	"novanet/internal/manager"
	"novanet/internal/store"
	"novanet/internal/version"
)

func serveCmd() *cobra.Command {
	var listen, database, tokensFile, addrFile, logFormat, logLevel string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run the API server, network manager and periodic tasks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ov := map[string][]string{}
			for k, v := range map[string]string{"listen": listen, "database": database, "tokens_file": tokensFile} {
				if v != "" {
					ov[k] = []string{v}
				}
			}
			cfg, err := LoadConfig(cmd, logOverrides(ov, logFormat, logLevel))
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, addrFile)
		},
	}
	f := cmd.Flags()
	f.SetNormalizeFunc(underscores)
	f.StringVar(&listen, "listen", "", "address to listen on (default [novanet] listen, 127.0.0.1:8774)")
	f.StringVar(&database, "database", "", "store URL (default [novanet] database)")
	f.StringVar(&tokensFile, "tokens_file", "", "tokens file (default [novanet] tokens_file)")
	f.StringVar(&addrFile, "address_file", "", "write the bound address here once listening (for port 0)")
	addLogFlags(cmd, &logFormat, &logLevel)
	return cmd
}

// newServeManager is serve's manager: cfg's options, and base for its
// own reports (periodic tasks, auto-assign failures), to which manager.New
// adds component=manager.
func newServeManager(st *store.Store, cfg *config.Config, base *slog.Logger) *manager.Manager {
	opts := ManagerOptions(cfg)
	opts.Logger = base
	return manager.New(st, opts)
}

// defaultMemoryLimit is the Go heap's soft limit unless GOMEMLIMIT says
// otherwise: large answers (a host state or list of 60,000 addresses) are
// transient, and without a limit the runtime keeps their peak resident.
const defaultMemoryLimit = 64 << 20

func serve(ctx context.Context, cfg *config.Config, addrFile string) (err error) {
	base, err := newLogger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	log := base.With("component", "serve")
	logNotApplied(log, cfg)
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	var tokens *api.Tokens
	switch {
	case cfg.TokensFile != "":
		t, err := api.LoadTokens(cfg.TokensFile)
		if err != nil {
			return err
		}
		tokens = t
	case cfg.AuthToken != "":
		tokens = api.StaticTokens(map[string]api.Principal{cfg.AuthToken: {Role: api.RoleAdmin, ProjectID: "admin"}})
		log.Warn("no tokens_file; accepting only auth_token, as admin")
	default:
		return fmt.Errorf("no tokens: set tokens_file (lines '<token> admin|project <id>|agent <host>') or auth_token in [novanet]")
	}
	if path, ok := sqlitePath(cfg.Database); ok {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("create the directory of the SQLite store %s: %w; check state_path or database", path, err)
		}
	}
	st, err := store.Open(ctx, cfg.Database)
	if err != nil {
		return fmt.Errorf("open store %s: %w", cfg.Database, err)
	}
	defer st.Close()
	m := newServeManager(st, cfg, base)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w; set listen in [novanet] or --listen", cfg.Listen, err)
	}
	if addrFile != "" {
		if err := os.WriteFile(addrFile+".tmp", []byte(ln.Addr().String()), 0o644); err != nil {
			return fmt.Errorf("write address file: %w", err)
		}
		if err := os.Rename(addrFile+".tmp", addrFile); err != nil {
			return fmt.Errorf("write address file: %w", err)
		}
	}
	log.Info("novanet serve started", "version", version.String(), "listen", []string{ln.Addr().String()},
		"database_engine", databaseEngine(cfg.Database), "database", redact(cfg.Database))
	defer func() { log.Info("novanet serve stopped", "err", err) }()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := tokens.Reload(); err != nil {
					log.Error("reload tokens", "err", err)
				} else {
					log.Info("reloaded tokens", "file", cfg.TokensFile)
				}
			}
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	periodicDone := make(chan struct{})
	go func() {
		defer close(periodicDone)
		m.RunPeriodic(ctx)
	}()
	// Each part names its own component on the base logger: With appends,
	// so a part given serve's logger would carry component twice.
	go serveMetadata(ctx, cfg, m.NewMetadataSource(), base)
	srv := api.New(m, api.Options{Tokens: tokens, Logger: base.With("component", "api")})
	err = api.Serve(ctx, ln, srv, log, 10*time.Second)
	cancel()
	<-periodicDone
	return err
}

// sqlitePath returns the file of a SQLite database URL (sqlite:///path,
// sqlite://path or a bare path).
func sqlitePath(db string) (string, bool) {
	switch {
	case strings.HasPrefix(db, "sqlite://"):
		p := strings.TrimPrefix(db, "sqlite://")
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		return p, p != "" && p != ":memory:"
	case strings.Contains(db, "://"):
		return "", false
	default:
		return db, db != "" && db != ":memory:"
	}
}

// redact hides a password in a database URL.
func redact(u string) string {
	for i := 0; i+3 < len(u); i++ {
		if u[i:i+3] == "://" {
			rest := u[i+3:]
			at := -1
			for j := range len(rest) {
				if rest[j] == '@' {
					at = j
				}
				if rest[j] == '/' {
					break
				}
			}
			if at < 0 {
				return u
			}
			cred := rest[:at]
			for j := range len(cred) {
				if cred[j] == ':' {
					return u[:i+3] + cred[:j] + ":***" + rest[at:]
				}
			}
			return u
		}
	}
	return u
}
