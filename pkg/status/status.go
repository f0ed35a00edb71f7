// Package status holds the rules that turn a heartbeat into a verdict. It is
// pure: no I/O, no clock of its own; "now" is always the store's clock,
// passed in, so several hosts reach the same verdict.
package status

import (
	"fmt"
	"time"
)

// State is a server's verdict.
type State string

// The states, as the source system named them, plus DISABLED for servers an
// admin has taken out of monitoring.
const (
	Online   State = "ONLINE"
	Warning  State = "WARNING"
	Offline  State = "OFFLINE"
	Disabled State = "DISABLED"
	// Maintenance: the server is inside a maintenance window (see
	// `heartbeat maintenance`); like DISABLED it never counts as down, and
	// it ranks just above DISABLED.
	Maintenance State = "MAINTENANCE"
)

// DefaultStaleAfter is the source system's 60-second freshness window: two
// missed 30-second ticks.
const DefaultStaleAfter = 60 * time.Second

// Evaluate applies the source system's rules:
//
//   - OFFLINE: no heartbeat, or one older than staleAfter;
//   - ONLINE: a fresh heartbeat and no active alerts or anomalies;
//   - WARNING: a fresh heartbeat with active alerts or anomalies.
//
// A disabled server is DISABLED whatever its heartbeat, so it never counts
// as down. A heartbeat exactly staleAfter old is still fresh ("older than"
// is strict). A heartbeat in the future (written by a store whose clock
// has since stepped back) counts as fresh.
func Evaluate(now time.Time, lastHeartbeat *time.Time, activeAlerts int, staleAfter time.Duration, enabled bool) State {
	switch {
	case !enabled:
		return Disabled
	case lastHeartbeat == nil || now.Sub(*lastHeartbeat) > staleAfter:
		return Offline
	case activeAlerts > 0:
		return Warning
	default:
		return Online
	}
}

// Rank orders states worst first: OFFLINE, WARNING, ONLINE, MAINTENANCE,
// DISABLED.
func (s State) Rank() int {
	switch s {
	case Offline:
		return 0
	case Warning:
		return 1
	case Online:
		return 2
	case Maintenance:
		return 3
	default:
		return 4
	}
}

// Exit codes of `heartbeat status`, in the monitoring-plugin convention
// (Nagios, Icinga, Sensu) so a status call works as a check.
const (
	ExitOK       = 0
	ExitWarning  = 1
	ExitCritical = 2
	ExitUnknown  = 3
)

// ExitCode folds a set of states into one plugin exit code: 2 if any server
// is OFFLINE, else 1 if any is WARNING, else 0.
func ExitCode(states []State) int {
	code := ExitOK
	for _, s := range states {
		switch s {
		case Offline:
			return ExitCritical
		case Warning:
			code = ExitWarning
		}
	}
	return code
}

// Counts tallies states.
type Counts struct {
	Online, Warning, Offline, Disabled int
	Maintenance                        int
}

// Add counts one state.
func (c *Counts) Add(s State) {
	switch s {
	case Online:
		c.Online++
	case Warning:
		c.Warning++
	case Offline:
		c.Offline++
	case Disabled:
		c.Disabled++
	case Maintenance:
		c.Maintenance++
	}
}

// String is the summary line of `status --verbose`. Servers in
// maintenance are named only when there are some, so the line of a fleet
// without windows reads as it always has.
func (c Counts) String() string {
	line := fmt.Sprintf("%d online, %d warning, %d offline, %d disabled", c.Online, c.Warning, c.Offline, c.Disabled)
	if c.Maintenance > 0 {
		line += fmt.Sprintf(", %d maintenance", c.Maintenance)
	}
	return line
}

// Age is how long ago t was, as seen at now; negative ages (a timestamp
// from a clock that has since stepped back) are zero.
func Age(now, t time.Time) time.Duration {
	if d := now.Sub(t); d > 0 {
		return d
	}
	return 0
}

// FormatAge renders an age for people: "12s", "4m12s", "3h4m", "2d3h".
// Precision drops as the age grows because nobody acts on the seconds of a
// day-old heartbeat.
func FormatAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	default:
		return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
	}
}

// ProbeOverdue is how long after the last finished probe run the probe
// counts as not running: three 30-second ticks. `status --verbose` and
// `doctor` both warn past it.
const ProbeOverdue = 90 * time.Second

// HostCutOff reports whether connectFailed of probed servers failing to
// connect points at the monitoring host rather than the servers: nearly
// all (90%) of a fleet of at least 3, so one flaky server in a fleet of
// two does not cry wolf.
func HostCutOff(connectFailed, probed int) bool {
	return probed >= 3 && connectFailed*10 >= probed*9
}
