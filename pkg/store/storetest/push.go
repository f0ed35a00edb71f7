package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

// mustToken issues a fresh token for a server and returns it.
func mustToken(t *testing.T, ctx context.Context, s store.Store, id int64) string {
	t.Helper()
	token, hash, err := store.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetServerToken(ctx, id, hash); err != nil {
		t.Fatalf("SetServerToken(%d): %v", id, err)
	}
	return token
}

func push(id int64, token, version string) store.Push {
	return store.Push{ServerID: id, TokenHash: store.HashToken(token), AgentVersion: version}
}

func testServerTokenRotation(t *testing.T, ctx context.Context, s store.Store) {
	sv := mustAdd(t, ctx, s, "agent1")
	if _, err := s.SetServerToken(ctx, 4242, store.HashToken("x")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetServerToken(unknown) error = %v, want ErrNotFound", err)
	}
	old, oldHash, _ := store.NewToken()
	replaced, err := s.SetServerToken(ctx, sv.ID, oldHash)
	if err != nil || replaced {
		t.Fatalf("first SetServerToken = %v, %v; want false, nil", replaced, err)
	}
	out, err := s.RecordPushes(ctx, []store.Push{push(sv.ID, old, "1.0.0")})
	if err != nil || len(out) != 1 || !out[0].OK {
		t.Fatalf("push with the issued token = %+v, %v", out, err)
	}
	fresh, freshHash, _ := store.NewToken()
	replaced, err = s.SetServerToken(ctx, sv.ID, freshHash)
	if err != nil || !replaced {
		t.Fatalf("rotating SetServerToken = %v, %v; want true, nil", replaced, err)
	}
	out, err = s.RecordPushes(ctx, []store.Push{push(sv.ID, old, "1.0.0"), push(sv.ID, fresh, "1.0.1")})
	if err != nil || len(out) != 2 || out[0].OK || !out[1].OK {
		t.Fatalf("after rotation, old and new token = %+v, %v; want refused, accepted", out, err)
	}
}

func testRecordPushes(t *testing.T, ctx context.Context, s store.Store) {
	a := mustAdd(t, ctx, s, "alpha")
	b := mustAdd(t, ctx, s, "bravo")
	c := mustAdd(t, ctx, s, "charlie") // never issued a token
	ta := mustToken(t, ctx, s, a.ID)
	tb := mustToken(t, ctx, s, b.ID)
	before := mustNow(t, ctx, s)
	out, err := s.RecordPushes(ctx, []store.Push{
		push(a.ID, ta, "1.0.0"),
		push(b.ID, ta, "9.9.9"), // a's token is not b's
		push(c.ID, "", ""),
		{ServerID: c.ID}, // no hash at all
		push(424242, ta, ""),
		push(a.ID, ta, "1.0.1"), // the later push of a server wins
	})
	if err != nil {
		t.Fatalf("RecordPushes: %v", err)
	}
	want := []bool{true, false, false, false, false, true}
	if len(out) != len(want) {
		t.Fatalf("RecordPushes returned %d outcomes for 6 pushes", len(out))
	}
	for i, ok := range want {
		if out[i].OK != ok {
			t.Errorf("push %d: OK = %v, want %v", i, out[i].OK, ok)
		}
		if !ok && (out[i].ServerName != "" || !out[i].At.IsZero()) {
			t.Errorf("refused push %d reveals %+v", i, out[i])
		}
	}
	at := out[0].At
	if out[0].ServerName != "alpha" || at.Location() != time.UTC || !near(at, before) || !out[5].At.Equal(at) {
		t.Errorf("accepted outcomes %+v and %+v, want alpha at one store-clock time near %v", out[0], out[5], before)
	}
	snap := mustStatus(t, ctx, s)
	got := byName(snap)
	if h := got["alpha"].Heartbeat; h.LastHeartbeat == nil || !h.LastHeartbeat.Equal(at) || h.Source != store.SourceAPI || h.AgentVersion != "1.0.1" {
		t.Errorf("alpha after push = %+v, want heartbeat at %v from api 1.0.1", h, at)
	}
	for _, name := range []string{"bravo", "charlie"} {
		if got[name].LastHeartbeat != nil {
			t.Errorf("%s got a heartbeat from a refused push: %+v", name, got[name].Heartbeat)
		}
	}
	// A push succeeds after the server has been probed and keeps the
	// probe's bookkeeping; a probe success takes the source back to ssh.
	if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: b.ID, ErrorClass: "refused", Error: "no"}}); err != nil {
		t.Fatal(err)
	}
	if out, err := s.RecordPushes(ctx, []store.Push{push(b.ID, tb, "2.0")}); err != nil || !out[0].OK || out[0].ServerName != "bravo" {
		t.Fatalf("push for bravo = %+v, %v", out, err)
	}
	snap = mustStatus(t, ctx, s)
	if h := byName(snap)["bravo"].Heartbeat; h.LastHeartbeat == nil || h.Source != store.SourceAPI || h.LastErrorClass != "refused" || h.ConsecutiveFailures != 1 {
		t.Errorf("bravo after probe failure then push = %+v", h)
	}

	if out, err := s.RecordPushes(ctx, nil); err != nil || len(out) != 0 {
		t.Errorf("RecordPushes(nil) = %v, %v; want no outcomes, no error", out, err)
	}
	if out, err := s.RecordPushes(ctx, []store.Push{push(c.ID, "guess", "")}); err != nil || out[0].OK {
		t.Errorf("batch of only refused pushes = %+v, %v", out, err)
	}
}

