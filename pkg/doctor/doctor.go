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
	"sort"
	"strings"
	"time"

	"github.com/stacksense/heartbeat/pkg/failure"
	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/probe"
	"github.com/stacksense/heartbeat/pkg/proberun"
	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/status"
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
)

// CronMarker ends every crontab line setup_heartbeat_cron.sh writes; the
// script finds its own lines by it and the schedule check looks for it.
const CronMarker = "# heartbeat-probe: managed by setup_heartbeat_cron.sh"

// Defaults for the thresholds in Config.
const (
	// DefaultRunOverdue matches `status --verbose`: three 30-second ticks.
	DefaultRunOverdue = status.ProbeOverdue
	// DefaultMaxSkew is the clock difference between this host and the
	// store worth a warning: ages come from the store's clock, but logs,
	// cron ticks and a human comparing them come from the host's.
	DefaultMaxSkew = 2 * time.Second
	// DefaultCallTimeout bounds each store call the doctor makes.
	DefaultCallTimeout = 10 * time.Second
	// examplesPerClass is how many failing servers each class names.
	examplesPerClass = 3
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
	// RunOverdue, MaxSkew and CallTimeout default to the Default* values.
	RunOverdue, MaxSkew, CallTimeout time.Duration
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
	if cfg.RunOverdue <= 0 {
		cfg.RunOverdue = DefaultRunOverdue
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
		for _, name := range []string{CheckLastRun, CheckFailures, CheckHostKeys, CheckClock} {
			d.add(Result{Check: name, Status: Skip, Message: "not checked: the store is not usable"})
		}
		return d.results
	}
	d.add(d.checkLastRun(ctx, s))
	d.add(d.checkFailures(ctx, s))
	d.add(d.checkHostKeys())
	d.add(d.checkClock(ctx, s))
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

func (d *doctor) checkBinary() Result {
	where := d.cfg.Executable
	if where == "" {
		where = "path unknown"
	}
	return Result{Check: CheckBinary, Status: OK, Message: fmt.Sprintf("heartbeat %s runs (%s)", d.cfg.Version, where)}
}

func (d *doctor) openStore(ctx context.Context) (store.Store, Result) {
	r := Result{Check: CheckStore}
	if d.cfg.OpenStore == nil {
		r.Status, r.Message = Fail, "no store configured"
		return nil, r
	}
	s, err := d.cfg.OpenStore(ctx)
	switch {
	case errors.Is(err, store.ErrSchemaBehind):
		r.Status, r.Message = Fail, err.Error()
		r.Fix = "run `heartbeat migrate` with the same store settings (safe from several hosts at once), then run doctor again"
		return nil, r
	case errors.Is(err, store.ErrUnavailable):
		r.Status, r.Message = Fail, err.Error()
		r.Fix = fmt.Sprintf("start the database or correct the store setting (chosen by %s); check the host, port, user and password, and that pg_hba.conf admits this host; --connect-timeout raises the wait", d.originOr("the default"))
		return nil, r
	case err != nil:
		r.Status, r.Message = Fail, err.Error()
		r.Fix = "set the store with --db, HEARTBEAT_DB, DATABASE_URL or POSTGRES_*: a postgres:// URL, a host=… keyword/value string, sqlite:PATH or a path ending in .db"
		return nil, r
	}
	r.Status = OK
	r.Message = fmt.Sprintf("%s reachable, schema current (chosen by %s)", d.cfg.StoreName, d.originOr("default"))
	return s, r
}

func (d *doctor) originOr(def string) string {
	if d.cfg.StoreOrigin == "" {
		return def
	}
	return d.cfg.StoreOrigin
}

// checkKey loads credentials exactly as probe-ssh does, with proberun's
// own helpers: the default identity (needed unless every enabled server
// has its own key) and every per-server key file.
func (d *doctor) checkKey(ctx context.Context, storeUp bool) Result {
	r := Result{Check: CheckSSHKey}
	targets := proberun.Targets(d.servers, "")
	// Without the server list, or with no server yet, the default key is
	// the one the next run (or the next registered server) will use.
	requireDefault := !storeUp || d.serversErr != nil || len(targets) == 0
	usesDefault := requireDefault
	for _, t := range targets {
		usesDefault = usesDefault || t.KeyPath == ""
	}
	auth, err := proberun.LoadCredentials(ctx, proberun.Credentials{Auth: d.cfg.Auth, KeyOrigin: d.cfg.KeyOrigin, RequireDefault: requireDefault}, targets)
	if err != nil {
		r.Status, r.Message = Fail, strings.ReplaceAll(err.Error(), "\n", "; ")
		r.Fix = "give probe-ssh a private key only its user can read (chmod 600), with no passphrase or loaded into ssh-agent; " +
			"name it with --key, HEARTBEAT_SSH_KEY or SSH_PRIVATE_KEY_PATH, or put it at ~/.ssh/id_ed25519 (Ed25519 recommended)"
		return r
	}
	defer auth.Close()
	r.Status, r.Message = OK, "default credentials: "+auth.Source()
	if !usesDefault {
		r.Message = "no default key needed: every enabled server has its own"
	}
	if n := len(distinctKeys(targets)); n > 0 {
		r.Message += fmt.Sprintf("; %d per-server key file(s) readable", n)
	}
	return r
}

func distinctKeys(targets []probe.Target) map[string]bool {
	m := map[string]bool{}
	for _, t := range targets {
		if t.KeyPath != "" {
			m[t.KeyPath] = true
		}
	}
	return m
}

// checkSchedule looks for the two staggered cron lines (or the systemd
// timer) that make probe-ssh run every 30 seconds.
func (d *doctor) checkSchedule(ctx context.Context) Result {
	r := Result{Check: CheckSchedule}
	install := "run setup_heartbeat_cron.sh (or enable scripts/systemd/heartbeat-probe.timer)"

	timerActive, timerErr := false, ErrNotInstalled
	if d.cfg.TimerActive != nil {
		timerActive, timerErr = d.cfg.TimerActive(ctx)
	}
	var (
		lines   []string
		cronErr = ErrNotInstalled
		tab     string
	)
	if d.cfg.Crontab != nil {
		tab, cronErr = d.cfg.Crontab(ctx)
	}
	if cronErr == nil {
		lines = probeLines(tab)
	}

	if len(lines) == 0 {
		timer := "heartbeat-probe.timer is not active"
		if errors.Is(timerErr, ErrNotInstalled) {
			timer = "there is no systemd"
		}
		switch {
		case timerActive:
			r.Status, r.Message = OK, "systemd timer heartbeat-probe.timer is active"
		case errors.Is(cronErr, ErrNotInstalled):
			r.Status, r.Message = Fail, "no crontab command and "+timer+": nothing runs probe-ssh"
			r.Fix = "install cron (Debian package cron), then " + install
		case cronErr != nil:
			r.Status, r.Message = Fail, "cannot read the crontab: "+cronErr.Error()
			r.Fix = install
		default:
			r.Status, r.Message = Fail, "no probe-ssh line in this user's crontab and "+timer+": nothing runs the probe"
			r.Fix = install
		}
		return r
	}

	managed, sleeping, discarded := 0, 0, 0
	for _, l := range lines {
		if strings.Contains(l, CronMarker) {
			managed++
		}
		if strings.Contains(l, "sleep 30") {
			sleeping++
		}
		if strings.Contains(l, "/dev/null") {
			discarded++
		}
	}
	r.Status = OK
	r.Message = fmt.Sprintf("%d probe-ssh cron lines", len(lines))
	if managed == len(lines) {
		r.Message += " installed by setup_heartbeat_cron.sh"
	}
	var problems, fixes []string
	switch {
	case len(lines) == 1:
		problems = append(problems, "only one probe-ssh cron line: probes run once a minute, so heartbeats reach the 60 s limit and servers flap OFFLINE")
		fixes = append(fixes, "re-run setup_heartbeat_cron.sh to install both staggered lines")
	case sleeping == 0:
		problems = append(problems, "no line has `sleep 30`: the runs are not staggered, so the probe still runs once a minute")
		fixes = append(fixes, "re-run setup_heartbeat_cron.sh to install both staggered lines")
	case len(lines) > 2:
		problems = append(problems, fmt.Sprintf("%d probe-ssh lines: duplicates (the probe lock makes them harmless, but one pair is enough)", len(lines)))
		fixes = append(fixes, "remove hand-made lines with `crontab -e`, then re-run setup_heartbeat_cron.sh")
	}
	if discarded > 0 {
		problems = append(problems, "output goes to /dev/null, so a failing probe is invisible")
		fixes = append(fixes, "re-run setup_heartbeat_cron.sh: it appends output to a log file")
	}
	if timerActive {
		problems = append(problems, "heartbeat-probe.timer is active too: the probe runs from both")
		fixes = append(fixes, "keep one: setup_heartbeat_cron.sh --remove, or systemctl disable --now heartbeat-probe.timer")
	}
	if d.cfg.CronRunning != nil {
		if running, err := d.cfg.CronRunning(ctx); err == nil && !running {
			r.Status = Fail
			r.Message += ", but no cron daemon is running"
			r.Fix = "start cron: systemctl enable --now cron (Debian package cron)"
			return r
		}
	}
	if len(problems) > 0 {
		r.Status = Warn
		r.Message += ": " + strings.Join(problems, "; ")
		r.Fix = strings.Join(fixes, "; ")
	}
	return r
}

// probeLines returns the active (uncommented) crontab lines that run
// probe-ssh.
func probeLines(tab string) []string {
	var out []string
	for _, l := range strings.Split(tab, "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") || !strings.Contains(t, "probe-ssh") {
			continue
		}
		out = append(out, t)
	}
	return out
}

