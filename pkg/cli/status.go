package cli

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

type statusOptions struct {
	Verbose bool
	JSON    bool
	// All lists ONLINE servers too when the fleet is bigger than
	// shortListLimit.
	All    bool
	Server string
	// StaleAfter, when given (staleAfterSet), overrides every server's own
	// window.
	StaleAfter    time.Duration
	staleAfterSet bool
	// Check prints one monitoring-plugin line instead of the table.
	Check                    bool
	WarnOffline, CritOffline int
}

func newStatusCommand(app *App, g *globalOptions) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [--verbose] [--all] [--json] [--check [--warn-offline N] [--crit-offline M]] [--server ID|NAME] [--stale-after 60s]",
		Short: "Show which servers are ONLINE, WARNING or OFFLINE (exit 0/1/2/3 like a monitoring plugin)",
		Long: `Shows every server's verdict:
  OFFLINE   no heartbeat, or the last one is older than the server's stale-after
            (servers add/set --stale-after, default 60s; --stale-after here overrides)
  ONLINE    a fresh heartbeat and no active alerts or anomalies
  WARNING   a fresh heartbeat with active alerts or anomalies
  DISABLED  taken out of monitoring; never counts as down

With more than 50 servers the table lists only the servers that are not
ONLINE, then the counts and "N online servers not shown; --all to list
them"; --all lists every server. --json always lists every server.

Exit status follows the monitoring-plugin convention (over the whole
fleet, listed or not):
0 all ONLINE (or DISABLED), 1 some WARNING and none OFFLINE, 2 some OFFLINE,
3 status could not be determined (store unreachable, unknown server, bad flag).

--check prints one Nagios/Icinga plugin line instead of the table:
  heartbeat status --check --server web1
  HEARTBEAT OK - web1 ONLINE, last heartbeat 4s ago | age=4s;;60;0 ...
Without --server it checks the fleet: CRITICAL when more than --crit-offline
servers are OFFLINE, WARNING when more than --warn-offline are or any server
is WARNING; the counts are its performance data. Any error is one
"HEARTBEAT UNKNOWN - ..." line on stdout and exit 3.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.staleAfterSet = cmd.Flags().Changed("stale-after")
			return runStatus(cmd.Context(), app, g, o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.Verbose, "verbose", "v", false, "add host, source, probe, latency, failure and error columns and a summary line")
	f.BoolVar(&o.JSON, "json", false, "print a JSON array of every server (schema in the README)")
	f.BoolVar(&o.All, "all", false, "list ONLINE servers too when there are more than 50 servers (the table then shows only the others)")
	f.StringVar(&o.Server, "server", "", "only this server (ID or NAME)")
	f.DurationVar(&o.StaleAfter, "stale-after", 0, "judge every server with this window instead of its own (servers add/set --stale-after; default 60s)")
	f.BoolVar(&o.Check, "check", false, "print one monitoring-plugin line (HEARTBEAT OK - ... | perfdata) for Nagios/Icinga")
	f.IntVar(&o.WarnOffline, "warn-offline", 0, "with --check and no --server: WARNING when more than N servers are OFFLINE")
	f.IntVar(&o.CritOffline, "crit-offline", 0, "with --check and no --server: CRITICAL when more than M servers are OFFLINE")
	return withFailureCode(cmd, status.ExitUnknown)
}

func runStatus(ctx context.Context, app *App, g *globalOptions, o *statusOptions) error {
	if o.staleAfterSet && o.StaleAfter <= 0 {
		return usageErrorf("--stale-after must be positive, got %s", o.StaleAfter)
	}
	if o.Check && (o.JSON || o.Verbose) {
		return usageErrorf("--check prints one plugin line: it does not combine with --json or --verbose")
	}
	if o.WarnOffline < 0 || o.CritOffline < 0 {
		return usageErrorf("--warn-offline and --crit-offline must not be negative")
	}
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	if o.JSON && o.Server == "" {
		return streamFleetJSON(ctx, app, s, o)
	}
	var rep report.Report
	if o.Server != "" {
		if rep, err = serverReport(ctx, s, o); err != nil {
			return err
		}
	} else if rep, err = fleetReport(ctx, s, o); err != nil {
		return err
	}
	if o.Check {
		line, code := fleetCheck(rep, o.WarnOffline, o.CritOffline)
		if o.Server != "" {
			line, code = serverCheck(rep)
		}
		if _, err := fmt.Fprintln(app.Out, line); err != nil {
			return fmt.Errorf("write status: %w", err)
		}
		if code != 0 {
			return silentExit(code)
		}
		return nil
	}
	if o.JSON {
		err = output.JSON(app.Out, rep.Servers)
	} else {
		if o.Verbose {
			last, err := s.LastFinishedRun(ctx)
			if err != nil {
				return err
			}
			aborted, err := s.LastAbortedRun(ctx)
			if err != nil {
				return err
			}
			hostRuns, hostsNow, err := probeHostRuns(ctx, s)
			if err != nil {
				return err
			}
			for _, line := range report.NewRunHeader(rep.Now, report.HeaderRun(last, hostRuns), aborted).Lines() {
				fmt.Fprintln(app.Out, line)
			}
			quorum, err := report.ReadQuorum(ctx, s)
			if err != nil {
				return err
			}
			if err := printProbeHosts(app.Out, hostsNow, hostRuns, quorum); err != nil {
				return err
			}
		}
		err = statusTable(app, rep, o.Verbose)
	}
	if err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	if code := exitCode(rep.Counts); code != 0 {
		return silentExit(code)
	}
	return nil
}

// shortListLimit is the fleet size above which `status` lists only the
// servers that are not ONLINE unless --all is given: at 100,000 servers
// the full table is 100,000 lines nobody reads, and took seconds.
const shortListLimit = 50

// serverReport judges one server (--server): one server's rows, not the
// fleet's, since as a Nagios check this runs once per server per minute.
func serverReport(ctx context.Context, s store.Store, o *statusOptions) (report.Report, error) {
	sv, err := resolveServer(ctx, s, o.Server)
	if err != nil {
		return report.Report{}, err
	}
	return report.LoadServer(ctx, s, sv.ID, o.StaleAfter, o.Verbose || o.JSON)
}

// fleetReport judges the fleet from rows streamed out of the store,
// keeping only what will be printed: every row for --json and --check,
// else, past shortListLimit servers and without --all, the rows that are
// not ONLINE (Report.Counts still covers every server, and so does the
// exit code). The 24-hour flips (for the uptime of --verbose and --json)
// are read after the rows, so none is missed.
func fleetReport(ctx context.Context, s store.Store, o *statusOptions) (report.Report, error) {
	c := &report.Collector{StaleAfter: o.StaleAfter}
	short := !o.JSON && !o.Check && !o.All
	if short {
		// More than shortListLimit ONLINE rows means a fleet too big to
		// list whole, whose ONLINE rows are dropped below anyway.
		online := 0
		c.Keep = func(r *report.ServerStatus) bool {
			if r.Status != status.Online {
				return true
			}
			online++
			return online <= shortListLimit
		}
	}
	now, flips, err := c.Collect(ctx, s, o.Verbose || o.JSON)
	if err != nil {
		return report.Report{}, err
	}
	rep := c.Report(now, flips)
	if short && countAll(rep.Counts) > shortListLimit {
		rep.Servers = slices.DeleteFunc(rep.Servers, func(r report.ServerStatus) bool { return r.Status == status.Online })
	}
	return rep, nil
}

// streamFleetJSON is `status --json` for the fleet: every row, encoded
// one at a time from the collected rows, so the report and its JSON never
// sit in memory beside them (100,000 servers took 370 MiB when they did).
func streamFleetJSON(ctx context.Context, app *App, s store.Store, o *statusOptions) error {
	c := &report.Collector{StaleAfter: o.StaleAfter}
	now, flips, err := c.Collect(ctx, s, true)
	if err != nil {
		return err
	}
	a := output.NewJSONArrayWriter(app.Out)
	rep, rows := c.Rows(now, flips)
	err = a.AddAll(rows.Len(), func(i int) output.JSONAppender { return rows.At(i) })
	if err == nil {
		err = a.Close()
	}
	if err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	if code := exitCode(rep.Counts); code != 0 {
		return silentExit(code)
	}
	return nil
}

// countAll is how many servers the counts cover.
func countAll(c status.Counts) int { return c.Online + c.Warning + c.Offline + c.Disabled }

// exitCode is status.ExitCode over every server counted.
func exitCode(c status.Counts) int {
	switch {
	case c.Offline > 0:
		return status.ExitCritical
	case c.Warning > 0:
		return status.ExitWarning
	}
	return status.ExitOK
}

// statusTable prints the report as the `status` table; verbose adds the
// probe columns and the summary line.
func statusTable(app *App, r report.Report, verbose bool) error {
	header := []string{"ID", "NAME", "STATUS", "LAST HEARTBEAT", "AGE", "ALERTS"}
	// LOCATIONS only where more than one location probes the fleet: one
	// location says nothing the heartbeat columns do not.
	locations := verbose && slices.ContainsFunc(r.Servers, func(s report.ServerStatus) bool { return s.SeenFrom != "" })
	if verbose {
		header = append(header, "FOR", "UPTIME 24H", "HOST:PORT", "SOURCE", "LAST PROBE", "LATENCY", "FAILURES", "LAST ERROR")
		if locations {
			header = append(header, "LOCATIONS")
		}
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
			held, uptime := "", ""
			if s.Since != nil {
				held = status.FormatAge(status.Age(r.Now, *s.Since))
			}
			if s.Flapping {
				held += " (flapping)"
			}
			if s.Uptime24h != nil {
				uptime = output.Percent(*s.Uptime24h)
			}
			row = append(row, held, uptime,
				net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), s.Source, formatTime(s.LastProbe),
				latency, strconv.Itoa(s.ConsecutiveFailures), lastErr)
			if locations {
				seen := s.SeenFrom
				if s.QuorumHeld {
					seen += " (below quorum: not OFFLINE)"
				}
				row = append(row, seen)
			}
		}
		rows = append(rows, row)
	}
	hidden := countAll(r.Counts) - len(rows)
	if len(rows) == 0 && hidden == 0 {
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
	if len(rows) > 0 {
		if err := output.TableWith(app.Out, header, rows, opts); err != nil {
			return err
		}
	}
	if verbose || hidden > 0 {
		if _, err := fmt.Fprintln(app.Out, r.Counts.String()); err != nil {
			return err
		}
	}
	if hidden > 0 {
		if _, err := fmt.Fprintf(app.Out, "%d online servers not shown; --all to list them\n", hidden); err != nil {
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
