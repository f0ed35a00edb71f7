package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/store"
)

// probeHostRuns reads each probe host's last run on a store where several
// hosts share the fleet; other stores (SQLite) have one probe host, which
// the run header already describes, and give nil.
func probeHostRuns(ctx context.Context, s store.Store) ([]store.Run, time.Time, error) {
	leaser, ok := s.(store.ProbeLeaser)
	if !ok {
		return nil, time.Time{}, nil
	}
	return leaser.HostRuns(ctx, report.HostWindow)
}

// printProbeHosts adds the probe hosts to `status --verbose`: each host's
// last run, its share and failures, a warning for a host that stopped,
// and, with several locations or a quorum, the locations line.
func printProbeHosts(w io.Writer, now time.Time, runs []store.Run, quorum int) error {
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
