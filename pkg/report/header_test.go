package report

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

func TestRunHeader(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	run := func(finishedAgo time.Duration, probed, ok int, failed map[string]int) *store.Run {
		fin := now.Add(-finishedAgo)
		return &store.Run{StartedAt: fin.Add(-14200 * time.Millisecond), FinishedAt: &fin, Probed: probed, Succeeded: ok, FailedByClass: failed}
	}
	aborted := func(startedAgo time.Duration) *store.Run {
		return &store.Run{ID: 41, Host: "probe\x1b[2J1", StartedAt: now.Add(-startedAgo)}
	}
	tests := []struct {
		name    string
		run     *store.Run
		aborted *store.Run
		want    []string
		notWant []string
		kinds   []WarningKind
	}{
		{"never", nil, nil, []string{"no probe-ssh run has finished yet"}, []string{"WARNING"}, nil},
		{"healthy", run(12*time.Second, 10000, 9998, map[string]int{"auth": 2}), nil,
			[]string{"last probe run 12s ago: 9,998/10,000 answered in 14.2s"}, []string{"WARNING"}, nil},
		{"probe not running", run(5*time.Minute, 10, 10, nil), nil,
			[]string{"last probe run 5m0s ago", "probe-ssh is not running"}, []string{"cut off"}, []WarningKind{ProbeOverdue}},
		{"host cut off", run(10*time.Second, 100, 2, map[string]int{"timeout": 60, "unreachable": 38}), nil,
			[]string{"could not connect to 98 of 100 servers", "monitoring host itself"}, []string{"not running"}, []WarningKind{HostCutOff}},
		{"servers failing auth is not the host's fault", run(10*time.Second, 100, 2, map[string]int{"auth": 98}), nil,
			nil, []string{"WARNING"}, nil},
		{"tiny fleet does not cry wolf", run(10*time.Second, 2, 0, map[string]int{"timeout": 2}), nil,
			nil, []string{"WARNING"}, nil},
		{"aborted run is named, its host escaped", run(10*time.Second, 10, 10, nil), aborted(time.Hour),
			[]string{"WARNING: last run aborted: run 41 on host probe\\x1b[2J1 started 2026-11-23T11:00:00Z never finished (killed?)"},
			[]string{"\x1b"}, []WarningKind{RunAborted}},
		{"an aborted run a day old is forgotten", run(10*time.Second, 10, 10, nil), aborted(25 * time.Hour),
			nil, []string{"WARNING"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewRunHeader(now, tt.run, tt.aborted)
			got := strings.Join(h.Lines(), "\n")
			var kinds []WarningKind
			for _, w := range h.Warnings {
				kinds = append(kinds, w.Kind)
			}
			if !slices.Equal(kinds, tt.kinds) {
				t.Errorf("warning kinds %v, want %v", kinds, tt.kinds)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("header lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("header has %q:\n%s", w, got)
				}
			}
		})
	}
}

// The header describes the last run that probed something: a host's run
// that found everything probed by the others says nothing about the fleet.
func TestHeaderRunSkipsARunThatClaimedNothing(t *testing.T) {
	at := func(s int) *time.Time { v := time.Date(2026, 1, 1, 0, 0, s, 0, time.UTC); return &v }
	probedA := store.Run{ID: 1, Host: "a", FinishedAt: at(10), Servers: 5, Probed: 5, Succeeded: 4}
	probedB := store.Run{ID: 2, Host: "b", FinishedAt: at(12), Servers: 3, Probed: 3, Succeeded: 3}
	empty := store.Run{ID: 3, Host: "c", FinishedAt: at(20)}
	for _, tc := range []struct {
		name  string
		last  *store.Run
		hosts []store.Run
		want  int64
	}{
		{"last probed", &probedB, []store.Run{probedA, probedB}, 2},
		{"last empty: latest that probed", &empty, []store.Run{probedA, probedB, empty}, 2},
		{"last empty, no host probed", &empty, []store.Run{empty}, 3},
		{"last empty, no host runs (SQLite)", &empty, nil, 3},
	} {
		got := HeaderRun(tc.last, tc.hosts)
		if got == nil || got.ID != tc.want {
			t.Errorf("%s: HeaderRun = %+v; want run %d", tc.name, got, tc.want)
		}
	}
	if HeaderRun(nil, []store.Run{probedA}) != nil {
		t.Error("no finished run: HeaderRun is not nil")
	}
}
