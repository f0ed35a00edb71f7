// Package report builds what people and machines read from a store
// snapshot: each server's verdict (the rows of `status`, `status --json`,
// GET /api/servers, the page and /metrics) and the header about the last
// probe run with its warnings. The rules live in pkg/status and
// pkg/failure; this package applies them once, and every consumer renders
// the same data its own way.
package report

import (
	"slices"
	"time"

	"github.com/stacksense/heartbeat/pkg/history"
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
	// PhasesMS is how long each step of the last SSH probe took, null if
	// the server was never probed.
	PhasesMS *PhasesMS `json:"phases_ms"`
	// StaleAfterSeconds is the freshness window the verdict used: the
	// server's own unless a --stale-after override was given.
	StaleAfterSeconds float64 `json:"stale_after_seconds"`
	// Since is when the server entered its current status (RFC 3339 UTC),
	// null when not known yet (no evaluation has recorded it).
	Since *time.Time `json:"since"`
	// Uptime24h is the percentage of the last 24 hours the server was not
	// OFFLINE (maintenance and disabled time excluded), null where not
	// computed or nothing was monitored.
	Uptime24h *float64 `json:"uptime_24h"`
	// Flapping: the server changed state at least 5 times in the last 15
	// minutes and has not held one state for 10, so its notifications are
	// paused (computed where the 24-hour flips were read, else false).
	Flapping bool `json:"flapping"`
	// MaintenanceUntil is the end of the server's active maintenance
	// window (RFC 3339 UTC), null outside one; MaintenanceReason its
	// reason.
	MaintenanceUntil  *time.Time `json:"maintenance_until"`
	MaintenanceReason string     `json:"maintenance_reason"`
	// Locations is each probe location's word on the server, present
	// only when more than one location probes the fleet; SeenFrom says
	// the same for people ("seen from fra, ams; nyc: timeout").
	Locations []LocationView `json:"locations,omitempty"`
	SeenFrom  string         `json:"seen_from,omitempty"`
	// QuorumHeld: no location saw the server within its stale-after, but
	// fewer locations than the quorum say it failed, so it is not
	// OFFLINE.
	QuorumHeld bool `json:"quorum_held,omitempty"`
}

// PhasesMS is a probe's phase timings in milliseconds, in `probe-ssh
// --json` and `status --json`. A phase not reached is 0.
type PhasesMS struct {
	// Dial is the TCP connect, including DNS.
	Dial float64 `json:"dial"`
	// Banner runs from the start of the SSH handshake until the server's
	// version line arrived.
	Banner float64 `json:"banner"`
	// Kex is the key exchange, up to and including the host-key check.
	Kex float64 `json:"kex"`
	// Auth is user authentication.
	Auth float64 `json:"auth"`
	// Exec is the --exec command.
	Exec float64 `json:"exec"`
}

