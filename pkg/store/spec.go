package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Validate reports the first problem with a server spec in words an admin
// can act on. Both engines and the CLI rely on it, so a bad spec is refused
// the same way whichever path it came in by.
func (s ServerSpec) Validate() error {
	switch {
	case strings.TrimSpace(s.Name) == "":
		return errors.New("server name is empty")
	case s.Name != strings.TrimSpace(s.Name):
		return fmt.Errorf("server name %q has leading or trailing spaces", s.Name)
	case isDigits(s.Name):
		// Commands take "ID|NAME"; an all-digit name would be ambiguous.
		return fmt.Errorf("server name %q is all digits and would be confused with an id", s.Name)
	case strings.TrimSpace(s.Host) == "":
		return fmt.Errorf("server %q: host is empty", s.Name)
	case strings.ContainsAny(s.Host, " \t/"):
		return fmt.Errorf("server %q: host %q is not a hostname or IP address", s.Name, s.Host)
	case s.Port < 0 || s.Port > 65535:
		return fmt.Errorf("server %q: port %d is out of range 1-65535", s.Name, s.Port)
	case s.Mode != "" && s.Mode != ModeSSH && s.Mode != ModePush:
		return fmt.Errorf("server %q: mode %q is not %s or %s", s.Name, s.Mode, ModeSSH, ModePush)
	}
	return nil
}

// Normalized returns the spec with defaults applied.
func (s ServerSpec) Normalized() ServerSpec {
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	if s.Mode == "" {
		s.Mode = ModeSSH
	}
	return s
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Same reports whether the server already matches the spec, so an import
// can count it as unchanged.
func (s Server) Same(spec ServerSpec) bool {
	spec = spec.Normalized()
	return s.Host == spec.Host && s.Port == spec.Port && s.User == spec.User && s.KeyPath == spec.KeyPath
}

// Validate reports the first problem with an alert spec.
func (a AlertSpec) Validate() error {
	switch {
	case a.Kind != KindAlert && a.Kind != KindAnomaly:
		return fmt.Errorf("alert kind %q is not %s or %s", a.Kind, KindAlert, KindAnomaly)
	case a.Severity != SeverityInfo && a.Severity != SeverityWarning && a.Severity != SeverityCritical:
		return fmt.Errorf("alert severity %q is not %s, %s or %s", a.Severity, SeverityInfo, SeverityWarning, SeverityCritical)
	case strings.TrimSpace(a.Message) == "":
		return errors.New("alert message is empty")
	}
	return nil
}

// LastResultPerServer drops all but the last result for each server,
// keeping the order of first appearance. Engines write one row per server
// per batch, and a batch could otherwise name a server twice.
func LastResultPerServer(results []ProbeResult) []ProbeResult {
	index := make(map[int64]int, len(results))
	out := make([]ProbeResult, 0, len(results))
	for _, r := range results {
		if i, ok := index[r.ServerID]; ok {
			out[i] = r
			continue
		}
		index[r.ServerID] = len(out)
		out = append(out, r)
	}
	return out
}

// VerifiedPushes checks each push against the stored token hashes (by
// server id; a server missing from stored is unknown) and returns, for the
// pushes that match, the agent version to record per server, the last push
// winning when a server appears twice, with the ids in ascending order so
// that engines take row locks in a fixed order. ok[i] says whether
// pushes[i] matched.
func VerifiedPushes(pushes []Push, stored map[int64][]byte) (ids []int64, versions []string, ok []bool) {
	ok = make([]bool, len(pushes))
	version := make(map[int64]string, len(pushes))
	for i, p := range pushes {
		// Unknown servers compare against nil, which costs the same as a
		// mismatch: the answer does not reveal whether the id exists.
		if TokenMatches(stored[p.ServerID], p.TokenHash) {
			ok[i] = true
			version[p.ServerID] = p.AgentVersion
		}
	}
	ids = make([]int64, 0, len(version))
	for id := range version {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	versions = make([]string, len(ids))
	for i, id := range ids {
		versions[i] = version[id]
	}
	return ids, versions, ok
}

// PushServerIDs returns the distinct server ids of a batch.
func PushServerIDs(pushes []Push) []int64 {
	ids := make([]int64, 0, len(pushes))
	for _, p := range pushes {
		ids = append(ids, p.ServerID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
