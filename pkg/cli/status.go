package cli

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
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
	var snap store.Snapshot
	if o.Server != "" {
		// One server's rows, not the fleet's: as a Nagios check this runs
		// once per server per minute.
		sv, err := resolveServer(ctx, s, o.Server)
		if err != nil {
			return withCode(status.ExitUnknown, err)
		}
		st, now, err := s.ServerStatus(ctx, sv.ID)
		if err != nil {
			return withCode(status.ExitUnknown, err)
		}
		snap = store.Snapshot{Now: now, Servers: []store.ServerStatus{st}}
	} else if snap, err = s.Status(ctx); err != nil {
		return withCode(status.ExitUnknown, err)
	}
	rep := report.Build(snap, o.StaleAfter)
	if o.JSON {
		err = output.JSON(app.Out, rep.Servers)
	} else {
		if o.Verbose {
			last, err := s.LastFinishedRun(ctx)
			if err != nil {
				return withCode(status.ExitUnknown, err)
			}
			aborted, err := s.LastAbortedRun(ctx)
			if err != nil {
				return withCode(status.ExitUnknown, err)
			}
			for _, line := range report.NewRunHeader(snap.Now, last, aborted).Lines() {
				fmt.Fprintln(app.Out, line)
			}
		}
		err = statusTable(app, rep, o.Verbose)
	}
	if err != nil {
		return withCode(status.ExitUnknown, fmt.Errorf("write status: %w", err))
	}
	if code := status.ExitCode(rep.States()); code != 0 {
		return silentExit(code)
	}
	return nil
}

// statusTable prints the report as the `status` table; verbose adds the
// probe columns and the summary line.
func statusTable(app *App, r report.Report, verbose bool) error {
	header := []string{"ID", "NAME", "STATUS", "LAST HEARTBEAT", "AGE", "ALERTS"}
	if verbose {
		header = append(header, "HOST:PORT", "SOURCE", "LAST PROBE", "LATENCY", "FAILURES", "LAST ERROR")
	}
	rows := make([][]string, 0, len(r.Servers))
	for _, s := range r.Servers {
		age := ""
		if s.LastHeartbeat != nil {
			age = status.FormatAge(status.Age(r.Now, *s.LastHeartbeat))
		}
		row := []string{
			strconv.FormatInt(s.ID, 10), s.Name, string(s.Status),
			formatTime(s.LastHeartbeat), age, strconv.Itoa(s.ActiveAlerts),
		}
		if verbose {
			latency := ""
			if s.LatencyMS > 0 {
				latency = fmt.Sprintf("%.1fms", s.LatencyMS)
			}
			lastErr := ""
			if s.LastErrorClass != "" {
				lastErr = s.LastErrorClass + ": " + s.LastError
			}
			row = append(row,
				net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), s.Source, formatTime(s.LastProbe),
				latency, strconv.Itoa(s.ConsecutiveFailures), lastErr)
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(app.Out, "no servers registered; add one with `heartbeat servers add NAME --host HOST`")
		return err
	}
	const statusColumn = 2
	p := palette(app)
	opts := tableOptions(app)
	opts.Style = func(col int, cell string) string {
		if col == statusColumn {
			return p.State(status.State(cell))
		}
		return cell
	}
	if err := output.TableWith(app.Out, header, rows, opts); err != nil {
		return err
	}
	if verbose {
		if _, err := fmt.Fprintln(app.Out, r.Counts.String()); err != nil {
			return err
		}
	}
	return nil
}

// tableOptions renders tables aligned on a terminal and as plain
// tab-separated text otherwise (pipes, cron mail, scripts).
func tableOptions(app *App) output.TableOptions {
	return output.TableOptions{Plain: !app.OutIsTerminal}
}

// formatTime renders a stored time for a table: UTC to the second.
func formatTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