func testRecordPushesRemovedServer(t *testing.T, ctx context.Context, s store.Store) {
	sv := mustAdd(t, ctx, s, "gone")
	token := mustToken(t, ctx, s, sv.ID)
	if err := s.RemoveServer(ctx, sv.ID); err != nil {
		t.Fatal(err)
	}
	out, err := s.RecordPushes(ctx, []store.Push{push(sv.ID, token, "")})
	if err != nil || out[0].OK {
		t.Errorf("push for a removed server = %+v, %v; want refused", out, err)
	}
	// A new server never inherits a token, even if the engine reuses ids.
	again := mustAdd(t, ctx, s, "gone")
	if out, err := s.RecordPushes(ctx, []store.Push{push(again.ID, token, "")}); err != nil || out[0].OK {
		t.Error("a re-added server accepted the removed server's token")
	}
}

func testConcurrentPushBatches(t *testing.T, ctx context.Context, s store.Store) {
	const servers, writers, rounds = 40, 8, 10
	pushes := make([]store.Push, servers)
	for i := range pushes {
		sv := mustAdd(t, ctx, s, fmt.Sprintf("agent%02d", i))
		pushes[i] = push(sv.ID, mustToken(t, ctx, s, sv.ID), "v")
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				// Overlapping batches in different orders: a writer that
				// locked rows in batch order would deadlock with another.
				batch := make([]store.Push, 0, servers)
				for i := range pushes {
					batch = append(batch, pushes[(i*(w+1)+r)%servers])
				}
				out, err := s.RecordPushes(ctx, batch)
				if err != nil {
					errs <- err
					continue
				}
				for i, o := range out {
					if !o.OK {
						errs <- fmt.Errorf("push for server %d refused", batch[i].ServerID)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent RecordPushes: %v", err)
	}
	snap := mustStatus(t, ctx, s)
	for _, st := range snap.Servers {
		if st.LastHeartbeat == nil || st.Source != store.SourceAPI {
			t.Errorf("server %s after concurrent pushes: %+v", st.Name, st.Heartbeat)
		}
	}
}

func testLargePushBatch(t *testing.T, ctx context.Context, s store.Store) {
	specs := make([]store.ServerSpec, 1000)
	for i := range specs {
		specs[i] = store.ServerSpec{Name: fmt.Sprintf("agent-%04d", i), Host: "10.0.0.1"}
	}
	if _, err := s.ImportServers(ctx, specs); err != nil {
		t.Fatal(err)
	}
	list := mustServers(t, ctx, s)
	pushes := make([]store.Push, 0, len(list))
	for i, sv := range list[:200] {
		token := mustToken(t, ctx, s, sv.ID)
		if i%4 == 0 {
			token = "wrong"
		}
		pushes = append(pushes, push(sv.ID, token, "1"))
	}
	for _, sv := range list[200:] {
		pushes = append(pushes, push(sv.ID, "none issued", "1"))
	}
	out, err := s.RecordPushes(ctx, pushes)
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for _, o := range out {
		if o.OK {
			ok++
		}
	}
	if ok != 150 {
		t.Errorf("%d of 1000 pushes accepted, want 150", ok)
	}
}
