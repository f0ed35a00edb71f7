package report

import (
	"strings"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

func TestVantage(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	run := func(host, loc string, ago time.Duration, cut bool) store.Run {
		fin := now.Add(-ago)
		r := store.Run{Host: host, Location: loc, FinishedAt: &fin, Servers: 100, Probed: 100, Succeeded: 100}
		if cut {
			r.Succeeded, r.FailedByClass = 0, map[string]int{"refused": 100}
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		runs   []store.Run
		quorum int
		need   int
		muted  []string
		line   string
	}{
		{"one location, quorum 1", []store.Run{run("a", "default", time.Second, false)}, 1, 1, nil, ""},
		{"two locations, quorum 2", []store.Run{run("a", "fra", time.Second, false), run("b", "nyc", time.Second, false)}, 2, 2, nil,
			"locations: fra, nyc; quorum 2"},
		{"a cut-off location does not vote", []store.Run{run("a", "fra", time.Second, false), run("b", "nyc", time.Second, true)}, 2, 1, []string{"nyc"},
			"locations: fra, nyc (nyc cut off: not voting); quorum 2 (1 while fewer locations can vote)"},
		{"a location votes while one of its hosts reaches servers", []store.Run{run("a", "fra", time.Second, false), run("b1", "nyc", time.Second, true), run("b2", "nyc", time.Second, false)}, 2, 2, nil, ""},
		{"a stopped location does not count", []store.Run{run("a", "fra", time.Second, false), run("b", "nyc", 10*time.Minute, false)}, 2, 1, nil,
			"locations: fra; quorum 2 (1 while fewer locations can vote)"},
	} {
		v := NewVantage(NewHosts(now, tc.runs), tc.quorum)
		if v.Need != tc.need {
			t.Errorf("%s: Need = %d, want %d", tc.name, v.Need, tc.need)
		}
		if len(v.Muted) != len(tc.muted) {
			t.Errorf("%s: Muted = %v, want %v", tc.name, v.Muted, tc.muted)
		}
		for _, m := range tc.muted {
			if !v.Muted[m] {
				t.Errorf("%s: %s not muted", tc.name, m)
			}
		}
		if tc.line != "" && v.Line() != tc.line {
			t.Errorf("%s: Line = %q, want %q", tc.name, v.Line(), tc.line)
		}
	}
}

func TestJudgeByQuorum(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) *time.Time { t := now.Add(-ago); return &t }
	stale := at(5 * time.Minute)
	failed := func(loc string) store.LocationResult {
		return store.LocationResult{Location: loc, LastOK: stale, LastProbe: *at(10 * time.Second), ErrorClass: "timeout"}
	}
	seen := func(loc string) store.LocationResult {
		return store.LocationResult{Location: loc, LastOK: at(5 * time.Second), LastProbe: *at(5 * time.Second)}
	}
	silent := func(loc string) store.LocationResult {
		return store.LocationResult{Location: loc, LastOK: stale, LastProbe: *stale}
	}
	two := Vantage{Quorum: 2, Need: 2, Muted: map[string]bool{}}
	for _, tc := range []struct {
		name   string
		lhb    *time.Time
		locs   []store.LocationResult
		v      Vantage
		alerts int
		want   status.State
		held   bool
		seen   string
	}{
		{"fresh from one location", at(5 * time.Second), []store.LocationResult{seen("fra"), failed("nyc")}, two, 0, status.Online, false,
			"seen from fra; nyc: timeout"},
		{"both failed: offline", stale, []store.LocationResult{failed("fra"), failed("nyc")}, two, 0, status.Offline, false,
			"fra: timeout; nyc: timeout"},
		{"one failed, one silent: held up", stale, []store.LocationResult{failed("fra"), silent("nyc")}, two, 0, status.Online, true,
			"fra: timeout; nyc: silent"},
		{"held up keeps its alerts", stale, []store.LocationResult{failed("fra"), silent("nyc")}, two, 1, status.Warning, true, ""},
		{"quorum 1: the source system's rule", stale, []store.LocationResult{failed("fra"), silent("nyc")}, Vantage{Quorum: 1, Need: 1}, 0, status.Offline, false, ""},
		{"nobody probed it recently: offline", stale, []store.LocationResult{silent("fra"), silent("nyc")}, two, 0, status.Offline, false, ""},
		{"never seen: offline whatever the votes", nil, []store.LocationResult{failed("fra")}, two, 0, status.Offline, false, ""},
		{"a cut-off location's failure does not vote", stale, []store.LocationResult{failed("fra"), failed("nyc")},
			Vantage{Quorum: 2, Need: 2, Muted: map[string]bool{"nyc": true}}, 0, status.Online, true, "fra: timeout; nyc: timeout (cut off)"},
	} {
		s := store.ServerStatus{Server: store.Server{ID: 1, Name: "a", Mode: store.ModeSSH, Enabled: true, StaleAfter: time.Minute},
			ActiveAlerts: tc.alerts, Locations: tc.locs}
		s.LastHeartbeat = tc.lhb
		row := Judge(now, s, 0, tc.v)
		if row.Status != tc.want || row.QuorumHeld != tc.held {
			t.Errorf("%s: status %s held %v, want %s held %v", tc.name, row.Status, row.QuorumHeld, tc.want, tc.held)
		}
		if tc.seen != "" && row.SeenFrom != tc.seen {
			t.Errorf("%s: SeenFrom = %q, want %q", tc.name, row.SeenFrom, tc.seen)
		}
		if len(row.Locations) != len(tc.locs) {
			t.Errorf("%s: %d location views, want %d", tc.name, len(row.Locations), len(tc.locs))
		}
	}
	// A push server has no locations and keeps the source system's rule.
	push := store.ServerStatus{Server: store.Server{ID: 2, Name: "p", Mode: store.ModePush, Enabled: true, StaleAfter: time.Minute}}
	push.LastHeartbeat = stale
	if row := Judge(now, push, 0, two); row.Status != status.Offline || strings.Contains(row.SeenFrom, "seen") {
		t.Errorf("push server: %+v", row)
	}
}