// NewPhasesMS converts phase durations to PhasesMS.
func NewPhasesMS(p store.Phases) *PhasesMS {
	return &PhasesMS{Dial: millis(p.Dial), Banner: millis(p.Banner), Kex: millis(p.Kex), Auth: millis(p.Auth), Exec: millis(p.Exec)}
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Report is a judged fleet: every server with its verdict, worst first
// then by name, and the store's clock the verdicts were reached at.
type Report struct {
	Now     time.Time
	Servers []ServerStatus
	Counts  status.Counts
}

// Build applies the status rules to a snapshot. staleAfter overrides
// every server's own freshness window when positive; 0 uses each
// server's.
func Build(snap store.Snapshot, staleAfter time.Duration) Report {
	return BuildWithHistory(snap, staleAfter, nil)
}

// BuildWithHistory is Build plus each server's uptime over the last 24
// hours, from flips: every flip of the fleet recorded since 24 hours
// before snap.Now (Store.Flips), oldest first.
func BuildWithHistory(snap store.Snapshot, staleAfter time.Duration, flips24h []store.Flip) Report {
	return BuildFrom(snap, staleAfter, flips24h, Vantage{})
}

// BuildFrom is BuildWithHistory judged with the probe locations' votes
// (see Vantage).
func BuildFrom(snap store.Snapshot, staleAfter time.Duration, flips24h []store.Flip, v Vantage) Report {
	r := Report{Now: snap.Now, Servers: make([]ServerStatus, 0, len(snap.Servers))}
	var byServer map[int64][]store.Flip
	if flips24h != nil {
		byServer = history.ByServer(flips24h)
	}
	for _, s := range snap.Servers {
		row := Judge(snap.Now, s, staleAfter, v)
		if byServer != nil {
			row.AddHistory(byServer[s.ID], s.State, snap.Now)
		}
		r.Counts.Add(row.Status)
		r.Servers = append(r.Servers, row)
	}
	slices.SortStableFunc(r.Servers, func(a, b ServerStatus) int {
		return compareRows(a.Status, a.Name, b.Status, b.Name)
	})
	return r
}

// Server judges one server at now, the store's clock, by the source
// system's rule. staleAfter overrides the server's own window when
// positive.
func Server(now time.Time, s store.ServerStatus, staleAfter time.Duration) ServerStatus {
	return Judge(now, s, staleAfter, Vantage{})
}

// Judge is Server with the probe locations' votes: a stale server that
// fewer than the quorum of locations say failed is not OFFLINE.
func Judge(now time.Time, s store.ServerStatus, staleAfter time.Duration, v Vantage) ServerStatus {
	if staleAfter <= 0 {
		staleAfter = s.StaleAfter
	}
	if staleAfter <= 0 {
		staleAfter = status.DefaultStaleAfter
	}
	row := ServerStatus{
		ID: s.ID, Name: s.Name, Status: status.Evaluate(now, s.LastHeartbeat, s.ActiveAlerts, staleAfter, s.Enabled),
		StaleAfterSeconds: staleAfter.Seconds(),
		LastHeartbeat:     s.LastHeartbeat, ActiveAlerts: s.ActiveAlerts, Mode: s.Mode, Enabled: s.Enabled,
		Host: s.Host, Port: s.Port, Source: s.Source, AgentVersion: s.AgentVersion,
		LastProbe: s.LastProbe, LatencyMS: millis(s.Latency),
		ConsecutiveFailures: s.ConsecutiveFailures, LastErrorClass: s.LastErrorClass, LastError: s.LastError,
	}
	row.addLocations(now, s, staleAfter, v)
	if s.InMaintenance {
		row.MaintenanceUntil, row.MaintenanceReason = s.MaintenanceUntil, s.MaintenanceReason
		if row.Status != status.Disabled {
			row.Status = status.Maintenance // a window outranks the heartbeat, not an admin's disable
		}
	}
	if s.LastHeartbeat != nil {
		age := int64(status.Age(now, *s.LastHeartbeat) / time.Second)
		row.AgeSeconds = &age
	}
	if s.LastProbe != nil {
		row.PhasesMS = NewPhasesMS(s.Phases)
	}
	row.Since = since(s, row.Status, staleAfter)
	return row
}

// since is when the server entered its live status: the recorded time
// when the last evaluation agrees with the live verdict, else, for a
// server gone stale that no evaluator has noticed yet, the moment its
// heartbeat went stale (what the next evaluation will record).
func since(s store.ServerStatus, live status.State, staleAfter time.Duration) *time.Time {
	if string(live) == s.State && s.StateSince != nil {
		return s.StateSince
	}
	if live == status.Offline && s.LastHeartbeat != nil {
		t := s.LastHeartbeat.Add(staleAfter).UTC()
		return &t
	}
	return nil
}

// States lists the verdicts, for status.ExitCode.
func (r Report) States() []status.State {
	out := make([]status.State, len(r.Servers))
	for i, s := range r.Servers {
		out[i] = s.Status
	}
	return out
}

// AddHistory fills what a row says about the last 24 hours, from its
// server's flips (oldest first; older ones are ignored) and the state the
// store last recorded.
func (row *ServerStatus) AddHistory(flips []store.Flip, recorded string, now time.Time) {
	if pct, ok := history.UptimeOf(history.EachSpan(flips, recorded, now.Add(-24*time.Hour), now)); ok {
		row.Uptime24h = &pct
	}
	row.Flapping = history.Flapping(flips, now)
}
