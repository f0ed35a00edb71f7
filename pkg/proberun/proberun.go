// Package proberun carries out one probe-ssh run against a store: it takes
// the probe lock (the store's, or on a store that leases, this host's),
// turns the enabled ssh-mode servers into targets (on a store that leases:
// those it claims, batch by batch, as the run goes; see shared.go),
// loads and checks every credential before contacting anyone, records the
// run, and stores results batch by batch while the probe goes on.
//
// It is the only package that knows both pkg/probe and pkg/store, so that
// the prober stays testable without a database and the CLI only wires
// flags to it.
package proberun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/stacksense/heartbeat/pkg/failure"
	"github.com/stacksense/heartbeat/pkg/hostkey"
	"github.com/stacksense/heartbeat/pkg/probe"
	"github.com/stacksense/heartbeat/pkg/store"
)

// ErrLocked reports that another run holds the store's probe lock; the
// caller should skip this tick quietly.
var ErrLocked = errors.New("another probe-ssh run is in progress on this store")

// ErrOlderRun is ErrLocked when the run holding the lock is a probe-ssh
// from before hosts shared the fleet: it probes every server itself under
// the store-wide lock, so runs of this version skip their tick while it
// runs, and it skips its own while they do. It goes on until that host is
// upgraded, which is why it deserves more than ErrLocked's quiet skip.
var ErrOlderRun = fmt.Errorf("%w: %w; upgrade heartbeat on every probe host", ErrLocked, store.ErrExclusiveProbeRun)

// ErrLockLost reports that the run lost the store's probe lock mid-run (on
// Postgres: its session was terminated or the server restarted). Another
// run may hold it by then, so this one stopped probing and writing.
var ErrLockLost = errors.New("lost the probe lock")

// ErrSingleHost reports a setting that needs several probe hosts on a
// store that has one (SQLite).
var ErrSingleHost = errors.New("the store is single-host")

// ErrInterrupted reports that the caller cancelled the run (a signal).
// Results of probes that completed were stored; probes cut short and
// servers not yet probed were left untouched.
var ErrInterrupted = errors.New("run interrupted")

// Defaults for Config.
const (
	// DefaultStoreTimeout bounds each store call of a run.
	DefaultStoreTimeout = 5 * time.Second
	// DefaultKeepRuns and DefaultKeepResolvedAlerts are how long run
	// records and resolved alerts are kept before a run prunes them.
	DefaultKeepRuns           = 7 * 24 * time.Hour
	DefaultKeepResolvedAlerts = 90 * 24 * time.Hour
	// DefaultKeepFlips keeps state changes a little over a year, so a
	// year of uptime can always be computed.
	DefaultKeepFlips = 400 * 24 * time.Hour
)

// hungStoreTimeout bounds the lock release once a store call has timed
// out: the store is not answering, and dropping the connection frees the
// lock anyway.
const hungStoreTimeout = time.Second

