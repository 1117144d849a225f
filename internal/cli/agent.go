package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"novanet/internal/agent"
	"novanet/internal/client"
	"novanet/internal/config"
	"novanet/internal/datapath/dnsmasq"
	"novanet/internal/datapath/link"
	"novanet/internal/dhcpbridge"
	"novanet/internal/version"
)

func agentCmd() *cobra.Command {
	var once, verbose bool
	var logFormat, logLevel string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "reconcile this host's bridge, dnsmasq and iptables with the API's desired state",
		Long: `agent runs on every host (network host and compute hosts). It watches
the host's desired state from the API (api_url, auth_token: an "agent <host>"
token), plans it and applies it: bridge and taps, sysctls, dnsmasq and the
nova-* iptables chains. It keeps the datapath as it is while the API is
unreachable and repairs drift every resync_interval. dnsmasq calls back
through the unix socket agent_socket (novanet-dhcpbridge).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := LoadConfig(cmd, logOverrides(nil, logFormat, logLevel))
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runAgent(ctx, cfg, once, verbose)
		},
	}
	cmd.Flags().BoolVar(&once, "once", false, "sync once (full) and exit; non-zero exit if anything failed")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log every sync (--log-level debug)")
	addLogFlags(cmd, &logFormat, &logLevel)
	return cmd
}

// dhcpScriptPath is the --dhcp-script dnsmasq runs: the dhcpbridge option
// when set, else a novanet-dhcpbridge link to this binary in state_path
// (main dispatches on the program name).
func dhcpScriptPath(cfg *config.Config) (string, error) {
	if cfg.DHCPBridge != "" {
		return cfg.DHCPBridge, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own executable for the dhcp script: %w; set dhcpbridge in the configuration", err)
	}
	dir := filepath.Join(cfg.StatePath, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w; check state_path", dir, err)
	}
	path := filepath.Join(dir, "novanet-dhcpbridge")
	if cur, err := os.Readlink(path); err == nil && cur == self {
		return path, nil
	}
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(self, tmp); err != nil {
		return "", fmt.Errorf("link %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("link %s: %w", path, err)
	}
	return path, nil
}

func runAgent(ctx context.Context, cfg *config.Config, once, verbose bool) error {
	if cfg.Host == "" {
		return usagef("host is not set: set host in the configuration")
	}
	if cfg.APIURL == "" || cfg.AuthToken == "" {
		return usagef("the agent needs api_url and auth_token (an \"agent %s\" token) in [novanet]", cfg.Host)
	}
	level := cfg.LogLevel
	if verbose {
		level = "debug"
	}
	log, err := newLogger(os.Stderr, cfg.LogFormat, level)
	if err != nil {
		return err
	}

	// The appliers below add their own component to log; the lines
	// written here are the agent's.
	alog := log.With("component", "agent", "host", cfg.Host)
	logNotApplied(alog, cfg)

	script, err := dhcpScriptPath(cfg)
	if err != nil {
		return err
	}
	// dnsmasq inherits the agent's environment and passes it to its
	// --dhcp-script, which finds the agent's socket through it.
	if err := os.Setenv(dhcpbridge.SocketEnv, cfg.AgentSocket); err != nil {
		return err
	}

	links, err := link.New(log)
	if err != nil {
		return err
	}
	driver, err := newFirewallDriver(cfg.FirewallDriver, log)
	if err != nil {
		return err
	}
	fw := driver.fw
	floating, err := link.NewFloating(log)
	if err != nil {
		return err
	}
	if cfg.SendARPForHA {
		floating.ARPCount = cfg.SendARPForHACount
	}
	dhcp := dnsmasq.New(log, cfg.NetworksPath)
	api := client.New(cfg.APIURL, cfg.AuthToken).WithTimeout(10 * time.Second)
	metrics := agent.NewMetrics()
	mAPI, mLinks, mFW, mDHCP := metrics.Instrument(api, links, fw, dhcp, agent.DatapathCounters{
		DnsmasqStarts: dhcp.Starts, DnsmasqReloads: dhcp.Reloads,
		FirewallRestores: driver.writes,
	})
	if err := serveAgentMetrics(ctx, cfg.MetricsListen, metrics, alog); err != nil {
		return err
	}
	a := agent.New(agent.Config{
		Host:           cfg.Host,
		Plan:           PlanOptions(cfg, script),
		ResyncInterval: cfg.ResyncInterval,
		StateFile:      filepath.Join(cfg.StatePath, "agent-state.json"),
		Logger:         log,
		Metrics:        metrics,
	}, mAPI, mLinks, mFW, mDHCP)
	a.SetFloating(floating)

	if once {
		return a.Sync(ctx, true)
	}

	ln, err := dhcpbridge.Listen(cfg.AgentSocket)
	if err != nil {
		return err
	}
	leases := a.Leases()
	errc := make(chan error, 1)
	go func() { errc <- dhcpbridge.Serve(ctx, ln, leases) }()
	go leases.Forward(ctx)
	startWatches(ctx, alog, a, links, driver.watch, dhcp)
	go serveAgentMetadata(ctx, cfg, a, api, links, log)
	alog.Info("agent started", "version", version.String(), "api", cfg.APIURL, "socket", cfg.AgentSocket, "resync_interval_ms", cfg.ResyncInterval.Milliseconds())
	runErr := a.Run(ctx)
	select {
	case err := <-errc:
		if err != nil && ctx.Err() == nil {
			return err
		}
	default:
	}
	return runErr
}

// startWatches turns what the kernel and the file system report into
// repairs from the cached plan, so drift is repaired within a second and
// no event costs an API request.
func startWatches(ctx context.Context, log *slog.Logger, a *agent.Agent, links *link.Links, fwWatch func(context.Context, func(string)) error, dhcp *dnsmasq.Supervisor) {
	watch := func(what string, part agent.Part, run func(context.Context, func(string)) error) {
		go func() {
			backoff := time.Second
			for ctx.Err() == nil {
				started := time.Now()
				err := run(ctx, func(reason string) { a.Repair(part, reason) })
				if ctx.Err() != nil {
					return
				}
				if time.Since(started) > time.Minute {
					backoff = time.Second
				}
				log.Warn(what+" watch stopped; restarting it (the periodic resync still repairs meanwhile)", "err", err, "retry_in_ms", backoff.Milliseconds())
				a.Trigger(true)
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 30*time.Second)
			}
		}()
	}
	watch("link", agent.PartLinks, links.Watch)
	watch("firewall", agent.PartFirewall, fwWatch)
	watch("dnsmasq hosts", agent.PartDHCP, dhcp.WatchHosts)
	go dhcp.Watch(ctx, 250*time.Millisecond, func() { a.Repair(agent.PartDHCP, "dnsmasq is not running") })
}
