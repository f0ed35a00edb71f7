package report

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/stacksense/heartbeat/pkg/failure"
	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

// HostStopped: a probe host's last run is older than status.ProbeOverdue
// while other hosts still run, so the others carry its share (on
// Postgres, where hosts share the fleet). Nothing goes OFFLINE for it,
// which is why it needs saying.
const HostStopped WarningKind = "host-stopped"

// HostWindow is how far back status --verbose and doctor look for probe
// hosts: a host whose last run is older is forgotten (decommissioned). It
// is the store's window for per-location results, so the locations status
// shows and the hosts it lists are the same ones.
const HostWindow = store.LocationWindow

// HostShare is one probe host's last finished run.
type HostShare struct {
	Run store.Run
	// Age is how long ago the run finished, by the store's clock.
	Age time.Duration
	// Share is the run's part of the servers claimed by the last runs of
	// the hosts of its location still running (0..1); 0 for a stopped
	// host.
	Share float64
	// Failed counts the run's failed probes.
	Failed int
	// Stopped: the run is older than status.ProbeOverdue while another
	// host's is not.
	Stopped bool
	// CutOff: the run could not connect to nearly any of its servers (the
	// run header's rule, applied to each host's run), so that host itself
	// is probably cut off.
	CutOff bool
}

// Hosts is what `status --verbose` and doctor say about the probe hosts.
type Hosts struct {
	Hosts    []HostShare
	Warnings []Warning
}

// NewHosts describes runs, each host's last finished run (as
// store.ProbeLeaser.HostRuns returns them), as seen at now.
func NewHosts(now time.Time, runs []store.Run) Hosts {
	var h Hosts
	// Shares are within a location: each location probes the whole fleet.
	total, running := map[string]int{}, 0
	for _, r := range runs {
		if r.FinishedAt == nil {
			continue
		}
		s := HostShare{Run: r, Age: status.Age(now, *r.FinishedAt), Failed: r.Probed - r.Succeeded}
		connectFailed := 0
		for c, n := range r.FailedByClass {
			if failure.Class(c).Connect() {
				connectFailed += n
			}
		}
		s.CutOff = status.HostCutOff(connectFailed, r.Probed)
		if s.Age <= status.ProbeOverdue {
			running++
			total[r.Location] += r.Servers
		}
		h.Hosts = append(h.Hosts, s)
	}
	sort.Slice(h.Hosts, func(i, j int) bool { return h.Hosts[i].Run.Host < h.Hosts[j].Run.Host })
	var stopped []string
	for i := range h.Hosts {
		s := &h.Hosts[i]
		switch {
		case s.Age > status.ProbeOverdue && running > 0:
			s.Stopped = true
			stopped = append(stopped, fmt.Sprintf("%s (last run %s ago)", output.Escape(s.Run.Host), status.FormatAge(s.Age)))
		case s.Age <= status.ProbeOverdue && total[s.Run.Location] > 0:
			s.Share = float64(s.Run.Servers) / float64(total[s.Run.Location])
		}
	}
	if len(stopped) > 0 {
		h.Warnings = append(h.Warnings, Warning{HostStopped, fmt.Sprintf("probe host %s stopped running while the others go on: "+
			"they probe its share, so no server shows it, but the capacity is gone. Check that host's cron lines and probe log.",
			strings.Join(stopped, ", "))})
	}
	return h
}

// Lines renders the hosts for `status --verbose`: one line per host, then
// one "WARNING: " line per warning. A single host that runs says nothing
// the run header has not said, so it gets no lines.
func (h Hosts) Lines() []string {
	if len(h.Hosts) < 2 && len(h.Warnings) == 0 {
		return nil
	}
	lines := make([]string, 0, len(h.Hosts)+len(h.Warnings))
	for _, s := range h.Hosts {
		lines = append(lines, s.Line())
	}
	for _, w := range h.Warnings {
		lines = append(lines, "WARNING: "+w.Text)
	}
	return lines
}

// Line is one host for people: "probe host mon1: last run 12s ago,
// 5,000 servers (50%), 3 failed".
func (s HostShare) Line() string {
	name := output.Escape(s.Run.Host)
	if s.Run.Location != "" && s.Run.Location != store.DefaultLocation {
		name += " (" + output.Escape(s.Run.Location) + ")"
	}
	line := fmt.Sprintf("probe host %s: last run %s ago, %s servers", name, status.FormatAge(s.Age), output.Thousands(s.Run.Servers))
	if s.Stopped {
		line += ", STOPPED"
	} else {
		line += fmt.Sprintf(" (%.0f%%)", 100*s.Share)
	}
	line += fmt.Sprintf(", %s failed", output.Thousands(s.Failed))
	if s.CutOff {
		line += " (CUT OFF: it could not connect to nearly any server)"
	}
	if s.Run.DeadlineHit {
		line += ", cut short by its deadline"
	}
	return line
}

// Has reports whether h carries a warning of kind.
func (h Hosts) Has(kind WarningKind) bool {
	for _, w := range h.Warnings {
		if w.Kind == kind {
			return true
		}
	}
	return false
}