// Config describes one run.
type Config struct {
	// Host names this prober in the runs table.
	Host string
	// Location is the probe location (store.ValidateLocation; ""
	// means store.DefaultLocation). Only a store where hosts share the
	// fleet (store.ProbeLeaser) has locations other than the default.
	Location string
	// User is the login for servers without their own.
	User string
	// Auth says where the default credentials come from; it is only read
	// when some server has no key of its own.
	Auth probe.AuthConfig
	// KeyOrigin names the setting that chose Auth.KeyPath, for errors.
	KeyOrigin string
	// Policy and KnownHosts choose the host-key check.
	Policy     hostkey.Policy
	KnownHosts string
	// Exec, Concurrency, Timeout and Deadline are passed to the prober.
	Exec        string
	Concurrency int
	Timeout     time.Duration
	Deadline    time.Duration
	// Tick is the schedule's interval on a store where hosts share the
	// fleet (store.ProbeLeaser): a probed server is due again at the next
	// tick (see the due rule there). 0 means DefaultTick.
	Tick time.Duration
	// All probes every enabled ssh-mode server now, as a run on a store
	// without leases does, whatever is due (by hand, to see every server);
	// on a leasing store it takes only the host lock and claims nothing.
	All bool
	// ClaimBatch caps how many servers a shared run claims at once; 0
	// means min(Concurrency, DefaultClaimBatch). A claim is smaller still
	// when fewer workers are free (see claimer).
	ClaimBatch int
	// StoreTimeout bounds each store call (lock, servers, run record,
	// each batch of results, lock release); 0 means DefaultStoreTimeout.
	// A run ends within Deadline plus about two StoreTimeouts whatever
	// the store does.
	StoreTimeout time.Duration
	// KeepRuns, KeepResolvedAlerts and KeepFlips are the retention of run
	// records, resolved alerts and state changes, pruned at the end of each run; 0 means the
	// defaults, negative means keep for ever.
	KeepRuns           time.Duration
	KeepResolvedAlerts time.Duration
	KeepFlips          time.Duration
	// OnResult, if set, sees every result with its server's name, on one
	// goroutine, as results arrive (for --verbose and --json). Probes cut
	// short by cancellation are not shown.
	OnResult func(name string, r probe.Result)
	Log      *slog.Logger
	// Dial, if set, replaces the prober's TCP dialer (probe.Options.Dial).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Outcome is what a finished run did.
type Outcome struct {
	Run store.Run
	// Elapsed is the probing time, first dial to last result.
	Elapsed time.Duration
	// StoreTime is the time spent in store writes, mostly overlapping the
	// probing; StoreTail is how long the run waited for them after its
	// last probe.
	StoreTime time.Duration
	StoreTail time.Duration
	// Interrupted counts servers whose probe cancellation cut short or
	// left unstarted; they were not written.
	Interrupted int
}

// Execute runs one probe over every enabled ssh-mode server in s or, when s
// is a store.ProbeLeaser and cfg.All is not set, over the due servers this
// run claims while other hosts claim the rest. It
// returns ErrLocked, untouched, when another run holds the lock (ErrOlderRun
// when that is an older binary's store-wide run); wrapped
// ErrLockLost or ErrInterrupted (with the Outcome so far) when the run was
// cut short. Every error is one line.
func Execute(ctx context.Context, s store.Store, cfg Config) (out Outcome, err error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = DefaultStoreTimeout
	}
	// Store calls go on after a signal, each within its own timeout, so
	// what was seen is kept; a signal only stops the probing.
	bg := context.WithoutCancel(ctx)
	st := &storeCalls{timeout: cfg.StoreTimeout}

	// On a store that leases (Postgres) hosts share the fleet and only
	// runs on the same host exclude each other; elsewhere (SQLite) one run
	// per store probes everything.
	leaser, leases := s.(store.ProbeLeaser)
	if cfg.Location == "" {
		cfg.Location = store.DefaultLocation
	}
	if err := store.ValidateLocation(cfg.Location); err != nil {
		return Outcome{}, err
	}
	if !leases && cfg.Location != store.DefaultLocation {
		return Outcome{}, fmt.Errorf("location %q: this store has one probe host and so one location; "+
			"locations need a store that several probe hosts share (Postgres): %w", cfg.Location, ErrSingleHost)
	}
	// A run over every server (cfg.All) takes the host lock too but
	// claims nothing: it leaves the schedule's shares alone.
	shared := leases && !cfg.All
	var (
		lock     store.ProbeLock
		acquired bool
	)
	if leases {
		lock, acquired, err = leaser.TryHostProbeLock(st.bound(bg), cfg.Host)
	} else {
		lock, acquired, err = s.TryProbeLock(st.bound(bg))
	}
	st.done()
	if errors.Is(err, store.ErrExclusiveProbeRun) {
		return Outcome{}, ErrOlderRun
	}
	if err != nil {
		return Outcome{}, st.describe("take the probe lock", err)
	}
	if !acquired {
		return Outcome{}, ErrLocked
	}
	defer func() {
		timeout := cfg.StoreTimeout
		if st.hung {
			timeout = hungStoreTimeout
		}
		rctx, cancel := context.WithTimeout(bg, timeout)
		defer cancel()
		if rerr := lock.Release(rctx); rerr != nil && err == nil {
			// The connection was dropped, which frees the lock too: worth
			// a warning, not a failed run. A run that already failed has
			// its one line.
			cfg.Log.Warn("release probe lock", "err", rerr)
		}
	}()

	servers, err := s.Servers(st.bound(bg))
	st.done()
	if err != nil {
		return Outcome{}, st.describe("read the servers", err)
	}
	targets, names := buildTargets(servers, cfg.User)
	auth, err := loadRunCredentials(ctx, Credentials{Auth: cfg.Auth, KeyOrigin: cfg.KeyOrigin}, targets, cfg.Log)
	if err != nil {
		return Outcome{}, err
	}
	defer auth.Close()
	checker, err := hostkey.NewChecker(cfg.Policy, cfg.KnownHosts)
	if err != nil {
		return Outcome{}, err
	}
	if cfg.Policy == hostkey.PolicyInsecure {
		cfg.Log.Warn("host keys are NOT verified (--host-key-policy insecure): anyone on the path can impersonate a server")
	}

	if ctx.Err() != nil {
		return Outcome{}, fmt.Errorf("probe run: %w before it started", ErrInterrupted)
	}
	var run store.Run
	switch {
	case shared:
		run, err = leaser.StartSharedRun(st.bound(bg), cfg.Host, cfg.Location, 0, staleRunAge(cfg))
	case leases:
		run, err = leaser.StartSharedRun(st.bound(bg), cfg.Host, cfg.Location, len(targets), staleRunAge(cfg))
	default:
		run, err = s.StartRun(st.bound(bg), cfg.Host, len(targets))
	}
	st.done()
	if err != nil {
		return Outcome{}, st.describe("record the run start", err)
	}
	perLocation := false
	if leases {
		perLocation = keepsLocationResults(st.bound(bg), leaser, cfg)
		st.done()
	}
	cfg.Log.Debug("probe run starting", "run", run.ID, "servers", len(targets), "credentials", auth.Source(), "host_key_policy", cfg.Policy)

	// Losing the lock stops the probing at once: another run may be
	// probing and writing by now.
	probeCtx, stopProbing := context.WithCancelCause(ctx)
	defer stopProbing(nil)
	go func() {
		select {
		case <-lock.Lost():
			stopProbing(ErrLockLost)
		case <-probeCtx.Done():
		}
	}()

	// Writes share a tail budget: once probing ends, the writer has one
	// StoreTimeout to finish, so a hung store cannot hold the run.
	tailCtx, cancelTail := context.WithCancel(bg)
	defer cancelTail()
	var finishLeases func(ctx context.Context, probed, released []int64) error
	if shared {
		finishLeases = func(ctx context.Context, probed, released []int64) error {
			return leaser.FinishProbeTargets(ctx, run.ID, probed, released, tickOf(cfg))
		}
	}
	w := startWriter(tailCtx, s, lock, cfg.StoreTimeout, finishLeases)
	// Only servers that showed a last-seen key when they were read have a
	// warning to clear; telling the store about every accepted key would
	// make each batch's write look at every server. A key seen by another
	// host during this run is cleared by the next run.
	known := newTargetInfo(servers, targets, names)
	opts := probe.Options{
		Auth: auth, HostKeys: checker, Exec: cfg.Exec,
		Concurrency: cfg.Concurrency, Timeout: cfg.Timeout, Deadline: cfg.Deadline,
		Dial: cfg.Dial,
	}
	var cl *claimer
	if shared {
		cl = newClaimer(leaser, run, cfg, known, time.Now())
	}
	sink := func(batch []probe.Result) {
		if cl != nil {
			cl.done(len(batch))
		}
		rows := make([]store.ProbeResult, 0, len(batch))
		var released []int64
		for _, r := range batch {
			if r.Interrupted {
				released = append(released, r.ServerID)
				continue
			}
			info := known.get(r.ServerID)
			row := StoreResult(r, cfg.Policy, info.pinned)
			if perLocation {
				row.Location = cfg.Location
			}
			if !info.warned {
				row.AcceptedHostKey = nil
			}
			rows = append(rows, row)
			if cfg.OnResult != nil {
				cfg.OnResult(info.name, r)
			}
		}
		if len(rows) > 0 || (shared && len(released) > 0) {
			w.batches <- writeBatch{rows: rows, released: released}
		}
	}
	var sum probe.Summary
	if shared {
		sum = probe.RunFrom(probeCtx, cl.next, opts, sink)
	} else {
		sum = probe.Run(probeCtx, targets, opts, sink)
	}
	tail := time.AfterFunc(cfg.StoreTimeout, cancelTail)
	defer tail.Stop()
	out = Outcome{Elapsed: sum.Finished.Sub(sum.Started), Interrupted: sum.Interrupted}
	out.StoreTime, out.StoreTail = w.finish()
	st.hung = st.hung || errors.Is(w.err, context.DeadlineExceeded) || errors.Is(w.err, context.Canceled)

	run.Probed, run.Succeeded, run.DeadlineHit = sum.Probed, sum.Succeeded, sum.DeadlineHit
	planned := len(targets)
	if cl != nil {
		planned = cl.claimedCount()
		run.Servers = planned
	}
	run.FailedByClass = make(map[string]int, len(sum.FailedByClass))
	for c, n := range sum.FailedByClass {
		run.FailedByClass[string(c)] = n
	}
	out.Run = run

	if lerr := lock.Err(); lerr != nil {
		// The run record stays open; the next run closes it as aborted.
		return out, fmt.Errorf("probe run %d: %w (%v); stopped probing and writing: %d results stored, %d not stored",
			run.ID, ErrLockLost, lerr, w.stored, w.failed)
	}
	if cl != nil && cl.failure() != nil {
		// The run record stays open; this host's next run closes it as
		// aborted. Leases it could not finish expire.
		return out, fmt.Errorf("probe run %d: %s (%d results stored)", run.ID, st.describe("claim servers to probe", cl.failure()), w.stored)
	}
	if w.err != nil {
		// The store failed mid-run; the run record stays open and the
		// next run closes it as aborted.
		return out, fmt.Errorf("probe run %d: could not store %d of %d results: %s", run.ID, w.failed, w.failed+w.stored,
			st.describe("write probe results", w.err))
	}
	if out.Run, err = s.FinishRun(st.bound(bg), run); err != nil {
		st.done()
		return out, st.describe(fmt.Sprintf("record the end of probe run %d", run.ID), err)
	}
	st.done()
	prune(st.bound(bg), s, cfg, run.StartedAt)
	st.done()
	if ctx.Err() != nil {
		return out, fmt.Errorf("probe run %d: %w after %d of %d servers (%d left unprobed and untouched)",
			run.ID, ErrInterrupted, run.Probed, planned, sum.Interrupted)
	}
	return out, nil
}

