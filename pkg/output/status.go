package output

import (
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

// ServerStatus is one server in `status --json` and GET /api/servers. Its
// field names are a stable, documented interface (README "status JSON"):
// add fields, never rename or remove them.
type ServerStatus struct {
	ID     int64        `json:"id"`
	Name   string       `json:"name"`
	Status status.State `json:"status"`
	// LastHeartbeat is RFC 3339 UTC, null if the server never answered.
	LastHeartbeat *time.Time `json:"last_heartbeat"`
	// AgeSeconds is whole seconds since LastHeartbeat, null with it.
	AgeSeconds   *int64 `json:"age_seconds"`
	ActiveAlerts int    `json:"active_alerts"`
	// Mode is "ssh" (probed) or "push" (pushes its own heartbeats).
	Mode    string `json:"mode"`
	Enabled bool   `json:"enabled"`
	Host    string `json:"host"`
	Port    int    `json:"port"`
	// Source of the last heartbeat: "ssh", "api" or "" if none.
	Source       string `json:"source"`
	AgentVersion string `json:"agent_version"`
	// LastProbe is the last SSH probe attempt, RFC 3339 UTC or null.
	LastProbe           *time.Time `json:"last_probe"`
	LatencyMS           float64    `json:"latency_ms"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	LastErrorClass      string     `json:"last_error_class"`
	LastError           string     `json:"last_error"`
}

// Report is a judged fleet: every server with its verdict, worst first
// then by name, and the store's clock the verdicts were reached at.
type Report struct {
	Now     time.Time
	Servers []ServerStatus
	Counts  status.Counts
}

// BuildReport applies the status rules to a snapshot.
func BuildReport(snap store.Snapshot, staleAfter time.Duration) Report {
	r := Report{Now: snap.Now, Servers: make([]ServerStatus, 0, len(snap.Servers))}
	for _, s := range snap.Servers {
		st := status.Evaluate(snap.Now, s.LastHeartbeat, s.ActiveAlerts, staleAfter, s.Enabled)
		r.Counts.Add(st)
		row := ServerStatus{
			ID: s.ID, Name: s.Name, Status: st,
			LastHeartbeat: s.LastHeartbeat, ActiveAlerts: s.ActiveAlerts, Mode: s.Mode, Enabled: s.Enabled,
			Host: s.Host, Port: s.Port, Source: s.Source, AgentVersion: s.AgentVersion,
			LastProbe: s.LastProbe, LatencyMS: float64(s.Latency.Microseconds()) / 1000,
			ConsecutiveFailures: s.ConsecutiveFailures, LastErrorClass: s.LastErrorClass, LastError: s.LastError,
		}
		if s.LastHeartbeat != nil {
			age := int64(status.Age(snap.Now, *s.LastHeartbeat) / time.Second)
			row.AgeSeconds = &age
		}
		r.Servers = append(r.Servers, row)
	}
	sort.SliceStable(r.Servers, func(i, j int) bool {
		a, b := r.Servers[i], r.Servers[j]
		if a.Status.Rank() != b.Status.Rank() {
			return a.Status.Rank() < b.Status.Rank()
		}
		return a.Name < b.Name
	})
	return r
}

// States lists the verdicts, for status.ExitCode.
func (r Report) States() []status.State {
	out := make([]status.State, len(r.Servers))
	for i, s := range r.Servers {
		out[i] = s.Status
	}
	return out
}

// StatusTable writes the report as the `status` table; verbose adds the
// probe columns and the summary line.
func StatusTable(w io.Writer, r Report, verbose bool, p Palette) error {
	header := []string{"ID", "NAME", "STATUS", "LAST HEARTBEAT", "AGE", "ALERTS"}
	if verbose {
		header = append(header, "HOST:PORT", "SOURCE", "LAST PROBE", "LATENCY", "FAILURES", "LAST ERROR")
	}
	rows := make([][]string, 0, len(r.Servers))
	for _, s := range r.Servers {
		age := ""
		if s.LastHeartbeat != nil {
			age = status.FormatAge(status.Age(r.Now, *s.LastHeartbeat))
		}
		row := []string{
			strconv.FormatInt(s.ID, 10), s.Name, p.State(s.Status),
			formatTime(s.LastHeartbeat), age, strconv.Itoa(s.ActiveAlerts),
		}
		if verbose {
			latency := ""
			if s.LatencyMS > 0 {
				latency = fmt.Sprintf("%.1fms", s.LatencyMS)
			}
			lastErr := ""
			if s.LastErrorClass != "" {
				lastErr = s.LastErrorClass + ": " + s.LastError
			}
			row = append(row,
				net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), s.Source, formatTime(s.LastProbe),
				latency, strconv.Itoa(s.ConsecutiveFailures), lastErr)
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		if _, err := fmt.Fprintln(w, "no servers registered; add one with `heartbeat servers add NAME --host HOST`"); err != nil {
			return err
		}
	} else if err := Table(w, header, rows); err != nil {
		return err
	}
	if verbose {
		if _, err := fmt.Fprintln(w, r.Counts.String()); err != nil {
			return err
		}
	}
	return nil
}

// formatTime renders a stored time for a table: UTC to the second.
func formatTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
