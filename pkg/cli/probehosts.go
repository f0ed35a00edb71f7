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
	quorum, err := report.ReadQuorum(ctx, s)
	if err != nil {
		return err
	}
	hosts := report.NewHosts(now, runs)
	lines := hosts.Lines()
	if l := report.NewVantage(hosts, quorum).Line(); l != "" {
		lines = append(lines, l)
	}
	for _, line := range lines {
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}
