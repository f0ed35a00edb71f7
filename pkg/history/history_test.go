package history

import (
	"math"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

var t0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func at(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }

func TestSpansAndUptime(t *testing.T) {
	flips := []store.Flip{
		{At: at(2), From: "ONLINE", To: "OFFLINE", Reason: "no heartbeat for 60s"},
		{At: at(3), From: "OFFLINE", To: "ONLINE"},
		{At: at(10), From: "ONLINE", To: "MAINTENANCE"},
		{At: at(12), From: "MAINTENANCE", To: "OFFLINE"},
		{At: at(13), From: "OFFLINE", To: "WARNING"},
	}
	spans := Spans(flips, "WARNING", at(0), at(24))
	var got []string
	for _, s := range spans {
		got = append(got, s.State+" "+s.Duration().String())
	}
	want := []string{"ONLINE 2h0m0s", "OFFLINE 1h0m0s", "ONLINE 7h0m0s", "MAINTENANCE 2h0m0s", "OFFLINE 1h0m0s", "WARNING 11h0m0s"}
	if len(got) != len(want) {
		t.Fatalf("spans = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("spans = %v, want %v", got, want)
		}
	}
	// 22 monitored hours (maintenance excluded), 2 of them OFFLINE.
	pct, ok := Uptime(spans)
	if !ok || math.Abs(pct-100*20.0/22) > 1e-9 {
		t.Errorf("uptime = %v, %v; want %v", pct, ok, 100*20.0/22)
	}
}

func TestSpansWithoutFlipsUseCurrentState(t *testing.T) {
	spans := Spans(nil, "OFFLINE", at(0), at(24))
	if len(spans) != 1 || spans[0].State != "OFFLINE" || spans[0].Duration() != 24*time.Hour {
		t.Fatalf("spans = %+v", spans)
	}
	if pct, ok := Uptime(spans); !ok || pct != 0 {
		t.Errorf("uptime = %v, %v; want 0", pct, ok)
	}
}

func TestTimeBeforeFirstEvaluationIsNotCounted(t *testing.T) {
	// A server added at 06:00 that was up all along is 100% up, not 75%.
	flips := []store.Flip{{At: at(6), From: "", To: "ONLINE"}}
	pct, ok := Uptime(Spans(flips, "ONLINE", at(0), at(24)))
	if !ok || pct != 100 {
		t.Errorf("uptime = %v, %v; want 100", pct, ok)
	}
	if _, ok := Uptime(Spans(nil, "", at(0), at(24))); ok {
		t.Error("a never-evaluated server has an uptime figure")
	}
	if _, ok := Uptime(Spans(nil, "DISABLED", at(0), at(24))); ok {
		t.Error("a disabled server has an uptime figure")
	}
}

func TestDaily(t *testing.T) {
	// Down from 12:00 on day 2 until 12:00 on day 3.
	flips := []store.Flip{
		{At: at(36), From: "ONLINE", To: "OFFLINE"},
		{At: at(60), From: "OFFLINE", To: "ONLINE"},
	}
	now := at(72 + 6) // 06:00 on day 4
	days := Daily(Spans(flips, "ONLINE", now.Add(-4*24*time.Hour), now), now, 4)
	want := []float64{100, 50, 50, 100}
	for i, d := range days {
		if !d.OK || d.Uptime != want[i] || !d.Date.Equal(at(float64(24*i))) {
			t.Errorf("day %d = %+v, want %v%% on %v", i, d, want[i], at(float64(24*i)))
		}
	}
}

func TestFlapping(t *testing.T) {
	now := at(10)
	flips := func(minutesAgo ...float64) []store.Flip {
		var out []store.Flip
		for i, m := range minutesAgo {
			to := "OFFLINE"
			if i%2 == 1 {
				to = "ONLINE"
			}
			out = append(out, store.Flip{At: now.Add(-time.Duration(m * float64(time.Minute))), From: "X", To: to})
		}
		return out
	}
	for _, tt := range []struct {
		name string
		in   []store.Flip
		want bool
	}{
		{"five changes in 15 minutes, the last 1 minute ago", flips(14, 10, 6, 3, 1), true},
		{"four changes", flips(10, 6, 3, 1), false},
		{"five changes, but spread over 20 minutes", flips(20, 16, 6, 3, 1), false},
		{"settled: the last change 11 minutes ago", flips(14.5, 14, 13, 12, 11), false},
	} {
		if got := Flapping(tt.in, now); got != tt.want {
			t.Errorf("%s: Flapping = %v, want %v", tt.name, got, tt.want)
		}
	}
}
