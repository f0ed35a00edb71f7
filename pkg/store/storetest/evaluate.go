package storetest

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

func mustEvaluate(t *testing.T, ctx context.Context, s store.Store, p store.EvalParams) store.EvalResult {
	t.Helper()
	res, err := s.Evaluate(ctx, p)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	return res
}

// oneFlip asserts that a round recorded exactly one flip, for server id,
// from→to, and returns it.
func oneFlip(t *testing.T, res store.EvalResult, id int64, from, to string, notify bool) store.Flip {
	t.Helper()
	if len(res.Flips) != 1 {
		t.Fatalf("flips = %+v, want one %s→%s", res.Flips, from, to)
	}
	f := res.Flips[0]
	if f.ServerID != id || f.From != from || f.To != to || f.Notify != notify || f.ID == 0 || f.At.Location() != time.UTC {
		t.Fatalf("flip = %+v, want server %d %q→%q notify=%v", f, id, from, to, notify)
	}
	return f
}

func probeOK(t *testing.T, ctx context.Context, s store.Store, id int64, at time.Time) {
	t.Helper()
	if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: id, OK: true, At: at}}); err != nil {
		t.Fatalf("RecordProbeResults: %v", err)
	}
}

func testEvaluateFlips(t *testing.T, ctx context.Context, s store.Store) {
	fresh := mustAdd(t, ctx, s, "fresh")
	now := mustNow(t, ctx, s)

	// First evaluation: every server gets a state, kept for history only.
	res := mustEvaluate(t, ctx, s, store.EvalParams{})
	f := oneFlip(t, res, fresh.ID, "", store.StateOffline, false)
	if f.Reason != "no heartbeat yet" || f.ServerName != "fresh" || !near(f.At, now) {
		t.Errorf("first flip = %+v", f)
	}
	if res = mustEvaluate(t, ctx, s, store.EvalParams{}); len(res.Flips) != 0 {
		t.Fatalf("an unchanged fleet recorded %+v", res.Flips)
	}
	// A new server's first heartbeat is not news; it is stamped at the
	// heartbeat.
	probeOK(t, ctx, s, fresh.ID, time.Time{})
	hb := serverStatus(t, ctx, s, fresh.ID).LastHeartbeat
	f = oneFlip(t, mustEvaluate(t, ctx, s, store.EvalParams{}), fresh.ID, store.StateOffline, store.StateOnline, false)
	if hb == nil || !f.At.Equal(*hb) || f.Reason != "first heartbeat" {
		t.Errorf("first-heartbeat flip = %+v, want at %v", f, hb)
	}

	// Server a has a 5-minute window and answered 4 minutes ago.
	a, err := s.AddServer(ctx, store.ServerSpec{Name: "a", Host: "a.example.net", StaleAfter: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	hb4 := now.Add(-4 * time.Minute).Truncate(time.Millisecond)
	probeOK(t, ctx, s, a.ID, hb4)
	if f = oneFlip(t, mustEvaluate(t, ctx, s, store.EvalParams{}), a.ID, "", store.StateOnline, false); !f.At.Equal(hb4) {
		t.Errorf("first state ONLINE at %v, want its heartbeat %v", f.At, hb4)
	}
	st := serverStatus(t, ctx, s, a.ID)
	if st.State != store.StateOnline || st.StateSince == nil || !st.StateSince.Equal(hb4) {
		t.Errorf("state = %q since %v, want ONLINE since %v", st.State, st.StateSince, hb4)
	}

	// Its window shrinks to 60 s: going stale is stamped when the heartbeat
	// went stale (3 minutes ago), not when the evaluator noticed, and says
	// why, with the last probe's error.
	if _, err := s.UpdateServer(ctx, a.ID, store.ServerSpec{Name: "a", Host: "a.example.net", StaleAfter: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: a.ID, ErrorClass: "timeout", Error: "connected but no SSH banner within 10s"}}); err != nil {
		t.Fatal(err)
	}
	f = oneFlip(t, mustEvaluate(t, ctx, s, store.EvalParams{}), a.ID, store.StateOnline, store.StateOffline, true)
	if want := hb4.Add(time.Minute); !f.At.Equal(want) {
		t.Errorf("down-flip at %v, want last heartbeat + 60s = %v", f.At, want)
	}
	if f.Reason != "no heartbeat for 60s; last probe: timeout: connected but no SSH banner within 10s" {
		t.Errorf("down-flip reason = %q", f.Reason)
	}

	// Coming back is news now, stamped at the heartbeat that ended it.
	back := mustPush(t, ctx, s, a.ID, "v1", time.Time{})
	f = oneFlip(t, mustEvaluate(t, ctx, s, store.EvalParams{}), a.ID, store.StateOffline, store.StateOnline, true)
	if !f.At.Equal(back) || f.Reason != "heartbeat received" {
		t.Errorf("up-flip = %+v, want at %v", f, back)
	}

	// Alerts make it WARNING and back.
	al, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: a.ID, Kind: store.KindAlert, Severity: store.SeverityWarning, Message: "disk"})
	if err != nil {
		t.Fatal(err)
	}
	if f = oneFlip(t, mustEvaluate(t, ctx, s, store.EvalParams{}), a.ID, store.StateOnline, store.StateWarning, true); f.Reason != "1 active alert" {
		t.Errorf("warning reason = %q", f.Reason)
	}
	if _, err := s.ResolveAlert(ctx, al.ID); err != nil {
		t.Fatal(err)
	}
	oneFlip(t, mustEvaluate(t, ctx, s, store.EvalParams{}), a.ID, store.StateWarning, store.StateOnline, true)

	// Disabling and enabling are the admin's own doing: history only.
	if err := s.SetServerEnabled(ctx, a.ID, false); err != nil {
		t.Fatal(err)
	}
	oneFlip(t, mustEvaluate(t, ctx, s, store.EvalParams{}), a.ID, store.StateOnline, store.StateDisabled, false)
	if err := s.SetServerEnabled(ctx, a.ID, true); err != nil {
		t.Fatal(err)
	}
	oneFlip(t, mustEvaluate(t, ctx, s, store.EvalParams{}), a.ID, store.StateDisabled, store.StateOnline, false)

	flips, err := s.Flips(ctx, store.FlipQuery{ServerID: a.ID, Since: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var path []string
	for i, f := range flips {
		path = append(path, f.To)
		if i > 0 && f.At.Before(flips[i-1].At) {
			t.Errorf("flips out of order: %+v", flips)
		}
	}
	if got, want := strings.Join(path, " "), "ONLINE OFFLINE ONLINE WARNING ONLINE DISABLED ONLINE"; got != want {
		t.Errorf("history = %s, want %s", got, want)
	}
	if all, err := s.Flips(ctx, store.FlipQuery{Since: now.Add(-time.Hour)}); err != nil || len(all) != len(flips)+2 {
		t.Errorf("Flips of every server = %d, %v; want %d", len(all), err, len(flips)+2)
	}
	if newer, err := s.Flips(ctx, store.FlipQuery{ServerID: a.ID, Since: now.Add(-time.Hour), AfterID: flips[4].ID}); err != nil || len(newer) != 2 || newer[0].ID != flips[5].ID {
		t.Errorf("Flips after id %d = %+v, %v; want the last two", flips[4].ID, newer, err)
	}
	if later, err := s.Flips(ctx, store.FlipQuery{ServerID: a.ID, Since: now.Add(time.Hour)}); err != nil || len(later) != 0 {
		t.Errorf("Flips since the future = %+v, %v", later, err)
	}
	// A set of servers (the rows the status page shows), and the newest
	// few (its recent changes), still oldest first.
	all, _ := s.Flips(ctx, store.FlipQuery{Since: now.Add(-time.Hour)})
	var others []int64
	for _, f := range all {
		if f.ServerID != a.ID && f.ServerID != 0 && !slices.Contains(others, f.ServerID) {
			others = append(others, f.ServerID)
		}
	}
	if only, err := s.Flips(ctx, store.FlipQuery{Since: now.Add(-time.Hour), ServerIDs: []int64{a.ID}}); err != nil || !sameFlips(only, flips) {
		t.Errorf("Flips of [a] = %+v, %v; want a's %d", only, err, len(flips))
	}
	if rest, err := s.Flips(ctx, store.FlipQuery{Since: now.Add(-time.Hour), ServerIDs: others}); err != nil || len(rest) != 2 || slices.ContainsFunc(rest, func(f store.Flip) bool { return f.ServerID == a.ID }) {
		t.Errorf("Flips of the others %v = %+v, %v; want their 2", others, rest, err)
	}
	if last, err := s.Flips(ctx, store.FlipQuery{Since: now.Add(-time.Hour), ServerID: a.ID, Newest: 3}); err != nil || !sameFlips(last, flips[len(flips)-3:]) {
		t.Errorf("newest 3 = %+v, %v; want %+v", last, err, flips[len(flips)-3:])
	}
	checkFlipStates(t, ctx, s, now.Add(-time.Hour))
	if later, err := s.FlipStates(ctx, now.Add(time.Hour)); err != nil || len(later) != 0 {
		t.Errorf("FlipStates since the future = %+v, %v", later, err)
	}
}

// checkFlipStates: FlipStates is Flips without fleet events, ordered by
// server then time, with only what uptime reads; FlipsOf finds each
// server's.
func checkFlipStates(t *testing.T, ctx context.Context, s store.Store, since time.Time) {
	t.Helper()
	all, err := s.Flips(ctx, store.FlipQuery{Since: since})
	if err != nil {
		t.Fatal(err)
	}
	var want []store.Flip
	for _, f := range all {
		if f.ServerID != 0 {
			want = append(want, store.Flip{ServerID: f.ServerID, At: f.At, From: f.From, To: f.To})
		}
	}
	slices.SortStableFunc(want, func(a, b store.Flip) int { return cmp.Compare(a.ServerID, b.ServerID) })
	got, err := s.FlipStates(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, want, func(a, b store.Flip) bool { return a == b }) {
		t.Errorf("FlipStates = %+v\nwant %+v", got, want)
	}
	if len(want) == 0 {
		t.Errorf("no server flips since %v to check FlipStates with", since)
	}
	for _, f := range want {
		of := store.FlipsOf(got, f.ServerID)
		if len(of) == 0 || slices.ContainsFunc(of, func(g store.Flip) bool { return g.ServerID != f.ServerID }) {
			t.Errorf("FlipsOf(%d) = %+v", f.ServerID, of)
		}
	}
	if of := store.FlipsOf(got, -1); of != nil {
		t.Errorf("FlipsOf(no such server) = %+v", of)
	}
}

func sameFlips(a, b []store.Flip) bool {
	return slices.EqualFunc(a, b, func(x, y store.Flip) bool { return x.ID == y.ID })
}

func serverStatus(t *testing.T, ctx context.Context, s store.Store, id int64) store.ServerStatus {
	t.Helper()
	st, _, err := s.ServerStatus(ctx, id)
	if err != nil {
		t.Fatalf("ServerStatus(%d): %v", id, err)
	}
	return st
}

func testStaleAfterPerServer(t *testing.T, ctx context.Context, s store.Store) {
	slow, err := s.AddServer(ctx, store.ServerSpec{Name: "slow-agent", Host: "10.0.0.9", Mode: store.ModePush, StaleAfter: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	fast := mustAdd(t, ctx, s, "fast")
	if slow.StaleAfter != 5*time.Minute || fast.StaleAfter != store.DefaultStaleAfter {
		t.Fatalf("stale-after = %v and %v, want 5m and the 60s default", slow.StaleAfter, fast.StaleAfter)
	}
	now := mustNow(t, ctx, s)
	twoMinAgo := now.Add(-2 * time.Minute)
	mustPush(t, ctx, s, slow.ID, "v1", twoMinAgo)
	probeOK(t, ctx, s, fast.ID, twoMinAgo)
	got := map[int64]string{}
	for _, f := range mustEvaluate(t, ctx, s, store.EvalParams{}).Flips {
		got[f.ServerID] = f.To
	}
	if got[slow.ID] != store.StateOnline || got[fast.ID] != store.StateOffline {
		t.Errorf("states after a 2-minute-old heartbeat = %v, want slow ONLINE (5m window), fast OFFLINE", got)
	}
	if st := serverStatus(t, ctx, s, slow.ID); st.StaleAfter != 5*time.Minute {
		t.Errorf("ServerStatus stale-after = %v", st.StaleAfter)
	}

	// UpdateServer changes it; zero keeps it.
	spec := store.ServerSpec{Name: "fast", Host: "fast.example.net", StaleAfter: 90 * time.Second}
	if sv, err := s.UpdateServer(ctx, fast.ID, spec); err != nil || sv.StaleAfter != 90*time.Second {
		t.Fatalf("UpdateServer stale-after 90s = %+v, %v", sv, err)
	}
	spec.StaleAfter = 0
	if sv, err := s.UpdateServer(ctx, fast.ID, spec); err != nil || sv.StaleAfter != 90*time.Second {
		t.Fatalf("UpdateServer with zero stale-after = %+v, %v; want it kept", sv, err)
	}
	for _, bad := range []time.Duration{time.Millisecond, 999 * time.Millisecond, 31 * 24 * time.Hour, -time.Second} {
		spec.StaleAfter = bad
		if _, err := s.UpdateServer(ctx, fast.ID, spec); err == nil {
			t.Errorf("stale-after %v accepted", bad)
		}
	}
}

// testEvaluateConcurrent runs evaluators at once: each change is recorded
// exactly once, whoever wins.
func testEvaluateConcurrent(t *testing.T, ctx context.Context, s store.Store) {
	const n = 30
	var ids []int64
	now := mustNow(t, ctx, s)
	for i := range n {
		sv := mustAdd(t, ctx, s, "srv"+string(rune('a'+i%26))+strings.Repeat("x", i/26))
		ids = append(ids, sv.ID)
		probeOK(t, ctx, s, sv.ID, now)
	}
	mustEvaluate(t, ctx, s, store.EvalParams{})
	for _, id := range ids {
		probeOK(t, ctx, s, id, now.Add(-10*time.Minute))
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.Evaluate(ctx, store.EvalParams{})
			if err != nil {
				t.Errorf("Evaluate: %v", err)
				return
			}
			mu.Lock()
			total += len(res.Flips)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != n {
		t.Errorf("evaluators reported %d flips in all, want %d (each change once)", total, n)
	}
	flips, err := s.Flips(ctx, store.FlipQuery{Since: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	down := 0
	for _, f := range flips {
		if f.To == store.StateOffline && f.From == store.StateOnline {
			down++
		}
	}
	if down != n {
		t.Errorf("recorded %d down-flips, want %d", down, n)
	}
}

// testEvaluateHostCutOff: a round judged while the monitoring host was cut
// off takes no ssh server down; it records one fleet event instead.
func testEvaluateHostCutOff(t *testing.T, ctx context.Context, s store.Store) {
	ssh := mustAdd(t, ctx, s, "ssh1")
	agent, err := s.AddServer(ctx, store.ServerSpec{Name: "agent1", Host: "10.0.0.1", Mode: store.ModePush})
	if err != nil {
		t.Fatal(err)
	}
	now := mustNow(t, ctx, s)
	last := now.Add(-50 * time.Second).Truncate(time.Millisecond)
	probeOK(t, ctx, s, ssh.ID, last)
	mustPush(t, ctx, s, agent.ID, "v1", last)
	mustEvaluate(t, ctx, s, store.EvalParams{}) // both ONLINE since their heartbeat
	// Both windows shrink to 10 s, so both are stale since last+10s.
	for _, sv := range []store.Server{ssh, agent} {
		if _, err := s.UpdateServer(ctx, sv.ID, store.ServerSpec{Name: sv.Name, Host: sv.Host, StaleAfter: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}

	cut := store.EvalParams{HostCutOff: true, CutOffReason: "the last run could not connect to 1 of 1 servers"}
	res := mustEvaluate(t, ctx, s, cut)
	var events, agentDown int
	for _, f := range res.Flips {
		switch {
		case f.ServerID == ssh.ID:
			t.Errorf("ssh server flipped during a cut-off: %+v", f)
		case f.ServerID == agent.ID && f.To == store.StateOffline:
			agentDown++ // a push agent's silence is not the prober's
		case f.ServerID == 0 && f.To == store.StateCutOff && f.Notify && f.Reason == cut.CutOffReason:
			events++
		}
	}
	if events != 1 || agentDown != 1 || res.Suppressed != 1 {
		t.Fatalf("cut-off round = %+v; want one cut-off event, the agent down, 1 suppressed", res)
	}
	if res = mustEvaluate(t, ctx, s, cut); len(res.Flips) != 0 {
		t.Errorf("a second cut-off round recorded %+v; the event is recorded once", res.Flips)
	}

	// Reconnected: the ssh server's real silence now counts, stamped when
	// it went stale, and the fleet hears the host is back.
	res = mustEvaluate(t, ctx, s, store.EvalParams{})
	var sshDown, back int
	for _, f := range res.Flips {
		if f.ServerID == ssh.ID && f.To == store.StateOffline && f.At.Equal(last.Add(10*time.Second)) {
			sshDown++
		}
		if f.ServerID == 0 && f.From == store.StateCutOff && f.To == store.StateReconnected {
			back++
		}
	}
	if sshDown != 1 || back != 1 {
		t.Errorf("round after the cut-off = %+v; want the ssh server down at its stale time and one reconnection", res.Flips)
	}
	if res = mustEvaluate(t, ctx, s, store.EvalParams{}); len(res.Flips) != 0 {
		t.Errorf("a quiet round recorded %+v", res.Flips)
	}
	checkFlipStates(t, ctx, s, now.Add(-time.Hour)) // the fleet events stay out
}

// testPruneFlips: flips older than the cutoff go, newer ones stay, and
// the server's current state is untouched.
func testPruneFlips(t *testing.T, ctx context.Context, s store.Store) {
	a := mustAdd(t, ctx, s, "a")
	now := mustNow(t, ctx, s)
	probeOK(t, ctx, s, a.ID, now.Add(-500*24*time.Hour))
	mustEvaluate(t, ctx, s, store.EvalParams{}) // OFFLINE, stamped 500 days ago
	probeOK(t, ctx, s, a.ID, now)
	mustEvaluate(t, ctx, s, store.EvalParams{}) // ONLINE now
	pruned, err := s.PruneHistory(ctx, store.PruneParams{FlipsBefore: now.Add(-400 * 24 * time.Hour)})
	if err != nil || pruned.Flips != 1 {
		t.Fatalf("PruneHistory = %+v, %v; want 1 flip", pruned, err)
	}
	flips, err := s.Flips(ctx, store.FlipQuery{Since: now.Add(-1000 * 24 * time.Hour)})
	if err != nil || len(flips) != 1 || flips[0].To != store.StateOnline {
		t.Errorf("flips left = %+v, %v; want the recent one", flips, err)
	}
	if st := serverStatus(t, ctx, s, a.ID); st.State != store.StateOnline {
		t.Errorf("state after prune = %q", st.State)
	}
}
