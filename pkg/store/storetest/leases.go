package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

// LeaseStore is a store on which several probe hosts share the fleet.
type LeaseStore interface {
	store.Store
	store.ProbeLeaser
}

// RunLeases exercises the store.ProbeLeaser contract. Engines that
// implement it (Postgres) call it besides Run; an engine without it runs
// one probe host at a time under TryProbeLock.
func RunLeases(t *testing.T, open func(t *testing.T) LeaseStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, s LeaseStore)
	}{
		{"ClaimOnlyDueSSHServers", testClaimDueSSH},
		{"ConcurrentClaimsNeverOverlap", testConcurrentClaims},
		{"FinishSetsNextTick", testFinishNextTick},
		{"RunNeverClaimsWhatBecameDueAfterItStarted", testNoReclaimWithinRun},
		{"ExpiredLeaseIsClaimedAgain", testExpiredLease},
		{"FinishAfterTakeoverChangesNothing", testFinishAfterTakeover},
		{"StartSharedRunAbortsOnlyDeadRuns", testSharedRunAborts},
		{"HostRuns", testHostRuns},
		{"EachLocationClaimsTheWholeFleet", testLocationsClaim},
		{"LocationResultsInStatus", testLocationResults},
		{"EvaluateByQuorum", testEvaluateQuorum},
		{"HostLocksShareTheStoreLock", testHostLocksShareStoreLock},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			tt.fn(t, ctx, open(t))
		})
	}
}

func addMany(t *testing.T, ctx context.Context, s store.Store, n int) []int64 {
	t.Helper()
	specs := make([]store.ServerSpec, n)
	for i := range specs {
		specs[i] = store.ServerSpec{Name: fmt.Sprintf("lease-%04d", i), Host: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)}
	}
	if _, err := s.ImportServers(ctx, specs); err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, 0, n)
	for _, sv := range mustServers(t, ctx, s) {
		ids = append(ids, sv.ID)
	}
	return ids
}

func sharedRun(t *testing.T, ctx context.Context, s LeaseStore, host string) store.Run {
	t.Helper()
	run, err := s.StartSharedRun(ctx, host, store.DefaultLocation, 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func claim(t *testing.T, ctx context.Context, s LeaseStore, runID int64, limit int, lease time.Duration) []int64 {
	t.Helper()
	servers, err := s.ClaimProbeTargets(ctx, runID, limit, lease)
	if err != nil {
		t.Fatalf("ClaimProbeTargets: %v", err)
	}
	ids := make([]int64, len(servers))
	for i, sv := range servers {
		ids[i] = sv.ID
		if !sv.Enabled || sv.Mode != store.ModeSSH || sv.Host == "" {
			t.Errorf("claimed %+v", sv)
		}
	}
	return ids
}

func testClaimDueSSH(t *testing.T, ctx context.Context, s LeaseStore) {
	ids := addMany(t, ctx, s, 12)
	if err := s.SetServerEnabled(ctx, ids[0], false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetServerMode(ctx, ids[1], store.ModePush); err != nil {
		t.Fatal(err)
	}
	run := sharedRun(t, ctx, s, "h1")
	got := claim(t, ctx, s, run.ID, 4, time.Minute)
	got = append(got, claim(t, ctx, s, run.ID, 100, time.Minute)...)
	if len(got) != 10 {
		t.Fatalf("claimed %d servers, want the 10 enabled ssh ones: %v", len(got), got)
	}
	for _, id := range got {
		if id == ids[0] || id == ids[1] {
			t.Errorf("claimed disabled or push server %d", id)
		}
	}
	if more := claim(t, ctx, s, run.ID, 100, time.Minute); len(more) != 0 {
		t.Errorf("leased servers claimed again: %v", more)
	}
	// A server added after the run started gets its lease row with the
	// next run.
	mustAdd(t, ctx, s, "late")
	if more := claim(t, ctx, s, run.ID, 100, time.Minute); len(more) != 0 {
		t.Errorf("a server added mid-run was claimed: %v", more)
	}
	next := sharedRun(t, ctx, s, "h2")
	if late := claim(t, ctx, s, next.ID, 100, time.Minute); len(late) != 1 {
		t.Errorf("the next run claimed %v; want the late server", late)
	}
	if _, err := s.FinishRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	runs, _, err := s.HostRuns(ctx, time.Hour)
	if err != nil || len(runs) != 1 || runs[0].Servers != 10 {
		t.Errorf("the run's Servers should count its claims: %+v, %v", runs, err)
	}
}

func testConcurrentClaims(t *testing.T, ctx context.Context, s LeaseStore) {
	const n, claimers = 300, 6
	addMany(t, ctx, s, n)
	runs := make([]store.Run, claimers)
	for i := range runs {
		runs[i] = sharedRun(t, ctx, s, fmt.Sprintf("host-%d", i))
	}
	got := make([][]int64, claimers)
	var wg sync.WaitGroup
	for i := range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				servers, err := s.ClaimProbeTargets(ctx, runs[i].ID, 7, time.Minute)
				if err != nil {
					t.Errorf("claimer %d: %v", i, err)
					return
				}
				if len(servers) == 0 {
					return
				}
				for _, sv := range servers {
					got[i] = append(got[i], sv.ID)
				}
			}
		}()
	}
	wg.Wait()
	seen := map[int64]int{}
	for i := range got {
		for _, id := range got[i] {
			seen[id]++
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct servers claimed, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("server %d claimed %d times", id, c)
		}
	}
}

