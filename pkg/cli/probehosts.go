package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/store"
)

// printProbeHosts adds the probe hosts to `status --verbose` on a store
// where several hosts share the fleet: each host's last run, its share and
// failures, and a warning for a host that stopped. Other stores (SQLite)
// have one probe host, which the run header already describes.
func printProbeHosts(ctx context.Context, w io.Writer, s store.Store) error {
	leaser, ok := s.(store.ProbeLeaser)
	if !ok {
		return nil
	}
	runs, now, err := leaser.HostRuns(ctx, report.HostWindow)
	if err != nil {
		return err
	}
	for _, line := range report.NewHosts(now, runs).Lines() {
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}
