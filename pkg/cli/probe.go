package cli

import (
	"context"
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
	"github.com/stacksense/heartbeat/pkg/hostkey"
	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/probe"
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

Meant for cron, twice a minute (see setup_heartbeat_cron.sh). Only one run
per store at a time: a run that finds another in progress exits 0 at once.
Quiet on success; exit 0 whenever the run completed, whatever the servers'
states, non-zero when the run itself failed (store, credentials, flags).`,
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
	log := g.logger(app)
	current := ""
	if u, err := user.Current(); err == nil {
		current = u.Username
	}
	creds := config.ResolveProbeCredentials(o.Key, o.User, o.KnownHosts, app.Getenv, app.Home, current)

	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()

	release, acquired, err := s.TryProbeLock(ctx)
	if err != nil {
		return err
	}
	if !acquired {
		// Two cron lines must never pile up: the running one covers this tick.
		log.Info("another probe-ssh run is in progress on this store; skipping this tick")
		return nil
	}
	defer func() {
		if err := release(); err != nil {
			log.Warn("release probe lock", "err", err)
		}
	}()

	servers, err := s.Servers(ctx)
	if err != nil {
		return err
	}
	targets := make([]probe.Target, 0, len(servers))
	names := make(map[int64]string, len(servers))
	needDefault := false
	for _, sv := range servers {
		if !sv.Enabled || sv.Mode == store.ModePush {
			continue
		}
		t := probe.Target{ServerID: sv.ID, Name: sv.Name, Host: sv.Host, Port: sv.Port, User: sv.User, KeyPath: sv.KeyPath, PinnedHostKey: sv.HostKey}
		if t.User == "" {
			t.User = creds.User
		}
		needDefault = needDefault || t.KeyPath == ""
		targets = append(targets, t)
		names[sv.ID] = sv.Name
	}

	// Every credential is read and checked before any server is contacted:
	// a bad key should stop the run with one line, not fail every server.
	var auth *probe.Auth
	if needDefault {
		auth, err = probe.LoadAuth(ctx, probe.AuthConfig{KeyPath: creds.KeyPath, AgentSocket: creds.AgentSocket, HomeDir: app.Home})
		if err != nil {
			if creds.KeyOrigin != "" {
				err = fmt.Errorf("%w (key set by %s)", err, creds.KeyOrigin)
			}
			return err
		}
	} else {
		auth = probe.NewAuth("per-server keys")
	}
	defer auth.Close()
	if err := auth.LoadTargetKeys(ctx, targets); err != nil {
		return fmt.Errorf("per-server keys: %w", err)
	}
	checker, err := hostkey.NewChecker(policy, creds.KnownHosts)
	if err != nil {
		return err
	}
	if policy == hostkey.PolicyInsecure {
		log.Warn("host keys are NOT verified (--host-key-policy insecure): anyone on the path can impersonate a server")
	}

	host, _ := os.Hostname()
	run, err := s.StartRun(ctx, host, len(targets))
	if err != nil {
		return err
	}
	log.Debug("probe run starting", "run", run.ID, "servers", len(targets), "credentials", auth.Source(), "host_key_policy", policy)

	// Results are written even if a signal cancels the run: what was seen
	// is kept, and the next tick carries on.
	writeCtx := context.WithoutCancel(ctx)
	pinned := make(map[int64]bool, len(targets))
	for _, t := range targets {
		pinned[t.ServerID] = t.PinnedHostKey != nil
	}
	// A writer goroutine stores batches while the probe goes on, so a slow
	// store delays persistence, not probing. The buffer is small: if the
	// store falls far behind, the probe slows down rather than holding an
	// unbounded backlog in memory.
	var (
		writeErr  error
		writeTime time.Duration
		all       []probeResultJSON
		batches   = make(chan []store.ProbeResult, 8)
		written   = make(chan struct{})
	)
	go func() {
		defer close(written)
		for rows := range batches {
			wctx, cancel := context.WithTimeout(writeCtx, 10*time.Second)
			start := time.Now()
			err := s.RecordProbeResults(wctx, rows)
			writeTime += time.Since(start)
			cancel()
			if err != nil {
				log.Error("writing probe results", "err", err, "results", len(rows))
				writeErr = err
			}
		}
	}()
	sink := func(batch []probe.Result) {
		rows := make([]store.ProbeResult, len(batch))
		for i, r := range batch {
			rows[i] = toStoreResult(r, policy, pinned[r.ServerID])
			if o.Verbose {
				printProbeLine(app.Out, names[r.ServerID], r)
			}
			if o.JSON {
				all = append(all, probeResultJSON{r.ServerID, names[r.ServerID], r.OK, string(r.Class), r.Message, float64(r.Latency.Microseconds()) / 1000})
			}
		}
		batches <- rows
	}
	sum := probe.Run(ctx, targets, probe.Options{
		Auth: auth, HostKeys: checker, Exec: o.Exec,
		Concurrency: o.Concurrency, Timeout: o.Timeout, Deadline: o.Deadline,
	}, sink)
	close(batches)
	tailStart := time.Now()
	<-written
	storeTail := time.Since(tailStart)

	run.Probed, run.Succeeded, run.DeadlineHit = sum.Probed, sum.Succeeded, sum.DeadlineHit
	run.FailedByClass = make(map[string]int, len(sum.FailedByClass))
	for c, n := range sum.FailedByClass {
		run.FailedByClass[string(c)] = n
	}
	fctx, cancel := context.WithTimeout(writeCtx, 10*time.Second)
	defer cancel()
	if _, err := s.FinishRun(fctx, run); err != nil {
		return err
	}
	if writeErr != nil {
		return fmt.Errorf("probe run %d: some results were not stored: %w", run.ID, writeErr)
	}
	elapsed := sum.Finished.Sub(sum.Started)
	switch {
	case o.JSON:
		return output.JSON(app.Out, probeRunJSON{
			RunID: run.ID, Servers: len(targets), Probed: sum.Probed, Succeeded: sum.Succeeded,
			FailedByClass: run.FailedByClass, DeadlineHit: sum.DeadlineHit, Seconds: elapsed.Seconds(), StoreSeconds: writeTime.Seconds(),
			StoreTailSeconds: storeTail.Seconds(),
			Results:          nonNilResults(all),
		})
	case o.Summary || o.Verbose:
		_, err := fmt.Fprintln(app.Out, runSummary(run, elapsed))
		return err
	}
	return ctx.Err()
}

func nonNilResults(r []probeResultJSON) []probeResultJSON {
	if r == nil {
		return []probeResultJSON{}
	}
	return r
}

// toStoreResult decides what the store keeps of a probe: under the pin
// policy, the first key a server presents is pinned once it passed the
// host-key check; a mismatching key is kept as "last seen" for
// `servers trust`.
func toStoreResult(r probe.Result, policy hostkey.Policy, hasPin bool) store.ProbeResult {
	out := store.ProbeResult{ServerID: r.ServerID, OK: r.OK, ErrorClass: string(r.Class), Error: r.Message, Latency: r.Latency}
	switch {
	case r.HostKey == nil:
	case r.Class == probe.ClassHostKeyMismatch || r.Class == probe.ClassHostKeyUnknown:
		out.SeenHostKey = r.HostKey
	case policy == hostkey.PolicyPin && !hasPin && pastHostKeyCheck(r.Class):
		out.PinHostKey = r.HostKey
	}
	return out
}

// pastHostKeyCheck reports whether a probe with this outcome got past the
// host-key check, so the key it saw belongs to a completed key exchange.
func pastHostKeyCheck(c probe.Class) bool {
	return c == "" || c == probe.ClassAuth || c == probe.ClassExec
}

func printProbeLine(w io.Writer, name string, r probe.Result) {
	if r.OK {
		fmt.Fprintf(w, "ok    %s  %.1fms\n", name, float64(r.Latency.Microseconds())/1000)
		return
	}
	fmt.Fprintf(w, "FAIL  %s  %s: %s\n", name, r.Class, r.Message)
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

// logger builds the process's structured logger on stderr.
func (g *globalOptions) logger(app *App) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if g.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(app.Err, opts))
	}
	return slog.New(slog.NewTextHandler(app.Err, opts))
}
