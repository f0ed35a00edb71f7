package report

import (
	"strconv"

	"github.com/stacksense/heartbeat/pkg/output"
)

var _ output.JSONIndentAppender = (*ServerStatus)(nil)

// AppendJSON writes the row as encoding/json would (same keys, order and
// escaping; TestAppendJSONMatchesEncodingJSON holds it to that), without
// reflection: at 100,000 rows encoding/json was most of `status --json`.
// A field added to ServerStatus must be added to writeJSON too; the test
// fails until it is.
func (s *ServerStatus) AppendJSON(b []byte) []byte {
	w := output.JSONWriter{B: b}
	s.writeJSON(&w)
	return w.B
}

// AppendJSONIndent writes the row as json.MarshalIndent would.
func (s *ServerStatus) AppendJSONIndent(b []byte, prefix, indent string) []byte {
	w := output.JSONWriter{B: b, Indented: true, Prefix: prefix, Indent: indent}
	s.writeJSON(&w)
	return w.B
}

func (s *ServerStatus) writeJSON(w *output.JSONWriter) {
	w.Open('{')
	w.Key("id")
	w.B = strconv.AppendInt(w.B, s.ID, 10)
	w.Key("name")
	w.B = output.AppendJSONString(w.B, s.Name)
	w.Key("status")
	w.B = output.AppendJSONString(w.B, string(s.Status))
	w.Key("last_heartbeat")
	w.B = output.AppendJSONTimePtr(w.B, s.LastHeartbeat)
	w.Key("age_seconds")
	if s.AgeSeconds == nil {
		w.B = append(w.B, "null"...)
	} else {
		w.B = strconv.AppendInt(w.B, *s.AgeSeconds, 10)
	}
	w.Key("active_alerts")
	w.B = strconv.AppendInt(w.B, int64(s.ActiveAlerts), 10)
	w.Key("mode")
	w.B = output.AppendJSONString(w.B, s.Mode)
	w.Key("enabled")
	w.B = strconv.AppendBool(w.B, s.Enabled)
	w.Key("host")
	w.B = output.AppendJSONString(w.B, s.Host)
	w.Key("port")
	w.B = strconv.AppendInt(w.B, int64(s.Port), 10)
	w.Key("source")
	w.B = output.AppendJSONString(w.B, s.Source)
	w.Key("agent_version")
	w.B = output.AppendJSONString(w.B, s.AgentVersion)
	w.Key("last_probe")
	w.B = output.AppendJSONTimePtr(w.B, s.LastProbe)
	w.Key("latency_ms")
	w.B = output.AppendJSONFloat(w.B, s.LatencyMS)
	w.Key("consecutive_failures")
	w.B = strconv.AppendInt(w.B, int64(s.ConsecutiveFailures), 10)
	w.Key("last_error_class")
	w.B = output.AppendJSONString(w.B, s.LastErrorClass)
	w.Key("last_error")
	w.B = output.AppendJSONString(w.B, s.LastError)
	w.Key("phases_ms")
	if p := s.PhasesMS; p == nil {
		w.B = append(w.B, "null"...)
	} else {
		w.Open('{')
		w.Key("dial")
		w.B = output.AppendJSONFloat(w.B, p.Dial)
		w.Key("banner")
		w.B = output.AppendJSONFloat(w.B, p.Banner)
		w.Key("kex")
		w.B = output.AppendJSONFloat(w.B, p.Kex)
		w.Key("auth")
		w.B = output.AppendJSONFloat(w.B, p.Auth)
		w.Key("exec")
		w.B = output.AppendJSONFloat(w.B, p.Exec)
		w.Close('}')
	}
	w.Key("stale_after_seconds")
	w.B = output.AppendJSONFloat(w.B, s.StaleAfterSeconds)
	w.Key("since")
	w.B = output.AppendJSONTimePtr(w.B, s.Since)
	w.Key("uptime_24h")
	if s.Uptime24h == nil {
		w.B = append(w.B, "null"...)
	} else {
		w.B = output.AppendJSONFloat(w.B, *s.Uptime24h)
	}
	w.Key("flapping")
	w.B = strconv.AppendBool(w.B, s.Flapping)
	w.Key("maintenance_until")
	w.B = output.AppendJSONTimePtr(w.B, s.MaintenanceUntil)
	w.Key("maintenance_reason")
	w.B = output.AppendJSONString(w.B, s.MaintenanceReason)
	if len(s.Locations) > 0 {
		w.Key("locations")
		w.Open('[')
		for i := range s.Locations {
			l := &s.Locations[i]
			w.Elem()
			w.Open('{')
			w.Key("location")
			w.B = output.AppendJSONString(w.B, l.Location)
			w.Key("says")
			w.B = output.AppendJSONString(w.B, l.Says)
			w.Key("last_ok")
			w.B = output.AppendJSONTimePtr(w.B, l.LastOK)
			w.Key("last_probe")
			w.B = output.AppendJSONTime(w.B, l.LastProbe)
			w.Key("error_class")
			w.B = output.AppendJSONString(w.B, l.ErrorClass)
			w.Key("cut_off")
			w.B = strconv.AppendBool(w.B, l.CutOff)
			w.Close('}')
		}
		w.Close(']')
	}
	if s.SeenFrom != "" {
		w.Key("seen_from")
		w.B = output.AppendJSONString(w.B, s.SeenFrom)
	}
	if s.QuorumHeld {
		w.Key("quorum_held")
		w.B = append(w.B, "true"...)
	}
	w.Close('}')
}
