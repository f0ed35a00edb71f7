package status

import (
	"testing"
	"time"
)

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	tests := []struct {
		name       string
		last       *time.Time
		alerts     int
		staleAfter time.Duration
		enabled    bool
		want       State
	}{
		{"never heartbeat", nil, 0, DefaultStaleAfter, true, Offline},
		{"never heartbeat with alerts", nil, 3, DefaultStaleAfter, true, Offline},
		{"fresh no alerts", ago(5 * time.Second), 0, DefaultStaleAfter, true, Online},
		{"fresh with alerts", ago(5 * time.Second), 19, DefaultStaleAfter, true, Warning},
		{"exactly at window is fresh", ago(60 * time.Second), 0, DefaultStaleAfter, true, Online},
		{"just past window", ago(60*time.Second + time.Millisecond), 0, DefaultStaleAfter, true, Offline},
		{"stale with alerts is offline", ago(2 * time.Minute), 1, DefaultStaleAfter, true, Offline},
		{"custom window keeps it fresh", ago(2 * time.Minute), 0, 5 * time.Minute, true, Online},
		{"custom window makes it stale", ago(20 * time.Second), 0, 10 * time.Second, true, Offline},
		{"future heartbeat counts fresh", ago(-10 * time.Second), 0, DefaultStaleAfter, true, Online},
		{"disabled never counts as down", nil, 0, DefaultStaleAfter, false, Disabled},
		{"disabled even when fresh", ago(time.Second), 2, DefaultStaleAfter, false, Disabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Evaluate(now, tt.last, tt.alerts, tt.staleAfter, tt.enabled); got != tt.want {
				t.Errorf("Evaluate = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		states []State
		want   int
	}{
		{nil, ExitOK},
		{[]State{Online, Disabled}, ExitOK},
		{[]State{Online, Warning}, ExitWarning},
		{[]State{Warning, Offline, Online}, ExitCritical},
		{[]State{Disabled}, ExitOK},
		{[]State{Offline}, ExitCritical},
		{[]State{Maintenance, Online}, ExitOK},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.states); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.states, got, tt.want)
		}
	}
}

func TestRankWorstFirst(t *testing.T) {
	order := []State{Offline, Warning, Online, Maintenance, Disabled}
	for i := 1; i < len(order); i++ {
		if order[i-1].Rank() >= order[i].Rank() {
			t.Errorf("%s should rank before %s", order[i-1], order[i])
		}
	}
}

func TestFormatAge(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{-time.Second, "0s"},
		{12*time.Second + 900*time.Millisecond, "12s"},
		{59 * time.Second, "59s"},
		{60 * time.Second, "1m0s"},
		{4*time.Minute + 12*time.Second, "4m12s"},
		{3*time.Hour + 4*time.Minute + 59*time.Second, "3h4m"},
		{50 * time.Hour, "2d2h"},
	}
	for _, tt := range tests {
		if got := FormatAge(tt.d); got != tt.want {
			t.Errorf("FormatAge(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestCountsString(t *testing.T) {
	var c Counts
	for _, s := range []State{Online, Online, Warning, Offline, Disabled, Offline} {
		c.Add(s)
	}
	if got, want := c.String(), "2 online, 1 warning, 2 offline, 1 disabled"; got != want {
		t.Errorf("Counts = %q, want %q", got, want)
	}
}

func TestHostCutOff(t *testing.T) {
	tests := []struct {
		failed, probed int
		want           bool
	}{
		{0, 0, false}, {2, 2, false}, {3, 3, true}, {9, 10, true}, {8, 10, false}, {98, 100, true},
	}
	for _, tt := range tests {
		if got := HostCutOff(tt.failed, tt.probed); got != tt.want {
			t.Errorf("HostCutOff(%d, %d) = %v, want %v", tt.failed, tt.probed, got, tt.want)
		}
	}
}

func TestCountsMaintenance(t *testing.T) {
	var c Counts
	for _, s := range []State{Online, Maintenance, Offline, Maintenance} {
		c.Add(s)
	}
	if c.Maintenance != 2 || c.Online != 1 || c.Offline != 1 {
		t.Errorf("Counts = %+v", c)
	}
	if got, want := c.String(), "1 online, 0 warning, 1 offline, 0 disabled, 2 maintenance"; got != want {
		t.Errorf("Counts = %q, want %q", got, want)
	}
}
