package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/evaluate"
	"github.com/stacksense/heartbeat/pkg/history"
	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/backend"
)

// evaluateOptions is `heartbeat evaluate`'s input.
type evaluateOptions struct {
	JSON bool
}

func newEvaluateCommand(app *App, g *globalOptions) *cobra.Command {
	o := &evaluateOptions{}
	cmd := &cobra.Command{
		Use:   "evaluate [--json]",
		Short: "Judge every server now and record the state changes (for hosts that run neither probe-ssh nor serve-api)",
		Long: `Runs one evaluation round: every server is judged against the store's clock
(OFFLINE when its last heartbeat is older than its stale-after, WARNING with
active alerts, else ONLINE), and each change of state is recorded as a flip
for history, uptime and notifications. probe-ssh does this at the end of
every run and serve-api every 10 seconds; run this from cron where neither
runs (push-only installations without serve-api on the same store).
Several evaluators at once record each change once.`,
		Example: `  * * * * * heartbeat evaluate >>/var/log/heartbeat-evaluate.log 2>&1`,
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEvaluate(cmd.Context(), app, g, o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the recorded changes as a JSON array")
	return cmd
}

// flipJSON is a flip in `evaluate --json` and `history --json`: a stable,
// documented interface (README "history JSON").
type flipJSON struct {
	ID       int64     `json:"id"`
	ServerID int64     `json:"server_id"`
	Server   string    `json:"server"`
	At       time.Time `json:"at"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Reason   string    `json:"reason"`
	Notify   bool      `json:"notify"`
}

func toFlipJSON(f store.Flip) flipJSON {
	return flipJSON{ID: f.ID, ServerID: f.ServerID, Server: f.ServerName, At: f.At, From: f.From, To: f.To, Reason: f.Reason, Notify: f.Notify}
}

func runEvaluate(ctx context.Context, app *App, g *globalOptions, o *evaluateOptions) error {
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := evaluate.Round(ctx, s, evaluate.Options{Log: g.log})
	if err != nil {
		return err
	}
	if o.JSON {
		out := make([]flipJSON, 0, len(res.Flips))
		for _, f := range res.Flips {
			out = append(out, toFlipJSON(f))
		}
		return output.JSON(app.Out, out)
	}
	for _, f := range res.Flips {
		fmt.Fprintln(app.Out, describeFlip(f))
	}
	note := ""
	if res.HostCutOff {
		note = fmt.Sprintf("; the monitoring host looks cut off, so %d ssh server(s) kept their state", res.Suppressed)
	}
	if d := res.Delivery; d.Claimed > 0 || d.DeadlineHit {
		note += fmt.Sprintf("; notifications: %d sent, %d to retry, %d given up", d.Delivered, d.Failed, d.GaveUp)
		if d.DeadlineHit {
			note += " (out of time: the rest goes with the next round)"
		}
	}
	_, err = fmt.Fprintf(app.Out, "evaluated at %s: %d change(s)%s\n", res.Now.Format(time.RFC3339), len(res.Flips), note)
	return err
}

// describeFlip is one line for a flip: "2026-11-23T10:00:00Z web1 ONLINE → OFFLINE: no heartbeat for 60s".
func describeFlip(f store.Flip) string {
	name := f.ServerName
	if f.ServerID == 0 {
		name = "(fleet)"
	}
	from := f.From
	if from == "" {
		from = "new"
	}
	return fmt.Sprintf("%s %s %s → %s: %s", f.At.Format(time.RFC3339), output.Escape(name), from, f.To, output.Escape(f.Reason))
}

// historyOptions is `heartbeat history`'s input.
type historyOptions struct {
	Ref   string
	Since string
	JSON  bool
}

func newHistoryCommand(app *App, g *globalOptions) *cobra.Command {
	o := &historyOptions{}
	cmd := &cobra.Command{
		Use:   "history ID|NAME [--since 7d] [--json]",
		Short: "Show a server's state changes and how long it spent in each state",
		Example: `  heartbeat history web1
  heartbeat history 7 --since 48h --json`,
		Args: exactArgs("ID|NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ref = args[0]
			return runHistory(cmd.Context(), app, g, o)
		},
	}
	cmd.Flags().StringVar(&o.Since, "since", "7d", "how far back: a duration (90m, 48h, 7d) or an RFC 3339 time")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print a JSON array of spans (schema in the README)")
	return cmd
}

// spanJSON is one span of `history --json`.
type spanJSON struct {
	State   string    `json:"state"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Seconds float64   `json:"seconds"`
	Reason  string    `json:"reason"`
	// Current is set on the span the server is still in.
	Current bool `json:"current"`
}

func runHistory(ctx context.Context, app *App, g *globalOptions, o *historyOptions) error {
	return withServer(ctx, app, g, o.Ref, func(s backend.Store, sv store.Server) error {
		st, now, err := s.ServerStatus(ctx, sv.ID)
		if err != nil {
			return err
		}
		since, err := parseSince(o.Since, now)
		if err != nil {
			return err
		}
		flips, err := s.Flips(ctx, store.FlipQuery{ServerID: sv.ID, Since: since})
		if err != nil {
			return err
		}
		spans := history.Spans(flips, st.State, since, now)
		if o.JSON {
			out := make([]spanJSON, 0, len(spans))
			for i, sp := range spans {
				out = append(out, spanJSON{State: sp.State, From: sp.From, To: sp.To, Seconds: sp.Duration().Seconds(), Reason: sp.Reason, Current: i == len(spans)-1})
			}
			return output.JSON(app.Out, out)
		}
		if len(spans) == 0 {
			_, err := fmt.Fprintf(app.Out, "no recorded state for %s since %s (states are recorded by probe-ssh, serve-api or heartbeat evaluate)\n",
				output.Escape(sv.Name), since.Format(time.RFC3339))
			return err
		}
		rows := make([][]string, 0, len(spans))
		for i := len(spans) - 1; i >= 0; i-- { // newest first, like a log
			sp := spans[i]
			to := sp.To.Format("2006-01-02 15:04:05Z")
			if i == len(spans)-1 {
				to = "now"
			}
			rows = append(rows, []string{sp.From.Format("2006-01-02 15:04:05Z"), to, sp.State, status.FormatAge(sp.Duration()), sp.Reason})
		}
		if err := output.TableWith(app.Out, []string{"FROM", "TO", "STATE", "FOR", "REASON"}, rows, tableOptions(app)); err != nil {
			return err
		}
		pct, ok := history.Uptime(spans)
		if !ok {
			return nil
		}
		_, err = fmt.Fprintf(app.Out, "uptime since %s: %s\n", since.Format(time.RFC3339), output.Percent(pct))
		return err
	})
}

// uptimeOptions is `heartbeat uptime`'s input.
type uptimeOptions struct {
	Ref   string
	Since string
	JSON  bool
}

func newUptimeCommand(app *App, g *globalOptions) *cobra.Command {
	o := &uptimeOptions{}
	cmd := &cobra.Command{
		Use:   "uptime [ID|NAME] [--since 30d] [--json]",
		Short: "Show uptime percentages per server over 24h, 7d and 30d",
		Long: `Uptime is the share of monitored time a server was not OFFLINE, computed from
its recorded state changes. Time in MAINTENANCE or DISABLED is not monitored
and counts neither way; time before the server's first evaluation does not
count either. "-" means nothing was monitored in that window.
--since replaces the three windows with one.`,
		Example: `  heartbeat uptime
  heartbeat uptime web1 --since 90d`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("%s takes at most one argument: ID|NAME (got %d)", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Ref = args[0]
			}
			return runUptime(cmd.Context(), app, g, o)
		},
	}
	cmd.Flags().StringVar(&o.Since, "since", "", "one window instead of 24h/7d/30d: a duration (90m, 48h, 7d) or an RFC 3339 time")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print a JSON array (schema in the README)")
	return cmd
}

// uptimeJSON is one server of `uptime --json`: window name → percentage,
// null where nothing was monitored.
type uptimeJSON struct {
	ID     int64               `json:"id"`
	Name   string              `json:"name"`
	Uptime map[string]*float64 `json:"uptime"`
}

func runUptime(ctx context.Context, app *App, g *globalOptions, o *uptimeOptions) error {
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	var snap store.Snapshot
	q := store.FlipQuery{}
	if o.Ref != "" {
		sv, err := resolveServer(ctx, s, o.Ref)
		if err != nil {
			return err
		}
		st, now, err := s.ServerStatus(ctx, sv.ID)
		if err != nil {
			return err
		}
		snap = store.Snapshot{Now: now, Servers: []store.ServerStatus{st}}
		q.ServerID = sv.ID
	} else if snap, err = s.Status(ctx); err != nil {
		return err
	}
	type window struct {
		name string
		from time.Time
	}
	var windows []window
	if o.Since != "" {
		from, err := parseSince(o.Since, snap.Now)
		if err != nil {
			return err
		}
		windows = []window{{o.Since, from}}
	} else {
		for _, w := range history.Windows {
			windows = append(windows, window{w.Name, snap.Now.Add(-w.D)})
		}
	}
	q.Since = windows[0].from
	for _, w := range windows {
		if w.from.Before(q.Since) {
			q.Since = w.from
		}
	}
	flips, err := s.Flips(ctx, q)
	if err != nil {
		return err
	}
	byServer := history.ByServer(flips)
	out := make([]uptimeJSON, 0, len(snap.Servers))
	for _, st := range snap.Servers {
		row := uptimeJSON{ID: st.ID, Name: st.Name, Uptime: map[string]*float64{}}
		all := history.Spans(byServer[st.ID], st.State, q.Since, snap.Now)
		for _, w := range windows {
			if pct, ok := history.Uptime(history.Clip(all, w.from, snap.Now)); ok {
				row.Uptime[w.name] = &pct
			} else {
				row.Uptime[w.name] = nil
			}
		}
		out = append(out, row)
	}
	if o.JSON {
		return output.JSON(app.Out, out)
	}
	header := []string{"ID", "NAME"}
	for _, w := range windows {
		header = append(header, strings.ToUpper(w.name))
	}
	rows := make([][]string, 0, len(out))
	for _, r := range out {
		row := []string{strconv.FormatInt(r.ID, 10), r.Name}
		for _, w := range windows {
			cell := ""
			if p := r.Uptime[w.name]; p != nil {
				cell = output.Percent(*p)
			}
			row = append(row, cell)
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(app.Out, "no servers registered; add one with `heartbeat servers add NAME --host HOST`")
		return err
	}
	return output.TableWith(app.Out, header, rows, tableOptions(app))
}

// parseSince reads a --since value (history.ParseSince); a bad one is a
// usage error.
func parseSince(v string, now time.Time) (time.Time, error) {
	t, err := history.ParseSince(v, now)
	if err != nil {
		return time.Time{}, usageErrorf("--since %v", err)
	}
	return t, nil
}
