package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
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

// bare is a push without a token (the source system's agent) from addr.
func bare(id int64, addr, version string) store.Push {
	return store.Push{ServerID: id, RemoteAddr: netip.MustParseAddr(addr), AgentVersion: version}
}

func prefixes(list ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(list))
	for i, p := range list {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

// testTokenlessPushes: token-less pushes are off by default, accepted only
// from the networks a server allows while that is switched on, and never
// change how a push with a token is judged.
func testTokenlessPushes(t *testing.T, ctx context.Context, s store.Store) {
	a := mustAdd(t, ctx, s, "legacy")
	b := mustAdd(t, ctx, s, "other")
	token := mustToken(t, ctx, s, a.ID)
	if sv := mustServer(t, ctx, s, a.ID); sv.TokenlessFrom != nil {
		t.Fatalf("a new server allows token-less pushes from %v; want off", sv.TokenlessFrom)
	}
	record := func(pushes ...store.Push) []store.PushOutcome {
		t.Helper()
		out, err := s.RecordPushes(ctx, pushes)
		if err != nil || len(out) != len(pushes) {
			t.Fatalf("RecordPushes = %+v, %v", out, err)
		}
		return out
	}
	if out := record(bare(a.ID, "10.0.0.5", "py"), bare(b.ID, "10.0.0.5", "py")); out[0].OK || out[1].OK {
		t.Fatalf("token-less pushes with the allowance off (the default) = %+v; want refused", out)
	}

	// Host bits are cleared and duplicates dropped as the list is stored.
	if err := s.SetServerTokenless(ctx, a.ID, prefixes("10.0.0.5/32", "192.0.2.9/24", "::ffff:10.0.0.5/128")); err != nil {
		t.Fatalf("SetServerTokenless: %v", err)
	}
	want := "10.0.0.5/32,192.0.2.0/24"
	if got := store.FormatTokenless(mustServer(t, ctx, s, a.ID).TokenlessFrom); got != want {
		t.Errorf("Server().TokenlessFrom = %q, want %q", got, want)
	}
	for _, sv := range mustServers(t, ctx, s) {
		if got := store.FormatTokenless(sv.TokenlessFrom); (sv.ID == a.ID) != (got == want) || (sv.ID != a.ID && got != "") {
			t.Errorf("Servers(): %s allows %q", sv.Name, got)
		}
	}

	before := mustNow(t, ctx, s)
	out := record(
		bare(a.ID, "10.0.0.5", "agent.py 1.0"),            // allowed address
		bare(a.ID, "10.0.0.6", "spoof"),                   // another address
		bare(b.ID, "10.0.0.5", "spoof"),                   // a server that allows nothing
		store.Push{ServerID: a.ID, AgentVersion: "spoof"}, // address unknown
		bare(a.ID, "::ffff:192.0.2.77", "agent.py 1.0"),
	)
	for i, want := range []bool{true, false, false, false, true} {
		if out[i].OK != want || (want && (!out[i].Tokenless || out[i].ServerName != "legacy" || !near(out[i].At, before))) {
			t.Errorf("token-less push %d = %+v; want OK=%v (token-less, legacy, near %v)", i, out[i], want, before)
		}
		if !want && (out[i].ServerName != "" || !out[i].At.IsZero() || out[i].Tokenless) {
			t.Errorf("refused token-less push %d reveals %+v", i, out[i])
		}
	}
	got := byName(mustStatus(t, ctx, s))
	if h := got["legacy"].Heartbeat; h.LastHeartbeat == nil || h.Source != store.SourceAPI || h.AgentVersion != "agent.py 1.0" {
		t.Errorf("legacy after token-less push = %+v", h)
	}
	if got["other"].LastHeartbeat != nil {
		t.Error("a refused token-less push stored a heartbeat")
	}

	// A push with a token is judged by the token, wherever it comes from.
	withToken := push(a.ID, token, "go")
	withToken.RemoteAddr = netip.MustParseAddr("198.51.100.1")
	wrong := push(a.ID, "wrong", "spoof")
	wrong.RemoteAddr = netip.MustParseAddr("10.0.0.5")
	if out := record(wrong, withToken); out[0].OK || !out[1].OK || out[1].Tokenless {
		t.Errorf("wrong token from the allowed address, right token from elsewhere = %+v; want refused, accepted by token", out)
	}

	// Switching off works at once.
	if err := s.SetServerTokenless(ctx, a.ID, nil); err != nil {
		t.Fatalf("SetServerTokenless(nil): %v", err)
	}
	if sv := mustServer(t, ctx, s, a.ID); sv.TokenlessFrom != nil {
		t.Errorf("after switching off, TokenlessFrom = %v", sv.TokenlessFrom)
	}
	if out := record(bare(a.ID, "10.0.0.5", "py"), push(a.ID, token, "go")); out[0].OK || !out[1].OK {
		t.Errorf("after switching off: token-less, token = %+v; want refused, accepted", out)
	}
	if err := s.SetServerTokenless(ctx, a.ID, []netip.Prefix{}); err != nil {
		t.Errorf("switching off twice: %v", err)
	}

	// Bad input changes nothing.
	if err := s.SetServerTokenless(ctx, b.ID, prefixes("10.0.0.0/24")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]netip.Prefix{prefixes("0.0.0.0/0"), prefixes("::/0"), {netip.Prefix{}}} {
		if err := s.SetServerTokenless(ctx, b.ID, bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("SetServerTokenless(%v) = %v, want ErrInvalid", bad, err)
		}
	}
	if got := store.FormatTokenless(mustServer(t, ctx, s, b.ID).TokenlessFrom); got != "10.0.0.0/24" {
		t.Errorf("a refused SetServerTokenless changed the list to %q", got)
	}
	for _, from := range [][]netip.Prefix{prefixes("10.0.0.0/24"), nil} {
		if err := s.SetServerTokenless(ctx, 424242, from); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetServerTokenless(unknown, %v) = %v, want ErrNotFound", from, err)
		}
	}
}
