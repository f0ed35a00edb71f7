package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

func testProbeResults(t *testing.T, ctx context.Context, s store.Store) {
	up := mustAdd(t, ctx, s, "up")
	down := mustAdd(t, ctx, s, "down")
	before := mustNow(t, ctx, s)
	err := s.RecordProbeResults(ctx, []store.ProbeResult{
		{ServerID: up.ID, OK: true, Latency: 1500 * time.Microsecond},
		{ServerID: down.ID, ErrorClass: "refused", Error: "connection refused", Latency: time.Second},
		{ServerID: 999999, OK: true}, // removed mid-run: dropped, not an error
	})
	if err != nil {
		t.Fatalf("RecordProbeResults: %v", err)
	}
	snap := mustStatus(t, ctx, s)
	got := byName(snap)
	u := got["up"]
	if u.LastHeartbeat == nil || !near(*u.LastHeartbeat, before) || u.Source != store.SourceSSH ||
		u.Latency != 1500*time.Microsecond || u.ConsecutiveFailures != 0 || u.LastProbe == nil || u.LastErrorClass != "" {
		t.Errorf("up after success = %+v", u.Heartbeat)
	}
	d := got["down"]
	// Latency is that of the last successful handshake; a failure has none.
	if d.LastHeartbeat != nil || d.LastProbe == nil || d.LastErrorClass != "refused" || d.LastError != "connection refused" ||
		d.ConsecutiveFailures != 1 || d.Latency != 0 {
		t.Errorf("down after failure = %+v", d.Heartbeat)
	}

	// A failure keeps the last heartbeat and latency, counts failures; a
	// success clears the error and the count.
	for i := 0; i < 2; i++ {
		if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: up.ID, ErrorClass: "timeout", Error: "no answer"}}); err != nil {
			t.Fatal(err)
		}
	}
	snap = mustStatus(t, ctx, s)
	u2 := byName(snap)["up"]
	if u2.LastHeartbeat == nil || !u2.LastHeartbeat.Equal(*u.LastHeartbeat) || u2.ConsecutiveFailures != 2 ||
		u2.LastErrorClass != "timeout" || u2.Latency != u.Latency || u2.Source != store.SourceSSH {
		t.Errorf("up after two failures = %+v", u2.Heartbeat)
	}
	if err := s.RecordProbeResults(ctx, []store.ProbeResult{
		{ServerID: down.ID, ErrorClass: "timeout"},
		{ServerID: down.ID, OK: true, Latency: time.Millisecond}, // the later result wins
	}); err != nil {
		t.Fatal(err)
	}
	snap = mustStatus(t, ctx, s)
	d2 := byName(snap)["down"]
	if d2.LastHeartbeat == nil || d2.ConsecutiveFailures != 0 || d2.LastErrorClass != "" || d2.LastError != "" {
		t.Errorf("down after recovering = %+v", d2.Heartbeat)
	}

	// An API push after an SSH probe keeps the probe's record.
	mustPush(t, ctx, s, down.ID, "1.2", time.Time{})
	snap = mustStatus(t, ctx, s)
	if d3 := byName(snap)["down"]; d3.Source != store.SourceAPI || d3.LastProbe == nil || d3.Latency != time.Millisecond {
		t.Errorf("down after push = %+v", d3.Heartbeat)
	}
}

func byName(snap store.Snapshot) map[string]store.ServerStatus {
	m := make(map[string]store.ServerStatus, len(snap.Servers))
	for _, s := range snap.Servers {
		m[s.Name] = s
	}
	return m
}

