package report

import (
	"context"
	"fmt"
	"time"

	"github.com/stacksense/heartbeat/pkg/failure"
	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

// WarningKind names a warning for machines (CSS classes, tests); Text is
// for people.
type WarningKind string

// The warnings a run header can carry.
const (
	// ProbeOverdue: no probe run finished within status.ProbeOverdue, so
	// probe-ssh is not running and SSH servers go OFFLINE for that reason.
	ProbeOverdue WarningKind = "probe-overdue"
	// HostCutOff: nearly every server of the last run failed to connect,
	// which points at the monitoring host, not the servers.
	HostCutOff WarningKind = "host-cut-off"
	// RunAborted: a run started within AbortedRunWindow and never
	// finished: its process was killed, so its servers were not all
	// probed that tick.
	RunAborted WarningKind = "run-aborted"
)

// AbortedRunWindow is how long after its start an aborted run is named:
// long enough to be seen the next morning.
const AbortedRunWindow = 24 * time.Hour

// Warning is something whoever is on call must read before the table.
type Warning struct {
	Kind WarningKind
	Text string
}

// RunHeader is what `status --verbose`, the page and doctor say about the
// last finished probe run.
type RunHeader struct {
	// Last is the last finished run, nil if none finished yet.
	Last *store.Run
	// Age is how long ago Last finished, by the store's clock.
	Age time.Duration
	// ConnectFailed counts Last's probes that never reached an SSH server.
	ConnectFailed int
	// Summary is one line about Last, for people.
	Summary  string
	Warnings []Warning
}

// NewRunHeader describes last, the last finished run, and aborted, the
// last run that never finished (either may be nil), as seen at now (the
// store's clock).
func NewRunHeader(now time.Time, last, aborted *store.Run) RunHeader {
	h := newRunHeader(now, last)
	if aborted != nil && status.Age(now, aborted.StartedAt) <= AbortedRunWindow {
		h.Warnings = append(h.Warnings, Warning{RunAborted, fmt.Sprintf("last run aborted: run %d on host %s started %s never finished (killed?)",
			aborted.ID, output.Escape(aborted.Host), aborted.StartedAt.UTC().Format(time.RFC3339))})
	}
	return h
}

// HeaderRun picks the run the header describes: last, the last finished
// run, unless it claimed no server while another host's run did. Hosts
// that share a fleet (hostRuns: each host's last finished run, as
// store.ProbeLeaser.HostRuns returns them) often end a tick with a run
// that found everything already probed by the others; read alone, it
// would make the header say "0/0 answered". The header then describes the
// most recently finished of the host runs that probed something.
func HeaderRun(last *store.Run, hostRuns []store.Run) *store.Run {
	if !ClaimedNothing(last) {
		return last
	}
	var pick *store.Run
	for i := range hostRuns {
		r := &hostRuns[i]
		if r.FinishedAt == nil || r.Probed == 0 {
			continue
		}
		if pick == nil || r.FinishedAt.After(*pick.FinishedAt) || (r.FinishedAt.Equal(*pick.FinishedAt) && r.ID > pick.ID) {
			pick = r
		}
	}
	if pick == nil {
		return last
	}
	return pick
}

// LoadHeaderRun is HeaderRun for last, the last finished run, reading the
// host runs only when last claimed nothing, on a store where hosts share
// the fleet.
func LoadHeaderRun(ctx context.Context, s store.Store, last *store.Run) (*store.Run, error) {
	leaser, ok := s.(store.ProbeLeaser)
	if !ok || !ClaimedNothing(last) {
		return last, nil
	}
	runs, _, err := leaser.HostRuns(ctx, HostWindow)
	if err != nil {
		return nil, err
	}
	return HeaderRun(last, runs), nil
}

// ClaimedNothing reports whether last is a finished run that had no server
// to probe, so that HeaderRun looks further (callers read the host runs
// only then).
func ClaimedNothing(last *store.Run) bool {
	return last != nil && last.Servers == 0 && last.Probed == 0
}

func newRunHeader(now time.Time, last *store.Run) RunHeader {
	if last == nil || last.FinishedAt == nil {
		return RunHeader{Summary: "no probe-ssh run has finished yet (servers that push over the API do not need one)"}
	}
	h := RunHeader{Last: last, Age: status.Age(now, *last.FinishedAt)}
	h.Summary = fmt.Sprintf("last probe run %s ago: %s/%s answered in %.1fs", status.FormatAge(h.Age),
		output.Thousands(last.Succeeded), output.Thousands(last.Probed), last.FinishedAt.Sub(last.StartedAt).Seconds())
	if last.DeadlineHit {
		h.Summary += " (cut short by its deadline)"
	}
	if h.Age > status.ProbeOverdue {
		h.Warnings = append(h.Warnings, Warning{ProbeOverdue, fmt.Sprintf("no probe run has finished for %s: probe-ssh is not running, so servers show OFFLINE "+
			"for that reason, not their own. Check the cron lines (crontab -l) and the probe log.", status.FormatAge(h.Age))})
	}
	for c, n := range last.FailedByClass {
		if failure.Class(c).Connect() {
			h.ConnectFailed += n
		}
	}
	if status.HostCutOff(h.ConnectFailed, last.Probed) {
		h.Warnings = append(h.Warnings, Warning{HostCutOff, fmt.Sprintf("the last run could not connect to %s of %s servers: the monitoring host itself "+
			"is probably cut off (check its network, DNS and firewall before the servers).", output.Thousands(h.ConnectFailed), output.Thousands(last.Probed))})
	}
	return h
}

// Lines renders the header as `status --verbose` prints it: the summary,
// then one "WARNING: " line per warning.
func (h RunHeader) Lines() []string {
	lines := []string{h.Summary}
	for _, w := range h.Warnings {
		lines = append(lines, "WARNING: "+w.Text)
	}
	return lines
}

// Has reports whether the header carries a warning of kind.
func (h RunHeader) Has(kind WarningKind) bool { return h.Text(kind) != "" }

// Text is the text of the header's warning of kind, "" if it has none.
func (h RunHeader) Text(kind WarningKind) string {
	for _, w := range h.Warnings {
		if w.Kind == kind {
			return w.Text
		}
	}
	return ""
}
