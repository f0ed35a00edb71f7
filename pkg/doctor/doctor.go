// Package doctor diagnoses a heartbeat installation: it walks the source
// system's troubleshooting steps (is the store there, is the SSH key usable,
// is cron running the probe, did the last run finish, which servers fail and
// why) and reports each as ok, warn or fail with the fix.
//
// Everything the checks look at comes in through Config (the store, the key
// settings, functions that read the crontab and the systemd timer, a clock),
// so every broken case can be tested without a broken machine.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/stacksense/heartbeat/pkg/probe"
	"github.com/stacksense/heartbeat/pkg/store"
)

// Status is the verdict of one check.
type Status string

// The verdicts. Only Fail makes the doctor exit non-zero; Skip means the
// check could not run because one it depends on failed.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Check names, stable for `doctor --json`.
const (
	CheckBinary   = "binary"
	CheckStore    = "store"
	CheckSSHKey   = "ssh-key"
	CheckSchedule = "schedule"
	CheckLastRun  = "last-run"
	CheckFailures = "probe-failures"
	CheckHostKeys = "host-keys"
	CheckClock    = "clock"
	// CheckTokenless warns while servers accept pushes without a token.
	CheckTokenless = "tokenless-pushes"
	// CheckNotify warns about failing channels and an old backlog.
	CheckNotify = "notifications"
	// CheckProbeHosts lists the probe hosts sharing the fleet and warns
	// about one that stopped.
	CheckProbeHosts = "probe-hosts"
)

// Defaults for the thresholds in Config.
const (
	// DefaultMaxSkew is the clock difference between this host and the
	// store worth a warning: ages come from the store's clock, but logs,
	// cron ticks and a human comparing them come from the host's.
	DefaultMaxSkew = 2 * time.Second
	// DefaultCallTimeout bounds each store call the doctor makes.
	DefaultCallTimeout = 10 * time.Second
)

// ErrNotInstalled is what Config.Crontab or Config.TimerActive return when
// their tool (crontab, systemctl) is not installed on this host.
var ErrNotInstalled = errors.New("not installed")

// Result is one check's verdict: the element of `doctor --json`.
type Result struct {
	// Check names the check (CheckStore, ...).
	Check string `json:"check"`
	// Status is ok, warn, fail or skip.
	Status Status `json:"status"`
	// Message says what was found.
	Message string `json:"message"`
	// Fix says what to do about it; empty when there is nothing to do.
	Fix string `json:"fix"`
}

// Config is what the doctor examines. Functions left nil are treated as
// "not available on this host".
type Config struct {
	// Quick runs only the local checks: binary, store, ssh-key.
	Quick bool
	// Version and Executable describe the running binary.
	Version, Executable string

	// OpenStore opens the configured store; an error wrapping
	// store.ErrSchemaBehind means `heartbeat migrate` is needed.
	OpenStore func(ctx context.Context) (store.Store, error)
	// StoreName is the store for messages, password redacted.
	StoreName string
	// StoreOrigin names the setting that chose the store ("--db", ...).
	StoreOrigin string

	// Auth is where probe-ssh finds its default SSH identity.
	Auth probe.AuthConfig
	// KeyOrigin names the setting that chose Auth.KeyPath, if any.
	KeyOrigin string

	// Crontab returns the invoking user's crontab ("" if they have none),
	// or an error wrapping ErrNotInstalled if there is no crontab command.
	Crontab func(ctx context.Context) (string, error)
	// CronRunning reports whether a cron daemon runs; an error means it
	// could not be told.
	CronRunning func(ctx context.Context) (bool, error)
	// TimerActive reports whether heartbeat-probe.timer is active, or an
	// error wrapping ErrNotInstalled where there is no systemd.
	TimerActive func(ctx context.Context) (bool, error)
	// LogHint names where probe output goes, for fixes.
	LogHint string

	// Clock is this host's clock; nil means time.Now.
	Clock func() time.Time
	// MaxSkew and CallTimeout default to the Default* values. When the
	// probe counts as overdue is not a setting: it is the report's rule
	// (status.ProbeOverdue), so doctor, status --verbose and the page agree.
	MaxSkew, CallTimeout time.Duration
}

// Failed reports whether any check failed.
func Failed(results []Result) bool {
	for _, r := range results {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// Run performs the checks in order and returns one Result per check.
func Run(ctx context.Context, cfg Config) []Result {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	d := &doctor{cfg: cfg}
	d.add(d.checkBinary())
	s, storeResult := d.openStore(ctx)
	d.add(storeResult)
	if s != nil {
		defer s.Close()
		d.servers, d.serversErr = call(ctx, cfg.CallTimeout, s.Servers)
	}
	d.add(d.checkKey(ctx, s != nil))
	if cfg.Quick {
		return d.results
	}
	d.add(d.checkSchedule(ctx))
	if s == nil {
		for _, name := range []string{CheckLastRun, CheckProbeHosts, CheckFailures, CheckHostKeys, CheckTokenless, CheckClock, CheckNotify} {
			d.add(Result{Check: name, Status: Skip, Message: "not checked: the store is not usable"})
		}
		return d.results
	}
	d.add(d.checkLastRun(ctx, s))
	d.add(d.checkProbeHosts(ctx, s))
	d.add(d.checkFailures(ctx, s))
	d.add(d.checkHostKeys())
	d.add(d.checkTokenless())
	d.add(d.checkClock(ctx, s))
	d.add(d.checkNotify(ctx, s))
	return d.results
}

type doctor struct {
	cfg        Config
	results    []Result
	servers    []store.Server
	serversErr error
}

func (d *doctor) add(r Result) { d.results = append(d.results, r) }

// call runs one store read under its own deadline.
func call[T any](ctx context.Context, timeout time.Duration, f func(context.Context) (T, error)) (T, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return f(cctx)
}

// readFailed is the verdict of a check that could not read what it
// examines from the store: a failure naming the read that failed, and no
// fix, since the store check already gives the fixes for an unusable store.
func readFailed(check, doing string, err error) Result {
	return Result{Check: check, Status: Fail, Message: doing + ": " + err.Error()}
}

// WriteText prints results for people: one line per check, the fix
// indented below it, and a closing tally.
func WriteText(w io.Writer, results []Result) error {
	counts := map[Status]int{}
	width := 0
	for _, r := range results {
		width = max(width, len(r.Check))
	}
	for _, r := range results {
		counts[r.Status]++
		label := string(r.Status)
		if r.Status == Fail {
			label = "FAIL"
		}
		if _, err := fmt.Fprintf(w, "%-4s  %-*s  %s\n", label, width, r.Check, r.Message); err != nil {
			return fmt.Errorf("write doctor report: %w", err)
		}
		if r.Fix != "" {
			if _, err := fmt.Fprintf(w, "      %-*s  fix: %s\n", width, "", r.Fix); err != nil {
				return fmt.Errorf("write doctor report: %w", err)
			}
		}
	}
	verdict := "healthy"
	if counts[Fail] > 0 {
		verdict = "NOT healthy"
	}
	_, err := fmt.Fprintf(w, "%s: %d ok, %d warning(s), %d failed, %d skipped\n", verdict, counts[OK], counts[Warn], counts[Fail], counts[Skip])
	if err != nil {
		return fmt.Errorf("write doctor report: %w", err)
	}
	return nil
}