func testFinishNextTick(t *testing.T, ctx context.Context, s LeaseStore) {
	addMany(t, ctx, s, 6)
	run := sharedRun(t, ctx, s, "h1")
	got := claim(t, ctx, s, run.ID, 10, time.Minute)
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	probed, released := got[:4], got[4:]
	const tick = 1500 * time.Millisecond
	if err := s.FinishProbeTargets(ctx, run.ID, probed, released, tick); err != nil {
		t.Fatal(err)
	}
	finished := time.Now()
	// Released servers are due again at once, for anyone.
	other := sharedRun(t, ctx, s, "h2")
	if again := claim(t, ctx, s, other.ID, 10, time.Minute); !sameIDs(again, released) {
		t.Errorf("after finishing, claimed %v; want only the released %v", again, released)
	}
	// Probed ones are due by the next tick at the latest, for the runs
	// that start then.
	time.Sleep(time.Until(finished.Add(tick + 100*time.Millisecond)))
	next := sharedRun(t, ctx, s, "h3")
	if again := claim(t, ctx, s, next.ID, 10, time.Minute); !sameIDs(again, probed) {
		t.Errorf("a tick later, claimed %v; want the probed %v", again, probed)
	}
	if err := s.FinishProbeTargets(ctx, run.ID, nil, nil, tick); err != nil {
		t.Errorf("finishing nothing: %v", err)
	}
}

// A run that is still claiming when the servers it probed become due
// again (it started just before a tick's due time) leaves them to the
// runs that start after: it never probes a server twice. Seen as every
// server probed twice by two processes that happened to start at :24.
func testNoReclaimWithinRun(t *testing.T, ctx context.Context, s LeaseStore) {
	ids := addMany(t, ctx, s, 4)
	run := sharedRun(t, ctx, s, "h1")
	got := claim(t, ctx, s, run.ID, 10, time.Minute)
	const tick = 600 * time.Millisecond
	if err := s.FinishProbeTargets(ctx, run.ID, got, nil, tick); err != nil {
		t.Fatal(err)
	}
	time.Sleep(tick + 100*time.Millisecond) // due again by the due rule
	if again := claim(t, ctx, s, run.ID, 10, time.Minute); len(again) != 0 {
		t.Errorf("the run that probed them claimed %v again", again)
	}
	later := sharedRun(t, ctx, s, "h2")
	if again := claim(t, ctx, s, later.ID, 10, time.Minute); !sameIDs(again, ids) {
		t.Errorf("a run started after they became due claimed %v; want %v", again, ids)
	}
}

func testExpiredLease(t *testing.T, ctx context.Context, s LeaseStore) {
	addMany(t, ctx, s, 5)
	dead := sharedRun(t, ctx, s, "dead")
	taken := claim(t, ctx, s, dead.ID, 10, 300*time.Millisecond)
	live := sharedRun(t, ctx, s, "live")
	if got := claim(t, ctx, s, live.ID, 10, time.Minute); len(got) != 0 {
		t.Errorf("claimed %v while the lease runs", got)
	}
	time.Sleep(500 * time.Millisecond)
	if got := claim(t, ctx, s, live.ID, 10, time.Minute); !sameIDs(got, taken) {
		t.Errorf("after the lease expired, claimed %v; want %v", got, taken)
	}
}

