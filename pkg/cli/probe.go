package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/config"
	"github.com/stacksense/heartbeat/pkg/evaluate"
	"github.com/stacksense/heartbeat/pkg/hostkey"
	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/ping"
	"github.com/stacksense/heartbeat/pkg/probe"
	"github.com/stacksense/heartbeat/pkg/proberun"
	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/store"
)

type probeOptions struct {
	Concurrency   int
	Timeout       time.Duration
	Deadline      time.Duration
	Exec          string
	Key           string
	User          string
	HostKeyPolicy string
	KnownHosts    string
	Summary       bool
	Verbose       bool
	JSON          bool
	// KeepRuns and KeepResolvedAlerts are the history retention each run
	// prunes to.
	KeepRuns           time.Duration
	KeepResolvedAlerts time.Duration
	KeepFlips          time.Duration
	// PingURL is a dead-man's switch pinged after each healthy run.
	PingURL string
	// All probes every server now instead of the due ones (Postgres).
	All bool
	// ProbeHost names this probe host in the run records and keys its
	// run lock; default the machine's host name.
	ProbeHost string
	// Location groups probe hosts: hosts of one location share the
	// fleet, and every location probes every server (Postgres).
	Location string
}

func newProbeCommand(app *App, g *globalOptions) *cobra.Command {
	o := &probeOptions{}
	cmd := &cobra.Command{
		Use:   "probe-ssh",
		Short: "Log in to every enabled server over SSH and record a heartbeat for each that answers",
		Long: `Probes every enabled server: TCP connect, SSH handshake, host-key check and
user authentication (and --exec, if given). A successful login records a
heartbeat; a failure records its class (dns, refused, unreachable, timeout,
banner, handshake, hostkey-unknown, hostkey-mismatch, auth, exec).

Meant for cron, twice a minute (see setup_heartbeat_cron.sh). On Postgres,
several probe hosts share the fleet: each run claims the servers that are
due in batches, with a lease, so every server is probed once per tick by
one of them. Only one run per host at a time (on SQLite: per store): a run
that finds another in progress exits 0 at once.
Quiet on success; exit 0 whenever the run completed, whatever the servers'
states, non-zero when the run itself failed (store, credentials, flags, lost
lock), with one line on stderr; 130/143 when SIGINT/SIGTERM interrupted it.
--deadline is the run's total limit: every store call is bounded too, so a
run ends within --deadline plus a few seconds whatever the store does.`,
		Example: `  heartbeat probe-ssh --summary
  heartbeat probe-ssh --verbose --key /etc/heartbeat/id_ed25519 --user monitor
  heartbeat probe-ssh --host-key-policy known-hosts --known-hosts /etc/ssh/ssh_known_hosts`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runProbe(cmd.Context(), app, g, o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Concurrency, "concurrency", probe.DefaultConcurrency, "probes in flight at once")
	f.DurationVar(&o.Timeout, "timeout", probe.DefaultTimeout, "limit for one probe: connect, banner, handshake, auth (and --exec)")
	f.DurationVar(&o.Deadline, "deadline", probe.DefaultDeadline, "limit for the whole run; probes still open are recorded as timeout")
	f.StringVar(&o.Exec, "exec", "", "also run this command after login; it must exit 0")
	f.StringVar(&o.Key, "key", "", "private key for servers without their own (env HEARTBEAT_SSH_KEY, SSH_PRIVATE_KEY_PATH; default ssh-agent, ~/.ssh/id_ed25519, ~/.ssh/id_rsa)")
	f.StringVar(&o.User, "user", "", "SSH login for servers without their own (env HEARTBEAT_SSH_USER; default the current user)")
	f.StringVar(&o.HostKeyPolicy, "host-key-policy", string(hostkey.PolicyPin), "pin (trust on first use), known-hosts, or insecure")
	f.StringVar(&o.KnownHosts, "known-hosts", "", "known_hosts file for --host-key-policy known-hosts (default ~/.ssh/known_hosts)")
	f.BoolVar(&o.Summary, "summary", false, "print one summary line")
	f.BoolVarP(&o.Verbose, "verbose", "v", false, "print one line per server")
	f.BoolVar(&o.JSON, "json", false, "print the run and every result as JSON")
	f.DurationVar(&o.KeepRuns, "keep-runs", proberun.DefaultKeepRuns, "delete probe run records older than this (negative: keep for ever)")
	f.DurationVar(&o.KeepResolvedAlerts, "keep-resolved-alerts", proberun.DefaultKeepResolvedAlerts, "delete alerts resolved longer ago than this (negative: keep for ever)")
	f.DurationVar(&o.KeepFlips, "keep-flips", proberun.DefaultKeepFlips, "delete state changes older than this (negative: keep for ever; uptime needs them)")
	f.BoolVar(&o.All, "all", false, "probe every enabled server now, not only those due this tick (Postgres; by hand, to see every server)")
	f.StringVar(&o.Location, "location", "", "probe location of this host: hosts of one location share the fleet, each location probes every server (env HEARTBEAT_LOCATION; default \"default\"; Postgres)")
	f.StringVar(&o.ProbeHost, "probe-host", "", "name of this probe host in run records and its run lock (env HEARTBEAT_PROBE_HOST; default the host name)")
	f.StringVar(&o.PingURL, "ping-url", "", "dead-man's switch pinged after each healthy run: healthchecks.io, Uptime Kuma push or any URL (env HEARTBEAT_PING_URL)")
	return cmd
}

// probeResultJSON is one server in `probe-ssh --json`.
type probeResultJSON struct {
	ServerID  int64   `json:"server_id"`
	Name      string  `json:"name"`
	OK        bool    `json:"ok"`
	Class     string  `json:"error_class"`
	Message   string  `json:"error"`
	LatencyMS float64 `json:"latency_ms"`
	// PhasesMS is where the probe spent its time (as in `status --json`).
	PhasesMS *report.PhasesMS `json:"phases_ms"`
}

// probeRunJSON is the output of `probe-ssh --json`.
type probeRunJSON struct {
	RunID         int64          `json:"run_id"`
	Servers       int            `json:"servers"`
	Probed        int            `json:"probed"`
	Succeeded     int            `json:"succeeded"`
	FailedByClass map[string]int `json:"failed_by_class"`
	DeadlineHit   bool           `json:"deadline_hit"`
	Seconds       float64        `json:"seconds"`
	// StoreSeconds is the time spent writing results to the store, mostly
	// while probes were still running.
	StoreSeconds float64 `json:"store_seconds"`
	// StoreTailSeconds is how long the run waited for its writes after the
	// last probe finished.
	StoreTailSeconds float64           `json:"store_tail_seconds"`
	Results          []probeResultJSON `json:"results"`
}

func runProbe(ctx context.Context, app *App, g *globalOptions, o *probeOptions) error {
	switch {
	case o.Concurrency <= 0:
		return usageErrorf("--concurrency must be positive, got %d", o.Concurrency)
	case o.Timeout <= 0:
		return usageErrorf("--timeout must be positive, got %s", o.Timeout)
	case o.Deadline <= 0:
		return usageErrorf("--deadline must be positive, got %s", o.Deadline)
	case o.JSON && (o.Verbose || o.Summary):
		return usageErrorf("--json cannot be combined with --verbose or --summary")
	}
	policy, err := hostkey.ParsePolicy(o.HostKeyPolicy)
	if err != nil {
		return usageErrorf("--host-key-policy: %v", err)
	}
	if o.PingURL == "" {
		o.PingURL = app.Getenv("HEARTBEAT_PING_URL")
	}
	var pinger *ping.Pinger
	if o.PingURL != "" {
		if pinger, err = ping.New(o.PingURL); err != nil {
			return usageErrorf("--ping-url: %v", err)
		}
	}
	started := time.Now()
	log := g.log
	current := ""
	if u, err := user.Current(); err == nil {
		current = u.Username
	}
	creds := config.ResolveProbeCredentials(o.Key, o.User, o.KnownHosts, app.Getenv, app.Home, current)
	host, err := probeHost(o.ProbeHost, app.Getenv)
	if err != nil {
		return err
	}
	location, err := probeLocation(o.Location, app.Getenv)
	if err != nil {
		return err
	}

	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()

	if pinger != nil {
		if perr := pinger.Start(ctx); perr != nil {
			log.Warn("dead-man's switch", "err", perr)
		}
	}
	var results []probeResultJSON
	out, err := proberun.Execute(ctx, s, proberun.Config{
		Host: host, Location: location, User: creds.User,
		Auth:      probe.AuthConfig{KeyPath: creds.KeyPath, AgentSocket: creds.AgentSocket, HomeDir: app.Home},
		KeyOrigin: creds.KeyOrigin, Policy: policy, KnownHosts: creds.KnownHosts,
		All:  o.All,
		Exec: o.Exec, Concurrency: o.Concurrency, Timeout: o.Timeout, Deadline: o.Deadline,
		KeepRuns: o.KeepRuns, KeepResolvedAlerts: o.KeepResolvedAlerts, KeepFlips: o.KeepFlips,
		Log: log,
		OnResult: func(name string, r probe.Result) {
			if o.Verbose {
				printProbeLine(app.Out, name, r)
			}
			if o.JSON {
				results = append(results, probeResultJSON{r.ServerID, name, r.OK, string(r.Class), r.Message, float64(r.Latency.Microseconds()) / 1000,
					report.NewPhasesMS(store.Phases(r.Phases))})
			}
		},
	})
	if errors.Is(err, proberun.ErrSingleHost) {
		return withCode(ExitUsage, err)
	}
	if errors.Is(err, proberun.ErrOlderRun) {
		// Not quiet: it goes on every tick until that host is upgraded.
		log.Warn(err.Error() + "; skipping this tick")
		return nil
	}
	if errors.Is(err, proberun.ErrLocked) {
		// Two cron lines must never pile up: the running run covers this tick.
		log.Info(err.Error() + "; skipping this tick")
		return nil
	}
	if err != nil && !errors.Is(err, proberun.ErrInterrupted) {
		pingFail(pinger, log, err)
		return err
	}
	if err == nil {
		// The round gets what is left of the run's budget, and at least
		// enough for its own store calls: a slow notification channel
		// leaves its messages for the next tick rather than stretch the run.
		budget := max(time.Until(started.Add(o.Deadline)), evaluate.DefaultStoreTimeout)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
		_, rerr := evaluate.Round(rctx, s, evaluate.Options{Run: &out.Run, Log: log})
		cancel()
		if rerr != nil {
			// The heartbeats are stored; the next round records the
			// changes this one missed.
			log.Warn("evaluation round failed; state changes are recorded by the next one", "err", rerr)
			pingFail(pinger, log, rerr)
		} else if pinger != nil {
			if perr := pinger.Success(ctx, runSummary(out.Run, out.Elapsed)); perr != nil {
				log.Warn("dead-man's switch", "err", perr)
			}
		}
	}
	// An interrupted run still reports what it did, then fails with the
	// one exit code of an interrupted command (128+signal), whatever the
	// output flags.
	interrupted := err
	if perr := printProbeRun(app, o, out, results); perr != nil {
		return perr
	}
	if interrupted != nil {
		return interrupted
	}
	return ctx.Err()
}

// probeHost resolves the name a run records and locks under: the flag,
// HEARTBEAT_PROBE_HOST, else the machine's host name. Two processes with
// the same name never run at once, so a name must be one printable word.
func probeHost(flag string, getenv func(string) string) (string, error) {
	name, origin := flag, "--probe-host"
	if name == "" {
		name, origin = getenv("HEARTBEAT_PROBE_HOST"), "HEARTBEAT_PROBE_HOST"
	}
	if name == "" {
		h, _ := os.Hostname()
		return h, nil
	}
	if len(name) > 64 {
		return "", usageErrorf("%s: at most 64 characters, got %d", origin, len(name))
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f {
			return "", usageErrorf("%s: %q has a space or control character", origin, name)
		}
	}
	return name, nil
}

// probeLocation resolves the run's location: the flag, HEARTBEAT_LOCATION,
// else store.DefaultLocation.
func probeLocation(flag string, getenv func(string) string) (string, error) {
	name, origin := flag, "--location"
	if name == "" {
		name, origin = getenv("HEARTBEAT_LOCATION"), "HEARTBEAT_LOCATION"
	}
	if name == "" {
		return store.DefaultLocation, nil
	}
	if err := store.ValidateLocation(name); err != nil {
		return "", usageErrorf("%s: %s", origin, strings.TrimSuffix(err.Error(), ": "+store.ErrInvalid.Error()))
	}
	return name, nil
}

// pingFail tells the dead-man's switch that the run failed, where its URL
// takes failure pings.
func pingFail(p *ping.Pinger, log *slog.Logger, cause error) {
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ping.Timeout)
	defer cancel()
	if err := p.Fail(ctx, oneLine(cause)); err != nil {
		log.Warn("dead-man's switch", "err", err)
	}
}

