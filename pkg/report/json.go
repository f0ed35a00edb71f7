package report

import (
	"strconv"

	"github.com/stacksense/heartbeat/pkg/output"
)

var _ output.JSONAppender = (*ServerStatus)(nil)

// AppendJSON writes the row as encoding/json would (same keys, order and
// escaping; TestAppendJSONMatchesEncodingJSON holds it to that), without
// reflection: at 100,000 rows encoding/json was most of `status --json`.
// A field added to ServerStatus must be added here too; the test fails
// until it is.
func (s *ServerStatus) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, s.ID, 10)
	b = append(b, `,"name":`...)
	b = output.AppendJSONString(b, s.Name)
	b = append(b, `,"status":`...)
	b = output.AppendJSONString(b, string(s.Status))
	b = append(b, `,"last_heartbeat":`...)
	b = output.AppendJSONTimePtr(b, s.LastHeartbeat)
	b = append(b, `,"age_seconds":`...)
	if s.AgeSeconds == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, *s.AgeSeconds, 10)
	}
	b = append(b, `,"active_alerts":`...)
	b = strconv.AppendInt(b, int64(s.ActiveAlerts), 10)
	b = append(b, `,"mode":`...)
	b = output.AppendJSONString(b, s.Mode)
	b = append(b, `,"enabled":`...)
	b = strconv.AppendBool(b, s.Enabled)
	b = append(b, `,"host":`...)
	b = output.AppendJSONString(b, s.Host)
	b = append(b, `,"port":`...)
	b = strconv.AppendInt(b, int64(s.Port), 10)
	b = append(b, `,"source":`...)
	b = output.AppendJSONString(b, s.Source)
	b = append(b, `,"agent_version":`...)
	b = output.AppendJSONString(b, s.AgentVersion)
	b = append(b, `,"last_probe":`...)
	b = output.AppendJSONTimePtr(b, s.LastProbe)
	b = append(b, `,"latency_ms":`...)
	b = output.AppendJSONFloat(b, s.LatencyMS)
	b = append(b, `,"consecutive_failures":`...)
	b = strconv.AppendInt(b, int64(s.ConsecutiveFailures), 10)
	b = append(b, `,"last_error_class":`...)
	b = output.AppendJSONString(b, s.LastErrorClass)
	b = append(b, `,"last_error":`...)
	b = output.AppendJSONString(b, s.LastError)
	b = append(b, `,"phases_ms":`...)
	if p := s.PhasesMS; p == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"dial":`...)
		b = output.AppendJSONFloat(b, p.Dial)
		b = append(b, `,"banner":`...)
		b = output.AppendJSONFloat(b, p.Banner)
		b = append(b, `,"kex":`...)
		b = output.AppendJSONFloat(b, p.Kex)
		b = append(b, `,"auth":`...)
		b = output.AppendJSONFloat(b, p.Auth)
		b = append(b, `,"exec":`...)
		b = output.AppendJSONFloat(b, p.Exec)
		b = append(b, '}')
	}
	b = append(b, `,"stale_after_seconds":`...)
	b = output.AppendJSONFloat(b, s.StaleAfterSeconds)
	b = append(b, `,"since":`...)
	b = output.AppendJSONTimePtr(b, s.Since)
	b = append(b, `,"uptime_24h":`...)
	if s.Uptime24h == nil {
		b = append(b, "null"...)
	} else {
		b = output.AppendJSONFloat(b, *s.Uptime24h)
	}
	b = append(b, `,"flapping":`...)
	b = strconv.AppendBool(b, s.Flapping)
	b = append(b, `,"maintenance_until":`...)
	b = output.AppendJSONTimePtr(b, s.MaintenanceUntil)
	b = append(b, `,"maintenance_reason":`...)
	b = output.AppendJSONString(b, s.MaintenanceReason)
	if len(s.Locations) > 0 {
		b = append(b, `,"locations":[`...)
		for i := range s.Locations {
			l := &s.Locations[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"location":`...)
			b = output.AppendJSONString(b, l.Location)
			b = append(b, `,"says":`...)
			b = output.AppendJSONString(b, l.Says)
			b = append(b, `,"last_ok":`...)
			b = output.AppendJSONTimePtr(b, l.LastOK)
			b = append(b, `,"last_probe":`...)
			b = output.AppendJSONTime(b, l.LastProbe)
			b = append(b, `,"error_class":`...)
			b = output.AppendJSONString(b, l.ErrorClass)
			b = append(b, `,"cut_off":`...)
			b = strconv.AppendBool(b, l.CutOff)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if s.SeenFrom != "" {
		b = append(b, `,"seen_from":`...)
		b = output.AppendJSONString(b, s.SeenFrom)
	}
	if s.QuorumHeld {
		b = append(b, `,"quorum_held":true`...)
	}
	return append(b, '}')
}
