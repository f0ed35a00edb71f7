package output

import (
	"fmt"
	"time"

	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

// RunHeader returns the lines `status --verbose` prints above the table
// about the last probe run, in words for whoever is on call.
func RunHeader(now time.Time, last *store.Run) []string {
	if last == nil || last.FinishedAt == nil {
		return []string{"no probe-ssh run has finished yet (servers that push over the API do not need one)"}
	}
	age := status.Age(now, *last.FinishedAt)
	line := fmt.Sprintf("last probe run %s ago: %s/%s answered in %.1fs", status.FormatAge(age),
		Thousands(last.Succeeded), Thousands(last.Probed), last.FinishedAt.Sub(last.StartedAt).Seconds())
	if last.DeadlineHit {
		line += " (cut short by its deadline)"
	}
	lines := []string{line}
	if age > status.ProbeOverdue {
		lines = append(lines, fmt.Sprintf("WARNING: no probe run has finished for %s: probe-ssh is not running, so servers show OFFLINE "+
			"for that reason, not their own. Check the cron lines (crontab -l) and the probe log.", status.FormatAge(age)))
	}
	connectFailed := 0
	for c, n := range last.FailedByClass {
		if status.IsConnectFailure(c) {
			connectFailed += n
		}
	}
	if status.HostCutOff(connectFailed, last.Probed) {
		lines = append(lines, fmt.Sprintf("WARNING: the last run could not connect to %s of %s servers: the monitoring host itself "+
			"is probably cut off (check its network, DNS and firewall before the servers).", Thousands(connectFailed), Thousands(last.Probed)))
	}
	return lines
}

// Thousands formats n with comma separators: 10000 → "10,000".
func Thousands(n int) string {
	if n < 0 {
		return "-" + Thousands(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// AbortedRunWindow is how long after its start an aborted run is named in
// the `status --verbose` header: long enough to be seen the next morning.
const AbortedRunWindow = 24 * time.Hour

// AbortedRunLine is the `status --verbose` header line about the last run
// that never finished (its process was killed), or "" if there was none
// within AbortedRunWindow of now.
func AbortedRunLine(now time.Time, aborted *store.Run) string {
	if aborted == nil || status.Age(now, aborted.StartedAt) > AbortedRunWindow {
		return ""
	}
	return fmt.Sprintf("last run aborted: run %d on host %s started %s never finished (killed?)",
		aborted.ID, aborted.Host, aborted.StartedAt.UTC().Format(time.RFC3339))
}
