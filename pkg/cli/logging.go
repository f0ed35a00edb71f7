package cli

import (
	"io"
	"log/slog"
)

// newLogger builds the process's one structured logger on w, in format
// (text or json, already validated) at level. The root command builds it
// once into globalOptions; a command that logs more (serve-api --verbose)
// lowers the level instead of building its own.
func newLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
