package cli

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
)

// addLogFlags gives serve and agent --log-format and --log-level; they
// override [novanet] log_format and log_level through ov.
func addLogFlags(cmd *cobra.Command, format, level *string) {
	cmd.Flags().StringVar(format, "log-format", "", "log format on stderr: text or json (default [novanet] log_format, text)")
	cmd.Flags().StringVar(level, "log-level", "", "least severe level logged: debug, info, warn or error (default [novanet] log_level, info)")
}

// logOverrides adds the log flags that were given to a config override
// map.
func logOverrides(ov map[string][]string, format, level string) map[string][]string {
	if ov == nil {
		ov = map[string][]string{}
	}
	if format != "" {
		ov["log_format"] = []string{format}
	}
	if level != "" {
		ov["log_level"] = []string{level}
	}
	return ov
}

// newLogger builds the process logger: slog text (logfmt) or JSON lines.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "info", "":
		l = slog.LevelInfo
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, usagef("log level %q is unknown; use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("log format %q is unknown; use text or json", format)
}

// databaseEngine names a database URL's engine for the start log.
func databaseEngine(db string) string {
	if _, ok := sqlitePath(db); ok || strings.HasPrefix(db, "sqlite:") {
		return "sqlite"
	}
	if scheme, _, ok := strings.Cut(db, "://"); ok {
		return scheme
	}
	return fmt.Sprintf("unknown (%q)", db)
}
