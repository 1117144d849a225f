package cli

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"time"

	"novanet/internal/agent"
	"novanet/internal/config"
	"novanet/internal/datapath/link"
	"novanet/internal/metadata"
)

// metadataOptions maps the configuration onto the metadata handler's.
func metadataOptions(cfg *config.Config, log *slog.Logger) metadata.Options {
	return metadata.Options{
		ProxySharedSecret: cfg.MetadataProxySharedSecret,
		RequireToken:      cfg.MetadataRequireToken,
		RatePerSecond:     float64(cfg.MetadataRateLimit),
		RateBurst:         4 * cfg.MetadataRateLimit,
		Logger:            log,
	}
}

// serveMetadata runs serve's metadata service on
// metadata_listen:metadata_port, answering from the store.
func serveMetadata(ctx context.Context, cfg *config.Config, src metadata.Source, log *slog.Logger) {
	log = log.With("component", "metadata")
	if cfg.MetadataListen == "" {
		log.Info("metadata_listen is empty: serve answers no metadata")
		return
	}
	addr := net.JoinHostPort(cfg.MetadataListen, strconv.Itoa(cfg.MetadataPort))
	metadata.ListenAndServe(ctx, addr, metadata.New(src, metadataOptions(cfg, log)), log, 5*time.Second, nil)
}

// serveAgentMetadata runs the agent's metadata service where this host is
// the metadata host (its DNAT sends its guests' 169.254.169.254 to
// itself: every compute in multi-host mode, the network host in
// single-host mode). It answers from the agent's cached host state; a
// serve on the same host shares the port (SO_REUSEPORT) and takes over
// while the agent is down.
func serveAgentMetadata(ctx context.Context, cfg *config.Config, a *agent.Agent, api agent.PasswordAPI, links *link.Links, log *slog.Logger) {
	if !cfg.MetadataHost.IsValid() || cfg.MetadataHost != cfg.MyIP {
		return
	}
	addr := net.JoinHostPort(cfg.MetadataHost.String(), strconv.Itoa(cfg.MetadataPort))
	a.ServeMetadata(ctx, addr, metadataOptions(cfg, nil), api, links.NeighbourMAC)
}