func (d *doctor) checkLastRun(ctx context.Context, s store.Store) Result {
	r := Result{Check: CheckLastRun}
	last, err := call(ctx, d.cfg.CallTimeout, s.LastFinishedRun)
	if err != nil {
		r.Status, r.Message = Fail, "read the last probe run: "+err.Error()
		return r
	}
	aborted, err := call(ctx, d.cfg.CallTimeout, s.LastAbortedRun)
	if err != nil {
		r.Status, r.Message = Fail, "read the last aborted probe run: "+err.Error()
		return r
	}
	now, err := call(ctx, d.cfg.CallTimeout, s.Now)
	if err != nil {
		r.Status, r.Message = Fail, "read the store's clock: "+err.Error()
		return r
	}
	logs := "look at the probe log"
	if d.cfg.LogHint != "" {
		logs += " (" + d.cfg.LogHint + ")"
	}
	logs += " and `grep CRON /var/log/syslog` (or journalctl -u cron); run `heartbeat probe-ssh --verbose` by hand"
	// The same reading of the last run as status --verbose and the page.
	header := report.NewRunHeader(now, last, aborted)
	if header.Last == nil {
		r.Status, r.Message = Fail, "no probe-ssh run has finished on this store yet"
		r.Fix = "install the schedule (setup_heartbeat_cron.sh) and wait a minute; if it is installed, " + logs
		return r
	}
	age := header.Age
	took := last.FinishedAt.Sub(last.StartedAt).Seconds()
	r.Message = fmt.Sprintf("last run finished %s ago on %s: %d/%d answered in %.1fs", status.FormatAge(age), hostOr(last.Host), last.Succeeded, last.Probed, took)
	switch {
	case age > d.cfg.RunOverdue:
		r.Status = Fail
		r.Message += fmt.Sprintf("; nothing for more than %s, so probe-ssh is not running and every server will show OFFLINE", status.FormatAge(d.cfg.RunOverdue))
		r.Fix = logs
	case last.DeadlineHit:
		r.Status = Warn
		r.Message += fmt.Sprintf("; it hit its deadline with %d of %d servers probed (the rest count as timeout)", last.Probed, last.Servers)
		r.Fix = "find what is slow in `heartbeat probe-ssh --verbose`: raise --concurrency, lower --timeout, or fix the servers that time out"
	case header.Has(report.RunAborted):
		r.Status = Warn
		r.Message += "; " + header.Text(report.RunAborted)
		r.Fix = "a probe-ssh process was killed before it finished (OOM killer, reboot, a cron or systemd time limit): " + logs
	default:
		r.Status = OK
	}
	return r
}

