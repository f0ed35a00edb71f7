package report

import (
	"strings"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

func TestHosts(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	run := func(host string, finishedAgo time.Duration, servers, ok int) store.Run {
		fin := now.Add(-finishedAgo)
		return store.Run{Host: host, StartedAt: fin.Add(-5 * time.Second), FinishedAt: &fin, Servers: servers, Probed: servers, Succeeded: ok}
	}
	cutOff := func(r store.Run) store.Run {
		r.FailedByClass = map[string]int{"timeout": r.Probed - r.Succeeded}
		return r
	}
	tests := []struct {
		name    string
		runs    []store.Run
		want    []string
		notWant []string
		stopped bool
	}{
		{"one host says nothing", []store.Run{run("mon1", 10*time.Second, 100, 100)}, nil, []string{"probe host"}, false},
		{"two hosts split the fleet", []store.Run{run("mon2", 5*time.Second, 2500, 2497), run("mon1", 10*time.Second, 7500, 7500)},
			[]string{"probe host mon1: last run 10s ago, 7,500 servers (75%), 0 failed", "probe host mon2: last run 5s ago, 2,500 servers (25%), 3 failed"},
			[]string{"WARNING"}, false},
		{"a host that stopped is named", []store.Run{run("mon1", 10*time.Second, 100, 100), run("mon\x1b2", 10*time.Minute, 50, 50)},
			[]string{"probe host mon1: last run 10s ago, 100 servers (100%)", "STOPPED", "WARNING: probe host mon\\x1b2 (last run 10m0s ago) stopped running"},
			nil, true},
		{"a cut-off host is marked on its line", []store.Run{run("mon1", 10*time.Second, 100, 100), cutOff(run("mon2", 5*time.Second, 100, 2))},
			[]string{"probe host mon2: last run 5s ago, 100 servers (50%), 98 failed (CUT OFF", "probe host mon1: last run 10s ago, 100 servers (50%), 0 failed"},
			[]string{"mon1: last run 10s ago, 100 servers (50%), 0 failed (CUT OFF"}, false},
		{"all stopped is the run header's overdue warning, not this one", []store.Run{run("mon1", 10*time.Minute, 100, 100), run("mon2", 11*time.Minute, 50, 50)},
			nil, []string{"WARNING", "STOPPED"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHosts(now, tt.runs)
			text := strings.Join(h.Lines(), "\n")
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("lines lack %q:\n%s", w, text)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(text, w) {
					t.Errorf("lines have %q:\n%s", w, text)
				}
			}
			if h.Has(HostStopped) != tt.stopped {
				t.Errorf("HostStopped = %v, want %v", h.Has(HostStopped), tt.stopped)
			}
		})
	}
}