func testHostKeyPinning(t *testing.T, ctx context.Context, s store.Store) {
	sv := mustAdd(t, ctx, s, "web1")
	first, second := []byte("key-one"), []byte("key-two")
	if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, OK: true, PinHostKey: first}}); err != nil {
		t.Fatal(err)
	}
	// A second pin never overwrites the first: first writer wins.
	if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, OK: true, PinHostKey: second}}); err != nil {
		t.Fatal(err)
	}
	got := mustServer(t, ctx, s, sv.ID)
	if string(got.HostKey) != "key-one" || got.SeenHostKey != nil {
		t.Fatalf("after pinning: host key %q, seen %q", got.HostKey, got.SeenHostKey)
	}
	if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, ErrorClass: "hostkey-mismatch", Error: "changed", SeenHostKey: second}}); err != nil {
		t.Fatal(err)
	}
	got = mustServer(t, ctx, s, sv.ID)
	if string(got.HostKey) != "key-one" || string(got.SeenHostKey) != "key-two" {
		t.Fatalf("after mismatch: host key %q, seen %q", got.HostKey, got.SeenHostKey)
	}
	if err := s.TrustHostKey(ctx, sv.ID, nil); err != nil {
		t.Fatal(err)
	}
	got = mustServer(t, ctx, s, sv.ID)
	if got.HostKey != nil || got.SeenHostKey != nil {
		t.Fatalf("after clearing the pin: host key %q, seen %q", got.HostKey, got.SeenHostKey)
	}
	if err := s.TrustHostKey(ctx, sv.ID, second); err != nil {
		t.Fatal(err)
	}
	got = mustServer(t, ctx, s, sv.ID)
	if string(got.HostKey) != "key-two" {
		t.Fatalf("after trusting a key: host key %q", got.HostKey)
	}
	if err := s.TrustHostKey(ctx, 4242, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TrustHostKey(unknown) error = %v, want ErrNotFound", err)
	}
}

