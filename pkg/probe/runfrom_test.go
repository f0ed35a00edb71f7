package probe

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/failure"
	"github.com/stacksense/heartbeat/pkg/sshtest"
)

// RunFrom probes targets as they arrive: every target of every batch gets
// exactly one result, and next is asked again until it has nothing more.
func TestRunFromProbesEveryBatch(t *testing.T) {
	t.Parallel()
	const n, size = 90, 20
	e := newEnv(t, sshtest.Group{Mode: sshtest.ModeOK, Count: n})
	all := e.targets()
	var (
		mu    sync.Mutex
		calls int
	)
	next := func(context.Context) []Target {
		mu.Lock()
		defer mu.Unlock()
		calls++
		batch := all[:min(size, len(all))]
		all = all[len(batch):]
		return batch
	}
	seen := map[int64]int{}
	sum := RunFrom(t.Context(), next, Options{Auth: e.auth, Concurrency: 8}, func(rs []Result) {
		for _, r := range rs {
			seen[r.ServerID]++
			if !r.OK {
				t.Errorf("server %d: %s %s", r.ServerID, r.Class, r.Message)
			}
		}
	})
	if sum.Probed != n || sum.Succeeded != n || len(seen) != n {
		t.Fatalf("summary %+v, %d servers seen", sum, len(seen))
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("server %d has %d results", id, c)
		}
	}
	// Five batches of 20 and one of 10, then the empty answer.
	if want := (n+size-1)/size + 1; calls != want {
		t.Errorf("next called %d times, want %d", calls, want)
	}
}

// At the run deadline RunFrom stops asking for targets and reports those it
// was handed but could not start, as Run does.
func TestRunFromStopsAtDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sshtest.Group{Mode: sshtest.ModeTarpit, Count: 10})
	var calls int
	next := func(ctx context.Context) []Target {
		calls++
		if ctx.Err() != nil {
			t.Error("next called after the deadline")
		}
		return e.targets()
	}
	var got []Result
	start := time.Now()
	sum := RunFrom(t.Context(), next, Options{Auth: e.auth, Concurrency: 4, Timeout: time.Minute, Deadline: time.Second}, func(rs []Result) {
		got = append(got, rs...)
	})
	if time.Since(start) > 5*time.Second {
		t.Errorf("run took %v with a 1s deadline", time.Since(start))
	}
	// Every target of every batch asked for is accounted for, each as a
	// timeout; on a loaded machine a worker freed by the deadline may take
	// one more job before the dispatcher sees it, so the exact split
	// between "cancelled" and "not started" is not fixed, and neither is
	// the number of batches (next itself fails the test if asked after
	// the deadline).
	if !sum.DeadlineHit || len(got) != 10*calls || sum.FailedByClass[failure.Timeout] != len(got) {
		t.Fatalf("calls %d, summary %+v, %d results", calls, sum, len(got))
	}
	notStarted := 0
	for _, r := range got {
		if strings.Contains(r.Message, "not started before the run deadline") {
			notStarted++
		}
	}
	if notStarted == 0 {
		t.Errorf("no target was left unstarted by a 1s deadline over tarpits with 4 workers")
	}
}
