package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/status"
)

type statusOptions struct {
	Verbose    bool
	JSON       bool
	Server     string
	StaleAfter time.Duration
}

func newStatusCommand(app *App, g *globalOptions) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [--verbose] [--json] [--server ID|NAME] [--stale-after 60s]",
		Short: "Show which servers are ONLINE, WARNING or OFFLINE (exit 0/1/2/3 like a monitoring plugin)",
		Long: `Shows every server's verdict:
  OFFLINE   no heartbeat, or the last one is older than --stale-after
  ONLINE    a fresh heartbeat and no active alerts or anomalies
  WARNING   a fresh heartbeat with active alerts or anomalies
  DISABLED  taken out of monitoring; never counts as down

Exit status follows the monitoring-plugin convention, so
"heartbeat status --server web1" works as a Nagios/Icinga check:
0 all ONLINE (or DISABLED), 1 some WARNING and none OFFLINE, 2 some OFFLINE,
3 status could not be determined (store unreachable, unknown server).`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStatus(cmd.Context(), app, g, o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.Verbose, "verbose", "v", false, "add host, source, probe, latency, failure and error columns and a summary line")
	f.BoolVar(&o.JSON, "json", false, "print a JSON array (schema in the README)")
	f.StringVar(&o.Server, "server", "", "only this server (ID or NAME)")
	f.DurationVar(&o.StaleAfter, "stale-after", status.DefaultStaleAfter, "a heartbeat older than this is OFFLINE")
	return cmd
}

func runStatus(ctx context.Context, app *App, g *globalOptions, o *statusOptions) error {
	if o.StaleAfter <= 0 {
		return withCode(status.ExitUnknown, usageErrorf("--stale-after must be positive, got %s", o.StaleAfter))
	}
	s, err := openStore(ctx, app, g)
	if err != nil {
		return withCode(status.ExitUnknown, err)
	}
	defer s.Close()
	snap, err := s.Status(ctx)
	if err != nil {
		return withCode(status.ExitUnknown, err)
	}
	if o.Server != "" {
		sv, err := resolveServer(ctx, s, o.Server)
		if err != nil {
			return withCode(status.ExitUnknown, err)
		}
		for _, st := range snap.Servers {
			if st.ID == sv.ID {
				snap.Servers = snap.Servers[:0]
				snap.Servers = append(snap.Servers, st)
				break
			}
		}
	}
	report := output.BuildReport(snap, o.StaleAfter)
	if o.JSON {
		err = output.JSON(app.Out, report.Servers)
	} else {
		if o.Verbose {
			last, err := s.LastFinishedRun(ctx)
			if err != nil {
				return withCode(status.ExitUnknown, err)
			}
			for _, line := range output.RunHeader(snap.Now, last) {
				fmt.Fprintln(app.Out, line)
			}
			aborted, err := s.LastAbortedRun(ctx)
			if err != nil {
				return withCode(status.ExitUnknown, err)
			}
			if line := output.AbortedRunLine(snap.Now, aborted); line != "" {
				fmt.Fprintln(app.Out, line)
			}
		}
		err = output.StatusTable(app.Out, report, o.Verbose, palette(app))
	}
	if err != nil {
		return withCode(status.ExitUnknown, fmt.Errorf("write status: %w", err))
	}
	if code := status.ExitCode(report.States()); code != 0 {
		return silentExit(code)
	}
	return nil
}