// testAcceptedKeyClearsSeen: a probe whose key passed the check clears the
// last-seen key (issue 9 item 9), but not while another key is pinned, and
// a failure that never reached the host-key check leaves it alone.
func testAcceptedKeyClearsSeen(t *testing.T, ctx context.Context, s store.Store) {
	sv := mustAdd(t, ctx, s, "web1")
	other := mustAdd(t, ctx, s, "web2")
	pin, stray := []byte("key-one"), []byte("key-two")
	record := func(rs ...store.ProbeResult) {
		t.Helper()
		if err := s.RecordProbeResults(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	seen := func(id int64) string {
		t.Helper()
		return string(mustServer(t, ctx, s, id).SeenHostKey)
	}
	record(store.ProbeResult{ServerID: sv.ID, OK: true, PinHostKey: pin, AcceptedHostKey: pin},
		store.ProbeResult{ServerID: other.ID, OK: true, PinHostKey: pin, AcceptedHostKey: pin})
	record(store.ProbeResult{ServerID: sv.ID, ErrorClass: "hostkey-mismatch", SeenHostKey: stray},
		store.ProbeResult{ServerID: other.ID, ErrorClass: "hostkey-mismatch", SeenHostKey: stray})
	// A timeout before the key exchange says nothing about the key.
	record(store.ProbeResult{ServerID: sv.ID, ErrorClass: "timeout"})
	if got := seen(sv.ID); got != "key-two" {
		t.Fatalf("after a timeout: seen %q, want key-two", got)
	}
	// A key that is not the pin (a run that started before `servers
	// trust` changed it) clears nothing.
	record(store.ProbeResult{ServerID: sv.ID, ErrorClass: "auth", AcceptedHostKey: []byte("key-three")})
	if got := seen(sv.ID); got != "key-two" {
		t.Fatalf("after another accepted key: seen %q, want key-two", got)
	}
	// The pinned key again (even with a login failure after the check)
	// clears the warning; the other server keeps its own.
	record(store.ProbeResult{ServerID: sv.ID, ErrorClass: "auth", AcceptedHostKey: pin})
	got := mustServer(t, ctx, s, sv.ID)
	if got.SeenHostKey != nil || string(got.HostKey) != "key-one" {
		t.Fatalf("after the pinned key again: host key %q, seen %q", got.HostKey, got.SeenHostKey)
	}
	if got := seen(other.ID); got != "key-two" {
		t.Fatalf("other server: seen %q, want key-two", got)
	}
	// Without a pin (the known-hosts policy), any accepted key clears it.
	if err := s.TrustHostKey(ctx, other.ID, nil); err != nil {
		t.Fatal(err)
	}
	record(store.ProbeResult{ServerID: other.ID, ErrorClass: "hostkey-unknown", SeenHostKey: stray})
	record(store.ProbeResult{ServerID: other.ID, OK: true, AcceptedHostKey: stray})
	if got := mustServer(t, ctx, s, other.ID); got.SeenHostKey != nil || got.HostKey != nil {
		t.Fatalf("unpinned server accepted: host key %q, seen %q", got.HostKey, got.SeenHostKey)
	}
}

// testHostCAPin: `servers trust --ca` pins a certificate authority. A
// probe's first-use pin never replaces it, a certificate the CA accepted
// clears the last-seen key although it is not the pinned key itself, the
// status snapshot carries the flag, and TrustHostKey (a key or nil) ends
// the CA pin.
func testHostCAPin(t *testing.T, ctx context.Context, s store.Store) {
	sv := mustAdd(t, ctx, s, "web1")
	ca, cert, stray := []byte("ca-key"), []byte("host-cert"), []byte("stray-key")
	record := func(rs ...store.ProbeResult) {
		t.Helper()
		if err := s.RecordProbeResults(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustServer(t, ctx, s, sv.ID); got.HostKeyIsCA {
		t.Fatalf("new server: HostKeyIsCA = true")
	}
	// A CA replaces a plain pin and forgets the last-seen key.
	record(store.ProbeResult{ServerID: sv.ID, OK: true, PinHostKey: []byte("key-one")})
	record(store.ProbeResult{ServerID: sv.ID, ErrorClass: "hostkey-mismatch", SeenHostKey: stray})
	if err := s.TrustHostCA(ctx, sv.ID, ca); err != nil {
		t.Fatalf("TrustHostCA: %v", err)
	}
	got := mustServer(t, ctx, s, sv.ID)
	if string(got.HostKey) != "ca-key" || !got.HostKeyIsCA || got.SeenHostKey != nil {
		t.Fatalf("after TrustHostCA: host key %q, CA %v, seen %q", got.HostKey, got.HostKeyIsCA, got.SeenHostKey)
	}
	// A first-use pin (a run that started before the CA was pinned) is
	// ignored; a refused certificate is kept as last seen.
	record(store.ProbeResult{ServerID: sv.ID, OK: true, PinHostKey: cert, AcceptedHostKey: cert})
	record(store.ProbeResult{ServerID: sv.ID, ErrorClass: "hostkey-mismatch", SeenHostKey: stray})
	got = mustServer(t, ctx, s, sv.ID)
	if string(got.HostKey) != "ca-key" || !got.HostKeyIsCA || string(got.SeenHostKey) != "stray-key" {
		t.Fatalf("after a probe: host key %q, CA %v, seen %q", got.HostKey, got.HostKeyIsCA, got.SeenHostKey)
	}
	// A certificate the CA accepted clears the warning.
	record(store.ProbeResult{ServerID: sv.ID, OK: true, AcceptedHostKey: cert})
	got = mustServer(t, ctx, s, sv.ID)
	if got.SeenHostKey != nil || string(got.HostKey) != "ca-key" || !got.HostKeyIsCA {
		t.Fatalf("after an accepted certificate: host key %q, CA %v, seen %q", got.HostKey, got.HostKeyIsCA, got.SeenHostKey)
	}
	// Clearing the pin clears the CA flag; so does trusting a plain key.
	if err := s.TrustHostKey(ctx, sv.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got = mustServer(t, ctx, s, sv.ID); got.HostKey != nil || got.HostKeyIsCA {
		t.Fatalf("after clearing: host key %q, CA %v", got.HostKey, got.HostKeyIsCA)
	}
	if err := s.TrustHostCA(ctx, sv.ID, ca); err != nil {
		t.Fatal(err)
	}
	if err := s.TrustHostKey(ctx, sv.ID, []byte("key-two")); err != nil {
		t.Fatal(err)
	}
	if got = mustServer(t, ctx, s, sv.ID); string(got.HostKey) != "key-two" || got.HostKeyIsCA {
		t.Fatalf("after trusting a plain key: host key %q, CA %v", got.HostKey, got.HostKeyIsCA)
	}
	if err := s.TrustHostCA(ctx, 4242, ca); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TrustHostCA(unknown) error = %v, want ErrNotFound", err)
	}
	if err := s.TrustHostCA(ctx, sv.ID, nil); err == nil {
		t.Errorf("TrustHostCA(nil) succeeded, want an error")
	}
}

func testProbeLock(t *testing.T, ctx context.Context, s store.Store) {
	lock, ok, err := s.TryProbeLock(ctx)
	if err != nil || !ok {
		t.Fatalf("first TryProbeLock = %v, %v; want acquired", ok, err)
	}
	if _, ok2, err := s.TryProbeLock(ctx); err != nil || ok2 {
		t.Fatalf("second TryProbeLock while held = %v, %v; want not acquired", ok2, err)
	}
	if err := lock.Err(); err != nil {
		t.Errorf("held lock reports %v", err)
	}
	select {
	case <-lock.Lost():
		t.Errorf("held lock reports itself lost")
	default:
	}
	if err := lock.Release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	lock, ok, err = s.TryProbeLock(ctx)
	if err != nil || !ok {
		t.Fatalf("TryProbeLock after release = %v, %v; want acquired", ok, err)
	}
	lock.Release(ctx)
}

// testAbortedRuns: a run left open by a killed process is closed as
// aborted by the next StartRun, and stays out of LastFinishedRun.
func testAbortedRuns(t *testing.T, ctx context.Context, s store.Store) {
	if r, err := s.LastAbortedRun(ctx); err != nil || r != nil {
		t.Fatalf("LastAbortedRun on a new store = %+v, %v; want nil", r, err)
	}
	killed, err := s.StartRun(ctx, "probe-a", 3)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.LastAbortedRun(ctx); err != nil || r != nil {
		t.Fatalf("LastAbortedRun with a run still open = %+v, %v; want nil", r, err)
	}
	next, err := s.StartRun(ctx, "probe-b", 3)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.LastAbortedRun(ctx)
	if err != nil || got == nil {
		t.Fatalf("LastAbortedRun = %v, %v; want run %d", got, err, killed.ID)
	}
	if got.ID != killed.ID || got.Host != "probe-a" || got.Servers != 3 || !got.StartedAt.Equal(killed.StartedAt) ||
		got.AbortedAt == nil || got.AbortedAt.Location() != time.UTC || got.AbortedAt.Before(got.StartedAt) || got.FinishedAt != nil {
		t.Errorf("LastAbortedRun = %+v, want run %d aborted", got, killed.ID)
	}
	if _, err := s.FinishRun(ctx, next); err != nil {
		t.Fatal(err)
	}
	// A finished run is never aborted by the next one.
	if _, err := s.StartRun(ctx, "probe-c", 3); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LastAbortedRun(ctx); got == nil || got.ID != killed.ID {
		t.Errorf("after a finished run, LastAbortedRun = %+v, want run %d", got, killed.ID)
	}
	if last, _ := s.LastFinishedRun(ctx); last == nil || last.ID != next.ID {
		t.Errorf("LastFinishedRun = %+v, want run %d", last, next.ID)
	}
}

// testPruneHistory prunes with cutoffs around the store's clock instead of
// waiting for rows to age.
func testPruneHistory(t *testing.T, ctx context.Context, s store.Store) {
	sv := mustAdd(t, ctx, s, "web1")
	var finished []int64
	for i := 0; i < 5; i++ {
		run, err := s.StartRun(ctx, "probe-a", 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.FinishRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		finished = append(finished, run.ID)
	}
	open, err := s.StartRun(ctx, "probe-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	resolved, _ := s.RaiseAlert(ctx, store.AlertSpec{ServerID: sv.ID, Kind: store.KindAlert, Severity: store.SeverityInfo, Message: "old"})
	if _, err := s.ResolveAlert(ctx, resolved.ID); err != nil {
		t.Fatal(err)
	}
	active, _ := s.RaiseAlert(ctx, store.AlertSpec{ServerID: sv.ID, Kind: store.KindAlert, Severity: store.SeverityInfo, Message: "active"})
	now := mustNow(t, ctx, s)

	// Cutoffs in the past prune nothing.
	p, err := s.PruneHistory(ctx, store.PruneParams{RunsBefore: now.Add(-time.Hour), AlertsResolvedBefore: now.Add(-time.Hour)})
	if err != nil || p != (store.Pruned{}) {
		t.Fatalf("PruneHistory with past cutoffs = %+v, %v; want nothing", p, err)
	}
	// Batches of 2, at most 2 batches: 4 of the 5 finished runs go now,
	// the open run never (it is this run's own record).
	later := now.Add(time.Hour)
	p, err = s.PruneHistory(ctx, store.PruneParams{RunsBefore: later, AlertsResolvedBefore: later, BatchSize: 2, MaxBatches: 2})
	if err != nil || p != (store.Pruned{Runs: 4, Alerts: 1}) {
		t.Fatalf("PruneHistory = %+v, %v; want 4 runs, 1 alert", p, err)
	}
	p, err = s.PruneHistory(ctx, store.PruneParams{RunsBefore: later, AlertsResolvedBefore: later, BatchSize: 2, MaxBatches: 2})
	if err != nil || p != (store.Pruned{Runs: 1}) {
		t.Fatalf("second PruneHistory = %+v, %v; want the last run", p, err)
	}
	all, _ := s.Alerts(ctx, true)
	if len(all) != 1 || all[0].ID != active.ID {
		t.Errorf("alerts after pruning = %+v, want only the active one", all)
	}
	if _, err := s.FinishRun(ctx, open); err != nil {
		t.Errorf("the open run was pruned: FinishRun = %v", err)
	}
	if _, err := s.FinishRun(ctx, store.Run{ID: finished[0]}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("pruned run %d still there: FinishRun = %v", finished[0], err)
	}
}

func testRuns(t *testing.T, ctx context.Context, s store.Store) {
	if r, err := s.LastFinishedRun(ctx); err != nil || r != nil {
		t.Fatalf("LastFinishedRun on a new store = %+v, %v; want nil", r, err)
	}
	before := mustNow(t, ctx, s)
	run, err := s.StartRun(ctx, "probe-a", 10)
	if err != nil {
		t.Fatal(err)
	}
	if run.ID == 0 || !near(run.StartedAt, before) || run.Servers != 10 {
		t.Errorf("StartRun = %+v", run)
	}
	// An unfinished run is not the last finished one.
	if r, err := s.LastFinishedRun(ctx); err != nil || r != nil {
		t.Errorf("unfinished run reported as finished: %+v", r)
	}
	run.Probed, run.Succeeded, run.DeadlineHit = 10, 7, true
	run.FailedByClass = map[string]int{"timeout": 2, "auth": 1}
	done, err := s.FinishRun(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.LastFinishedRun(ctx)
	if err != nil || last == nil {
		t.Fatalf("LastFinishedRun = %v, %v", last, err)
	}
	if last.ID != run.ID || last.Host != "probe-a" || last.Servers != 10 || last.Probed != 10 || last.Succeeded != 7 ||
		!last.DeadlineHit || last.FailedByClass["timeout"] != 2 || last.FailedByClass["auth"] != 1 ||
		last.FinishedAt == nil || !last.FinishedAt.Equal(*done.FinishedAt) || last.FinishedAt.Before(last.StartedAt) {
		t.Errorf("LastFinishedRun = %+v", last)
	}
	if _, err := s.FinishRun(ctx, store.Run{ID: 987654}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FinishRun(unknown) error = %v, want ErrNotFound", err)
	}
}

func testLargeBatch(t *testing.T, ctx context.Context, s store.Store) {
	specs := make([]store.ServerSpec, 2000)
	for i := range specs {
		specs[i] = store.ServerSpec{Name: fmt.Sprintf("srv-%05d", i), Host: "127.0.0.1", Port: 10000 + i}
	}
	if _, err := s.ImportServers(ctx, specs); err != nil {
		t.Fatal(err)
	}
	list := mustServers(t, ctx, s)
	results := make([]store.ProbeResult, len(list))
	for i, sv := range list {
		results[i] = store.ProbeResult{ServerID: sv.ID, OK: i%10 != 0, ErrorClass: map[bool]string{true: "timeout"}[i%10 == 0], PinHostKey: []byte{byte(i)}}
	}
	if err := s.RecordProbeResults(ctx, results); err != nil {
		t.Fatal(err)
	}
	snap := mustStatus(t, ctx, s)
	up := 0
	for _, st := range snap.Servers {
		if st.LastHeartbeat != nil {
			up++
		}
	}
	if up != 1800 {
		t.Errorf("%d servers have heartbeats after the batch, want 1800", up)
	}
}
