// Package proberun carries out one probe-ssh run against a store: it takes
// the store's probe lock, turns the enabled ssh-mode servers into targets,
// loads and checks every credential before contacting anyone, records the
// run, and stores results batch by batch while the probe goes on.
//
// It is the only package that knows both pkg/probe and pkg/store, so that
// the prober stays testable without a database and the CLI only wires
// flags to it.
package proberun

import (
	"github.com/stacksense/heartbeat/pkg/failure"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/stacksense/heartbeat/pkg/hostkey"
	"github.com/stacksense/heartbeat/pkg/probe"
	"github.com/stacksense/heartbeat/pkg/store"
)

// ErrLocked reports that another run holds the store's probe lock; the
// caller should skip this tick quietly.
var ErrLocked = errors.New("another probe-ssh run is in progress on this store")

// Config describes one run.
type Config struct {
	// Host names this prober in the runs table.
	Host string
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
	// WriteTimeout bounds each store write; 0 means 10 s.
	WriteTimeout time.Duration
	// OnResult, if set, sees every result with its server's name, on one
	// goroutine, as results arrive (for --verbose and --json).
	OnResult func(name string, r probe.Result)
	Log      *slog.Logger
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
}

// Execute runs one probe over every enabled ssh-mode server in s. It
// returns ErrLocked, untouched, when another run holds the lock.
func Execute(ctx context.Context, s store.Store, cfg Config) (Outcome, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	release, acquired, err := s.TryProbeLock(ctx)
	if err != nil {
		return Outcome{}, err
	}
	if !acquired {
		return Outcome{}, ErrLocked
	}
	defer func() {
		if err := release(); err != nil {
			cfg.Log.Warn("release probe lock", "err", err)
		}
	}()

	servers, err := s.Servers(ctx)
	if err != nil {
		return Outcome{}, err
	}
	targets, names := buildTargets(servers, cfg.User)
	auth, err := loadAuth(ctx, cfg, targets)
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

	run, err := s.StartRun(ctx, cfg.Host, len(targets))
	if err != nil {
		return Outcome{}, err
	}
	cfg.Log.Debug("probe run starting", "run", run.ID, "servers", len(targets), "credentials", auth.Source(), "host_key_policy", cfg.Policy)

	// Results are written even if a signal cancels the run: what was seen
	// is kept, and the next tick carries on.
	writeCtx := context.WithoutCancel(ctx)
	w := startWriter(writeCtx, s, cfg)
	pinned := make(map[int64]bool, len(targets))
	for _, t := range targets {
		pinned[t.ServerID] = t.PinnedHostKey != nil
	}
	sum := probe.Run(ctx, targets, probe.Options{
		Auth: auth, HostKeys: checker, Exec: cfg.Exec,
		Concurrency: cfg.Concurrency, Timeout: cfg.Timeout, Deadline: cfg.Deadline,
	}, func(batch []probe.Result) {
		rows := make([]store.ProbeResult, len(batch))
		for i, r := range batch {
			rows[i] = StoreResult(r, cfg.Policy, pinned[r.ServerID])
			if cfg.OnResult != nil {
				cfg.OnResult(names[r.ServerID], r)
			}
		}
		w.batches <- rows
	})
	out := Outcome{Elapsed: sum.Finished.Sub(sum.Started)}
	out.StoreTime, out.StoreTail = w.finish()

	run.Probed, run.Succeeded, run.DeadlineHit = sum.Probed, sum.Succeeded, sum.DeadlineHit
	run.FailedByClass = make(map[string]int, len(sum.FailedByClass))
	for c, n := range sum.FailedByClass {
		run.FailedByClass[string(c)] = n
	}
	fctx, cancel := context.WithTimeout(writeCtx, cfg.WriteTimeout)
	defer cancel()
	if out.Run, err = s.FinishRun(fctx, run); err != nil {
		return out, err
	}
	if w.err != nil {
		return out, fmt.Errorf("probe run %d: some results were not stored: %w", run.ID, w.err)
	}
	return out, nil
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
		t := probe.Target{ServerID: sv.ID, Name: sv.Name, Host: sv.Host, Port: sv.Port, User: sv.User, KeyPath: sv.KeyPath, PinnedHostKey: sv.HostKey}
		if t.User == "" {
			t.User = defaultUser
		}
		targets = append(targets, t)
		names[sv.ID] = sv.Name
	}
	return targets, names
}

// loadAuth reads and checks every credential the run will use before any
// server is contacted: a bad key stops the run with one line instead of
// failing every server. The default credentials are only required when
// some target has no key of its own.
func loadAuth(ctx context.Context, cfg Config, targets []probe.Target) (*probe.Auth, error) {
	needDefault := false
	for _, t := range targets {
		needDefault = needDefault || t.KeyPath == ""
	}
	auth := probe.NewAuth("per-server keys")
	if needDefault {
		var err error
		auth, err = probe.LoadAuth(ctx, cfg.Auth)
		if err != nil {
			if cfg.KeyOrigin != "" {
				err = fmt.Errorf("%w (key set by %s)", err, cfg.KeyOrigin)
			}
			return nil, err
		}
	}
	if err := auth.LoadTargetKeys(ctx, targets); err != nil {
		auth.Close()
		return nil, fmt.Errorf("per-server keys: %w", err)
	}
	return auth, nil
}

// writer stores batches on its own goroutine while the probe goes on, so a
// slow store delays persistence, not probing. Its buffer is small: if the
// store falls far behind, the probe slows down rather than holding an
// unbounded backlog in memory.
type writer struct {
	batches chan []store.ProbeResult
	done    chan struct{}
	elapsed time.Duration
	err     error
}

func startWriter(ctx context.Context, s store.Store, cfg Config) *writer {
	w := &writer{batches: make(chan []store.ProbeResult, 8), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for rows := range w.batches {
			wctx, cancel := context.WithTimeout(ctx, cfg.WriteTimeout)
			start := time.Now()
			err := s.RecordProbeResults(wctx, rows)
			w.elapsed += time.Since(start)
			cancel()
			if err != nil {
				cfg.Log.Error("writing probe results", "err", err, "results", len(rows))
				w.err = err
			}
		}
	}()
	return w
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
// `servers trust`.
func StoreResult(r probe.Result, policy hostkey.Policy, hasPin bool) store.ProbeResult {
	out := store.ProbeResult{ServerID: r.ServerID, OK: r.OK, ErrorClass: string(r.Class), Error: r.Message, Latency: r.Latency, Phases: store.Phases(r.Phases)}
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