func testFinishAfterTakeover(t *testing.T, ctx context.Context, s LeaseStore) {
	addMany(t, ctx, s, 3)
	slow := sharedRun(t, ctx, s, "slow")
	taken := claim(t, ctx, s, slow.ID, 10, 100*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	fast := sharedRun(t, ctx, s, "fast")
	if got := claim(t, ctx, s, fast.ID, 10, time.Minute); !sameIDs(got, taken) {
		t.Fatalf("takeover claimed %v; want %v", got, taken)
	}
	// The slow run finishing late must not end the new lease: released,
	// the servers would be handed out a third time.
	if err := s.FinishProbeTargets(ctx, slow.ID, nil, taken, time.Hour); err != nil {
		t.Fatal(err)
	}
	third := sharedRun(t, ctx, s, "third")
	if got := claim(t, ctx, s, third.ID, 10, time.Minute); len(got) != 0 {
		t.Errorf("a late finish freed the new lease: %v claimed again", got)
	}
}

func testSharedRunAborts(t *testing.T, ctx context.Context, s LeaseStore) {
	mine, err := s.StartSharedRun(ctx, "h1", store.DefaultLocation, 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := s.StartSharedRun(ctx, "h2", store.DefaultLocation, 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// h1's next run knows its own open run is dead; h2's is alive.
	again, err := s.StartSharedRun(ctx, "h1", store.DefaultLocation, 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	aborted, err := s.LastAbortedRun(ctx)
	if err != nil || aborted == nil || aborted.ID != mine.ID {
		t.Fatalf("last aborted %+v, %v; want h1's run %d", aborted, err, mine.ID)
	}
	if _, err := s.FinishRun(ctx, again); err != nil {
		t.Fatal(err)
	}
	// Once older than staleAfter, another host's open run is dead too.
	time.Sleep(50 * time.Millisecond)
	if _, err := s.StartSharedRun(ctx, "h3", store.DefaultLocation, 0, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	aborted, err = s.LastAbortedRun(ctx)
	if err != nil || aborted == nil || aborted.ID != theirs.ID {
		t.Errorf("last aborted %+v, %v; want h2's stale run %d", aborted, err, theirs.ID)
	}
}

func testHostRuns(t *testing.T, ctx context.Context, s LeaseStore) {
	finish := func(host string, probed int) store.Run {
		run, err := s.StartSharedRun(ctx, host, store.DefaultLocation, probed, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		run.Probed, run.Succeeded, run.FailedByClass = probed, probed-1, map[string]int{"refused": 1}
		if run, err = s.FinishRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		return run
	}
	finish("b", 5)
	lastB := finish("b", 7)
	lastA := finish("a", 3)
	if _, err := s.StartSharedRun(ctx, "c", store.DefaultLocation, 0, time.Hour); err != nil { // open: not listed
		t.Fatal(err)
	}
	runs, now, err := s.HostRuns(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].ID != lastA.ID || runs[1].ID != lastB.ID || now.IsZero() || now.Location() != time.UTC {
		t.Fatalf("HostRuns = %+v at %v; want a's run %d, b's run %d", runs, now, lastA.ID, lastB.ID)
	}
	if r := runs[1]; r.Host != "b" || r.Servers != 7 || r.Probed != 7 || r.Succeeded != 6 || r.FailedByClass["refused"] != 1 || r.FinishedAt == nil {
		t.Errorf("b's run read back as %+v", r)
	}
	time.Sleep(20 * time.Millisecond)
	if runs, _, err := s.HostRuns(ctx, 10*time.Millisecond); err != nil || len(runs) != 0 {
		t.Errorf("HostRuns outside the window = %+v, %v", runs, err)
	}
}

func sameIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[int64]bool{}
	for _, id := range a {
		m[id] = true
	}
	for _, id := range b {
		if !m[id] {
			return false
		}
	}
	return true
}

// Mixed versions: a probe-ssh from before leases takes the store-wide lock
// exclusively and probes every server. Host locks hold it shared, so
// hosts coexist with each other but not with such a run, either way.
func testHostLocksShareStoreLock(t *testing.T, ctx context.Context, s LeaseStore) {
	a, ok, err := s.TryHostProbeLock(ctx, "a")
	if err != nil || !ok {
		t.Fatalf("TryHostProbeLock(a) = %v, %v", ok, err)
	}
	b, ok, err := s.TryHostProbeLock(ctx, "b")
	if err != nil || !ok {
		t.Fatalf("TryHostProbeLock(b) beside a = %v, %v; want acquired", ok, err)
	}
	if old, ok, err := s.TryProbeLock(ctx); err != nil || ok {
		if ok {
			old.Release(ctx)
		}
		t.Fatalf("store-wide TryProbeLock (an older binary) while hosts run = %v, %v; want not acquired", ok, err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	old, ok, err := s.TryProbeLock(ctx)
	if err != nil || !ok {
		t.Fatalf("store-wide TryProbeLock once the hosts are done = %v, %v; want acquired", ok, err)
	}
	if l, ok, err := s.TryHostProbeLock(ctx, "c"); !errors.Is(err, store.ErrExclusiveProbeRun) || ok {
		if ok {
			l.Release(ctx)
		}
		t.Fatalf("TryHostProbeLock(c) while an older binary's run holds the store lock = %v, %v; want ErrExclusiveProbeRun", ok, err)
	}
	if err := old.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// The failed try above left c's host lock free.
	c, ok, err := s.TryHostProbeLock(ctx, "c")
	if err != nil || !ok {
		t.Fatalf("TryHostProbeLock(c) after the older run = %v, %v; want acquired", ok, err)
	}
	c.Release(ctx)
}
