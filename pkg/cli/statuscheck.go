package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/status"
)

// The plugin states of the Monitoring Plugins development guidelines
// (https://www.monitoring-plugins.org/doc/guidelines.html), by exit code.
var pluginStates = [...]string{status.ExitOK: "OK", status.ExitWarning: "WARNING", status.ExitCritical: "CRITICAL", status.ExitUnknown: "UNKNOWN"}

// pluginService is the SERVICE word of `SERVICE STATUS: text | perfdata`.
const pluginService = "HEARTBEAT"

// pluginLine is the one line a check prints: "HEARTBEAT OK - text | perf".
// The text is escaped and loses any '|', which would start the perfdata.
func pluginLine(code int, text string, perf []string) string {
	text = strings.ReplaceAll(output.Escape(text), "|", "/")
	line := pluginService + " " + pluginStates[code] + " - " + text
	if len(perf) > 0 {
		line += " | " + strings.Join(perf, " ")
	}
	return line
}

// perfValue formats one performance datum 'label'=value[UOM];[warn];[crit];[min];[max],
// dropping trailing empty fields as the guidelines allow. Labels here are
// fixed words, so they need no quotes.
func perfValue(label, value, uom string, warn, crit, min, max string) string {
	fields := []string{value + uom, warn, crit, min, max}
	n := len(fields)
	for n > 1 && fields[n-1] == "" {
		n--
	}
	return label + "=" + strings.Join(fields[:n], ";")
}

// seconds renders d in seconds for perfdata: digits and a dot only (the
// guidelines' [-0-9.] class), millisecond precision.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// serverCheck is the plugin line and exit code for one server's verdict.
func serverCheck(r report.Report) (string, int) {
	s := r.Servers[0]
	staleAfter := time.Duration(s.StaleAfterSeconds * float64(time.Second))
	code := status.ExitCode([]status.State{s.Status})
	var text strings.Builder
	fmt.Fprintf(&text, "%s %s", s.Name, s.Status)
	if s.Status == status.Disabled {
		text.WriteString(" (taken out of monitoring)")
	}
	var perf []string
	if s.LastHeartbeat != nil {
		age := status.Age(r.Now, *s.LastHeartbeat)
		fmt.Fprintf(&text, ", last heartbeat %s ago", status.FormatAge(age))
		if s.Status == status.Offline {
			fmt.Fprintf(&text, " (stale after %ss)", seconds(staleAfter))
		}
		perf = append(perf, perfValue("age", strconv.FormatInt(int64(age/time.Second), 10), "s", "", strconv.FormatInt(int64(staleAfter/time.Second), 10), "0", ""))
	} else {
		text.WriteString(", no heartbeat yet")
	}
	if s.ActiveAlerts > 0 {
		fmt.Fprintf(&text, ", %d active alert(s)", s.ActiveAlerts)
	}
	if s.LastErrorClass != "" && s.Status != status.Online {
		fmt.Fprintf(&text, ", last error %s: %s", s.LastErrorClass, s.LastError)
	}
	if s.LastProbe != nil && s.LatencyMS > 0 {
		perf = append(perf, perfValue("latency", seconds(time.Duration(s.LatencyMS*float64(time.Millisecond))), "s", "", "", "0", ""))
	}
	perf = append(perf,
		perfValue("alerts", strconv.Itoa(s.ActiveAlerts), "", "", "", "0", ""),
		perfValue("failures", strconv.Itoa(s.ConsecutiveFailures), "", "", "", "0", ""))
	return pluginLine(code, text.String(), perf), code
}

// fleetCheck is the plugin line and exit code for the whole fleet: more
// than critOffline servers OFFLINE is CRITICAL, more than warnOffline is
// WARNING, and so is any server in WARNING.
func fleetCheck(r report.Report, warnOffline, critOffline int) (string, int) {
	c := r.Counts
	code := status.ExitOK
	switch {
	case c.Offline > critOffline:
		code = status.ExitCritical
	case c.Offline > warnOffline, c.Warning > 0:
		code = status.ExitWarning
	}
	total := strconv.Itoa(len(r.Servers))
	text := fmt.Sprintf("%d servers: %s", len(r.Servers), c.String())
	if c.Offline > 0 {
		var names []string
		for _, s := range r.Servers {
			if s.Status == status.Offline && len(names) < 5 {
				names = append(names, s.Name)
			}
		}
		text += " (offline: " + strings.Join(names, ", ")
		if c.Offline > len(names) {
			text += ", …"
		}
		text += ")"
	}
	perf := []string{
		perfValue("online", strconv.Itoa(c.Online), "", "", "", "0", total),
		perfValue("warning", strconv.Itoa(c.Warning), "", "", "", "0", total),
		perfValue("offline", strconv.Itoa(c.Offline), "", strconv.Itoa(warnOffline), strconv.Itoa(critOffline), "0", total),
		perfValue("maintenance", strconv.Itoa(c.Maintenance), "", "", "", "0", total),
		perfValue("disabled", strconv.Itoa(c.Disabled), "", "", "", "0", total),
	}
	return pluginLine(code, text, perf), code
}

// statusCheckMode reports whether a `status` invocation asked for plugin
// output. A flag error stops cobra before --check is parsed, so the
// arguments are read too (up to a "--").
func statusCheckMode(cmd *cobra.Command, args []string) bool {
	if f := cmd.Flags().Lookup("check"); f != nil && f.Changed {
		return f.Value.String() == "true"
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--check" || a == "--check=true" {
			return true
		}
	}
	return false
}

// isStatusCommand reports whether cmd is `heartbeat status`, whose every
// error exits 3 (UNKNOWN) as a monitoring plugin must.
func isStatusCommand(cmd *cobra.Command) bool {
	return cmd != nil && cmd.CommandPath() == "heartbeat status"
}