func hostOr(h string) string {
	if h == "" {
		return "an unknown host"
	}
	return h
}

// checkFailures counts the enabled servers whose last probe failed, by
// class, naming a few of each.
func (d *doctor) checkFailures(ctx context.Context, s store.Store) Result {
	r := Result{Check: CheckFailures}
	snap, err := call(ctx, d.cfg.CallTimeout, s.Status)
	if err != nil {
		r.Status, r.Message = Fail, "read server status: "+err.Error()
		return r
	}
	byClass := map[string][]store.ServerStatus{}
	enabled, failed, connectFailed := 0, 0, 0
	for _, st := range snap.Servers {
		if !st.Enabled || st.Mode == store.ModePush {
			continue
		}
		enabled++
		if st.LastErrorClass == "" {
			continue
		}
		failed++
		if failure.Class(st.LastErrorClass).Connect() {
			connectFailed++
		}
		byClass[st.LastErrorClass] = append(byClass[st.LastErrorClass], st)
	}
	if enabled == 0 {
		r.Status, r.Message = Warn, "no enabled servers are registered"
		r.Fix = "register servers: heartbeat servers add NAME --host HOST, or heartbeat servers import fleet.csv"
		return r
	}
	if failed == 0 {
		r.Status, r.Message = OK, fmt.Sprintf("no failures: the last probe of all %d enabled servers succeeded (or they were not probed yet)", enabled)
		return r
	}
	classes := make([]string, 0, len(byClass))
	for c := range byClass {
		classes = append(classes, c)
	}
	sort.Slice(classes, func(i, j int) bool {
		if len(byClass[classes[i]]) != len(byClass[classes[j]]) {
			return len(byClass[classes[i]]) > len(byClass[classes[j]])
		}
		return classes[i] < classes[j]
	})
	parts := make([]string, 0, len(classes))
	fixes := make([]string, 0, len(classes))
	for _, c := range classes {
		list := byClass[c]
		examples := make([]string, 0, examplesPerClass)
		for i, st := range list {
			if i == examplesPerClass {
				examples = append(examples, fmt.Sprintf("and %d more", len(list)-examplesPerClass))
				break
			}
			examples = append(examples, fmt.Sprintf("%s (%s:%d): %s", output.Escape(st.Name), output.Escape(st.Host), st.Port, output.Escape(st.LastError)))
		}
		parts = append(parts, fmt.Sprintf("%s %d [%s]", c, len(list), strings.Join(examples, "; ")))
		fixes = append(fixes, c+": "+failure.Class(c).Advice())
	}
	r.Status = Warn
	r.Message = fmt.Sprintf("%d of %d enabled servers failed their last probe: %s", failed, enabled, strings.Join(parts, ", "))
	r.Fix = strings.Join(fixes, "; ")
	// The same rule as `status --verbose`: nearly all failing to connect
	// at once points at this host, not the servers.
	if status.HostCutOff(connectFailed, enabled) {
		r.Status = Fail
		r.Message += "; nearly every server failed to connect, so the monitoring host itself is probably cut off"
		r.Fix = "check this host's network, DNS and outbound firewall before the servers; " + r.Fix
	}
	return r
}

