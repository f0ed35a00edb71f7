package status

import (
	"testing"
	"time"
)

func TestLocationWord(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	for _, tc := range []struct {
		name      string
		lastOK    *time.Time
		lastProbe time.Time
		stale     time.Duration
		want      Word
	}{
		{"fresh success", ago(10 * time.Second), *ago(10 * time.Second), time.Minute, Saw},
		{"success exactly stale-after old is still fresh", ago(time.Minute), *ago(time.Minute), time.Minute, Saw},
		{"recent failure after an old success", ago(5 * time.Minute), *ago(20 * time.Second), time.Minute, Failed},
		{"recent failure, never a success", nil, *ago(20 * time.Second), time.Minute, Failed},
		{"failure within ProbeOverdue counts although stale-after is shorter", nil, *ago(80 * time.Second), 5 * time.Second, Failed},
		{"old failure is silence", nil, *ago(10 * time.Minute), time.Minute, Silent},
		{"old success, no probe since", ago(10 * time.Minute), *ago(10 * time.Minute), time.Minute, Silent},
		{"long stale-after widens the window", nil, *ago(4 * time.Minute), 5 * time.Minute, Failed},
	} {
		if got := LocationWord(now, tc.lastOK, tc.lastProbe, tc.stale); got != tc.want {
			t.Errorf("%s: LocationWord = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestQuorumOffline(t *testing.T) {
	for _, tc := range []struct {
		name               string
		need, down, probed int
		want               bool
	}{
		{"quorum 1: stale is offline (source system's rule)", 1, 0, 0, true},
		{"quorum 1 with a failure", 1, 1, 1, true},
		{"quorum 2, both locations failed", 2, 2, 2, true},
		{"quorum 2, one failed, the other has not probed", 2, 1, 1, false},
		{"quorum 2, one failed, the other cut off (probed, does not vote)", 2, 1, 2, false},
		{"quorum 2, nobody probed it recently: nobody vouches", 2, 0, 0, true},
		{"quorum 3 of 4, three failed", 3, 3, 4, true},
		{"quorum 3 of 4, two failed", 3, 2, 4, false},
	} {
		if got := QuorumOffline(tc.need, tc.down, tc.probed); got != tc.want {
			t.Errorf("%s: QuorumOffline(%d, %d, %d) = %v, want %v", tc.name, tc.need, tc.down, tc.probed, got, tc.want)
		}
	}
}

func TestNeed(t *testing.T) {
	for _, tc := range []struct{ quorum, voters, want int }{
		{1, 3, 1}, {2, 3, 2}, {3, 3, 3},
		{2, 1, 1}, // one location left can vote: its word decides
		{2, 0, 1}, // none can vote: the source system's rule
		{0, 2, 1},
	} {
		if got := Need(tc.quorum, tc.voters); got != tc.want {
			t.Errorf("Need(%d, %d) = %d, want %d", tc.quorum, tc.voters, got, tc.want)
		}
	}
}