func printProbeRun(app *App, o *probeOptions, out proberun.Outcome, results []probeResultJSON) error {
	run := out.Run
	switch {
	case o.JSON:
		return output.JSON(app.Out, probeRunJSON{
			RunID: run.ID, Servers: run.Servers, Probed: run.Probed, Succeeded: run.Succeeded,
			FailedByClass: run.FailedByClass, DeadlineHit: run.DeadlineHit, Seconds: out.Elapsed.Seconds(),
			StoreSeconds: out.StoreTime.Seconds(), StoreTailSeconds: out.StoreTail.Seconds(),
			Results: nonNilResults(results),
		})
	case o.Summary || o.Verbose:
		_, err := fmt.Fprintln(app.Out, runSummary(run, out.Elapsed))
		return err
	}
	return nil
}

func nonNilResults(r []probeResultJSON) []probeResultJSON {
	if r == nil {
		return []probeResultJSON{}
	}
	return r
}

func printProbeLine(w io.Writer, name string, r probe.Result) {
	if r.OK {
		fmt.Fprintf(w, "ok    %s  %.1fms\n", output.Escape(name), float64(r.Latency.Microseconds())/1000)
		return
	}
	fmt.Fprintf(w, "FAIL  %s  %s: %s\n", output.Escape(name), r.Class, output.Escape(r.Message))
}

// runSummary is the one line of `probe-ssh --summary`.
func runSummary(run store.Run, elapsed time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "probed %s servers in %.1fs: %s answered", output.Thousands(run.Probed), elapsed.Seconds(), output.Thousands(run.Succeeded))
	if failed := run.Probed - run.Succeeded; failed > 0 {
		classes := make([]string, 0, len(run.FailedByClass))
		for c := range run.FailedByClass {
			classes = append(classes, c)
		}
		sort.Slice(classes, func(i, j int) bool {
			if run.FailedByClass[classes[i]] != run.FailedByClass[classes[j]] {
				return run.FailedByClass[classes[i]] > run.FailedByClass[classes[j]]
			}
			return classes[i] < classes[j]
		})
		parts := make([]string, len(classes))
		for i, c := range classes {
			parts[i] = fmt.Sprintf("%s %d", c, run.FailedByClass[c])
		}
		fmt.Fprintf(&b, ", %s failed (%s)", output.Thousands(failed), strings.Join(parts, ", "))
	}
	if run.DeadlineHit {
		b.WriteString("; the run deadline cut it short")
	}
	return b.String()
}
