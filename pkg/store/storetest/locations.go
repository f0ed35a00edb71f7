package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

// Every location probes every server: runs in two locations each claim
// the whole fleet, while two runs in one location split it.
func testLocationsClaim(t *testing.T, ctx context.Context, s LeaseStore) {
	ids := addMany(t, ctx, s, 30)
	start := func(host, loc string) store.Run {
		run, err := s.StartSharedRun(ctx, host, loc, 0, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if run.Location != loc {
			t.Fatalf("run location = %q, want %q", run.Location, loc)
		}
		return run
	}
	fra1, fra2, nyc := start("fra-1", "fra"), start("fra-2", "fra"), start("nyc-1", "nyc")
	a := claim(t, ctx, s, fra1.ID, 20, time.Minute)
	b := claim(t, ctx, s, fra2.ID, 100, time.Minute)
	if len(a) != 20 || len(b) != 10 || !sameIDs(append(a, b...), ids) {
		t.Errorf("fra's two runs claimed %d and %d servers; want 20 and the other 10 of 30", len(a), len(b))
	}
	if c := claim(t, ctx, s, nyc.ID, 100, time.Minute); !sameIDs(c, ids) {
		t.Errorf("nyc claimed %d servers; want all %d (each location probes every server)", len(c), len(ids))
	}
	if _, err := s.StartSharedRun(ctx, "x", "has space", 0, time.Hour); err == nil {
		t.Error("StartSharedRun accepted a location with a space")
	}
}

// locationRun records a finished run in a location, so that the location
// counts as running.
func locationRun(t *testing.T, ctx context.Context, s LeaseStore, host, loc string) {
	t.Helper()
	run, err := s.StartSharedRun(ctx, host, loc, 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinishRun(ctx, run); err != nil {
		t.Fatal(err)
	}
}

// Status carries each location's last word once two locations run, and
// nothing per location while one does.
func testLocationResults(t *testing.T, ctx context.Context, s LeaseStore) {
	id := addMany(t, ctx, s, 1)[0]
	record := func(loc string, ok bool) {
		t.Helper()
		r := store.ProbeResult{ServerID: id, OK: ok, Location: loc}
		if !ok {
			r.ErrorClass, r.Error = "refused", "connection refused"
		}
		if err := s.RecordProbeResults(ctx, []store.ProbeResult{r}); err != nil {
			t.Fatal(err)
		}
	}
	record("fra", true)
	record("nyc", false)
	locationRun(t, ctx, s, "fra-1", "fra")
	st, _, err := s.ServerStatus(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Locations != nil {
		t.Errorf("one location ran, yet status has per-location results %+v", st.Locations)
	}
	locationRun(t, ctx, s, "nyc-1", "nyc")
	for _, read := range []func() store.ServerStatus{
		func() store.ServerStatus { st, _, _ := s.ServerStatus(ctx, id); return st },
		func() store.ServerStatus { snap, _ := s.Status(ctx); return snap.Servers[0] },
	} {
		st := read()
		if len(st.Locations) != 2 {
			t.Fatalf("Locations = %+v; want fra and nyc", st.Locations)
		}
		fra, nyc := st.Locations[0], st.Locations[1]
		if fra.Location != "fra" || fra.LastOK == nil || !fra.LastOK.Equal(fra.LastProbe) || fra.ErrorClass != "" || fra.LastProbe.Location() != time.UTC {
			t.Errorf("fra = %+v; want a success", fra)
		}
		if nyc.Location != "nyc" || nyc.LastOK != nil || nyc.ErrorClass != "refused" || nyc.Error != "connection refused" || nyc.LastProbe.IsZero() {
			t.Errorf("nyc = %+v; want a refused probe and no success", nyc)
		}
		if st.LastHeartbeat == nil || st.LastErrorClass != "refused" {
			t.Errorf("aggregate heartbeat = %v, last error %q; want fra's success and nyc's later failure", st.LastHeartbeat, st.LastErrorClass)
		}
	}
	// A success keeps its time when a later failure comes from the same
	// location.
	record("fra", false)
	st, _, _ = s.ServerStatus(ctx, id)
	if fra := st.Locations[0]; fra.LastOK == nil || !fra.LastOK.Before(fra.LastProbe) || fra.ErrorClass != "refused" {
		t.Errorf("fra after a failure = %+v; want its last success kept", fra)
	}
}

// A stale ssh server goes OFFLINE only when the quorum of voting
// locations says it failed.
func testEvaluateQuorum(t *testing.T, ctx context.Context, s LeaseStore) {
	sv, err := s.AddServer(ctx, store.ServerSpec{Name: "q", Host: "10.9.0.1", StaleAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	record := func(loc string, ok bool) {
		t.Helper()
		r := store.ProbeResult{ServerID: sv.ID, OK: ok, Location: loc}
		if !ok {
			r.ErrorClass, r.Error = "refused", "connection refused"
		}
		if err := s.RecordProbeResults(ctx, []store.ProbeResult{r}); err != nil {
			t.Fatal(err)
		}
	}
	eval := func(need int, muted ...string) []store.Flip {
		t.Helper()
		res, err := s.Evaluate(ctx, store.EvalParams{Need: need, Muted: muted, MinVoteWindow: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		var out []store.Flip
		for _, f := range res.Flips {
			if f.ServerID == sv.ID {
				out = append(out, f)
			}
		}
		return out
	}
	record("fra", true)
	record("nyc", true)
	if f := eval(2); len(f) != 1 || f[0].To != "ONLINE" {
		t.Fatalf("first evaluation = %+v; want ONLINE", f)
	}
	time.Sleep(1100 * time.Millisecond) // past the 1 s stale-after
	record("fra", false)
	if f := eval(2); len(f) != 0 {
		t.Errorf("fra failed, nyc has not probed since: flips %+v; want none (1 of 2 votes)", f)
	}
	record("nyc", false)
	if f := eval(2, "nyc"); len(f) != 0 {
		t.Errorf("nyc cut off (muted): flips %+v; want none (1 of 2 votes)", f)
	}
	f := eval(2)
	if len(f) != 1 || f[0].To != "OFFLINE" || f[0].From != "ONLINE" {
		t.Fatalf("both locations failed: flips %+v; want ONLINE→OFFLINE", f)
	}
	// With need 1 (the source system's rule) one failure is enough.
	record("fra", true)
	if f := eval(1); len(f) != 1 || f[0].To != "ONLINE" {
		t.Fatalf("after fra's success: %+v; want ONLINE", f)
	}
	time.Sleep(1100 * time.Millisecond)
	record("fra", false)
	if f := eval(1); len(f) != 1 || f[0].To != "OFFLINE" {
		t.Errorf("need 1, fra failed: flips %+v; want OFFLINE", f)
	}
}