// prune deletes run records and resolved alerts past their retention,
// counted from this run's start on the store's clock. It is housekeeping:
// a failure is a warning, and the next run tries again.
func prune(ctx context.Context, s store.Store, cfg Config, now time.Time) {
	p := store.PruneParams{}
	if keep := orDefault(cfg.KeepRuns, DefaultKeepRuns); keep > 0 {
		p.RunsBefore = now.Add(-keep)
	}
	if keep := orDefault(cfg.KeepResolvedAlerts, DefaultKeepResolvedAlerts); keep > 0 {
		p.AlertsResolvedBefore = now.Add(-keep)
	}
	if keep := orDefault(cfg.KeepFlips, DefaultKeepFlips); keep > 0 {
		p.FlipsBefore = now.Add(-keep)
	}
	// Delivery records only say what was sent when; a month is plenty to
	// answer "did the page go out?".
	p.DeliveriesBefore = now.Add(-store.DefaultKeepDeliveries)

	n, err := s.PruneHistory(ctx, p)
	if err != nil {
		cfg.Log.Warn("pruning old probe runs, resolved alerts and state changes", "err", err)
		return
	}
	if n.Runs > 0 || n.Alerts > 0 || n.Flips > 0 || n.Deliveries > 0 {
		cfg.Log.Debug("pruned history", "runs", n.Runs, "alerts", n.Alerts, "flips", n.Flips, "deliveries", n.Deliveries)
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// storeCalls bounds each store call of a run and remembers whether one
// timed out, so the rest of the run does not wait on a hung store again.
type storeCalls struct {
	timeout time.Duration
	cancel  context.CancelFunc
	hung    bool
}

// bound returns ctx limited to one store call; done must follow the call.
func (c *storeCalls) bound(ctx context.Context) context.Context {
	ctx, c.cancel = context.WithTimeout(ctx, c.timeout)
	return ctx
}

func (c *storeCalls) done() { c.cancel() }

// describe turns a failed store call into one line naming what could not
// be done; a timeout says so in words instead of pgx's.
func (c *storeCalls) describe(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		c.hung = true
		return fmt.Errorf("%s: the store did not answer within %s", what, c.timeout)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// buildTargets turns the servers probe-ssh is responsible for (enabled, mode
// ssh) into probe targets, filling in the default user.
func buildTargets(servers []store.Server, defaultUser string) ([]probe.Target, map[int64]string) {
	targets := make([]probe.Target, 0, len(servers))
	names := make(map[int64]string, len(servers))
	for _, sv := range servers {
		if !sv.Enabled || sv.Mode == store.ModePush {
			continue
		}
		t := probe.Target{ServerID: sv.ID, Name: sv.Name, Host: sv.Host, Port: sv.Port, User: sv.User, KeyPath: sv.KeyPath, PinnedHostKey: sv.HostKey, PinnedIsCA: sv.HostKeyIsCA}
		if t.User == "" {
			t.User = defaultUser
		}
		targets = append(targets, t)
		names[sv.ID] = sv.Name
	}
	return targets, names
}

// writer stores batches on its own goroutine while the probe goes on, so a
// slow store delays persistence, not probing. Its buffer is small: if the
// store falls far behind, the probe slows down rather than holding an
// unbounded backlog in memory. After the first failed write, or once the
// lock is lost, it writes nothing more and only counts what it dropped: a
// failing store is not waited on batch after batch, and a run without the
// lock must not write.
type writer struct {
	batches chan writeBatch
	// finishLeases, on a shared run, ends the leases of each batch once
	// its results are stored: probed servers get their next due time,
	// released ones (interrupted) are due again for another run.
	finishLeases func(ctx context.Context, probed, released []int64) error
	done         chan struct{}
	elapsed      time.Duration
	// stored and failed count results; err is the first failure.
	stored, failed int
	err            error
}

func startWriter(ctx context.Context, s store.Store, lock store.ProbeLock, timeout time.Duration,
	finishLeases func(ctx context.Context, probed, released []int64) error) *writer {
	w := &writer{batches: make(chan writeBatch, 8), done: make(chan struct{}), finishLeases: finishLeases}
	go func() {
		defer close(w.done)
		for b := range w.batches {
			rows := b.rows
			if w.err == nil {
				w.err = lock.Err()
			}
			if w.err != nil {
				w.failed += len(rows)
				continue
			}
			wctx, cancel := context.WithTimeout(ctx, timeout)
			start := time.Now()
			err := s.RecordProbeResults(wctx, rows)
			if err == nil && w.finishLeases != nil {
				probed := make([]int64, len(rows))
				for i, r := range rows {
					probed[i] = r.ServerID
				}
				err = w.finishLeases(wctx, probed, b.released)
			}
			w.elapsed += time.Since(start)
			cancel()
			if err != nil {
				w.err = err
				w.failed += len(rows)
				continue
			}
			w.stored += len(rows)
		}
	}()
	return w
}

// writeBatch is one batch for the writer: results to store and, on a
// shared run, servers whose lease is given back unprobed.
type writeBatch struct {
	rows     []store.ProbeResult
	released []int64
}

// finish waits for the last batch to be stored and returns the total time
// spent writing and the time spent waiting here.
func (w *writer) finish() (total, tail time.Duration) {
	close(w.batches)
	start := time.Now()
	<-w.done
	return w.elapsed, time.Since(start)
}

// StoreResult decides what the store keeps of a probe: under the pin
// policy, the first key a server presents is pinned once it passed the
// host-key check; a mismatching key is kept as "last seen" for
// `servers trust`. A key that passed the check is reported as accepted,
// which clears a last-seen key left by an earlier mismatch.
func StoreResult(r probe.Result, policy hostkey.Policy, hasPin bool) store.ProbeResult {
	out := store.ProbeResult{ServerID: r.ServerID, OK: r.OK, ErrorClass: string(r.Class), Error: r.Message, Latency: r.Latency, Phases: store.Phases(r.Phases)}
	if r.HostKey != nil && r.Class.PastHostKeyCheck() {
		out.AcceptedHostKey = r.HostKey
	}
	switch {
	case r.HostKey == nil:
	case r.Class.HostKeyRejected():
		out.SeenHostKey = r.HostKey
	case policy == hostkey.PolicyPin && !hasPin && r.Class.PastHostKeyCheck():
		out.PinHostKey = r.HostKey
	}
	return out
}

// pastHostKeyCheck reports whether a probe with this outcome got past the
// host-key check, so the key it saw belongs to a completed key exchange.
func pastHostKeyCheck(c failure.Class) bool {
	return c == "" || c == failure.Auth || c == failure.Exec
}

// keepsLocationResults says whether this run records its location's word
// on each server (store.ProbeResult.Location) beside the heartbeat: a
// named location does, and so does the default one once another
// location has finished a run within store.LocationWindow. The default
// location alone does not: its word is the heartbeat, and writing it
// again cost as much as the heartbeat itself (BenchmarkRecordProbeResults).
// When the runs cannot be read, it records them, as it cannot tell.
func keepsLocationResults(ctx context.Context, leaser store.ProbeLeaser, cfg Config) bool {
	if cfg.Location != store.DefaultLocation {
		return true
	}
	runs, _, err := leaser.HostRuns(ctx, store.LocationWindow)
	if err != nil {
		cfg.Log.Warn("read the probe locations; keeping this location's results", "err", err)
		return true
	}
	return slices.ContainsFunc(runs, func(r store.Run) bool { return r.Location != cfg.Location })
}