func (d *doctor) checkHostKeys() Result {
	r := Result{Check: CheckHostKeys}
	if d.serversErr != nil {
		r.Status, r.Message = Fail, "list servers: "+d.serversErr.Error()
		return r
	}
	var changed []string
	for _, sv := range d.servers {
		if sv.SeenHostKey != nil {
			changed = append(changed, sv.Name)
		}
	}
	if len(changed) == 0 {
		r.Status, r.Message = OK, "no server presented a changed host key"
		return r
	}
	r.Status = Warn
	r.Message = fmt.Sprintf("%d server(s) presented a host key that differs from the pinned one and get no heartbeat until an admin decides: %s",
		len(changed), strings.Join(changed, ", "))
	r.Fix = fmt.Sprintf("confirm with the server's owner that the key changed (heartbeat servers show %s prints both fingerprints), then heartbeat servers trust %s", changed[0], changed[0])
	return r
}

// checkClock compares the store's clock with this host's, taking the
// midpoint of the round trip as the moment the store read its clock.
func (d *doctor) checkClock(ctx context.Context, s store.Store) Result {
	r := Result{Check: CheckClock}
	before := d.cfg.Clock()
	storeNow, err := call(ctx, d.cfg.CallTimeout, s.Now)
	after := d.cfg.Clock()
	if err != nil {
		r.Status, r.Message = Fail, "read the store's clock: "+err.Error()
		return r
	}
	local := before.Add(after.Sub(before) / 2)
	skew := storeNow.Sub(local)
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	r.Message = fmt.Sprintf("the store's clock is %s %s this host's (round trip %s)", abs.Round(time.Millisecond), dir, after.Sub(before).Round(time.Millisecond))
	if abs > d.cfg.MaxSkew {
		r.Status = Warn
		r.Message += fmt.Sprintf(", more than %s: heartbeat ages use the store's clock, but logs and cron ticks on this host do not agree with it", d.cfg.MaxSkew)
		r.Fix = "synchronise both hosts with NTP (systemd-timesyncd or chrony); timedatectl shows the state"
		return r
	}
	r.Status = OK
	return r
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
