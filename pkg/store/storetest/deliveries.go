package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

func mustAddChannel(t *testing.T, ctx context.Context, s store.Store, spec store.ChannelSpec) store.Channel {
	t.Helper()
	if spec.URL == "" {
		spec.URL = "webhook+http://127.0.0.1:9/" + spec.Name
	}
	c, err := s.AddChannel(ctx, spec)
	if err != nil {
		t.Fatalf("AddChannel(%s): %v", spec.Name, err)
	}
	return c
}

func mustEnqueue(t *testing.T, ctx context.Context, s store.Store, p store.EnqueueParams) store.Enqueued {
	t.Helper()
	n, err := s.EnqueueDeliveries(ctx, p)
	if err != nil {
		t.Fatalf("EnqueueDeliveries: %v", err)
	}
	return n
}

func mustClaim(t *testing.T, ctx context.Context, s store.Store, p store.ClaimParams) []store.Delivery {
	t.Helper()
	if p.Claimer == "" {
		p.Claimer = "test"
	}
	ds, err := s.ClaimDeliveries(ctx, p)
	if err != nil {
		t.Fatalf("ClaimDeliveries: %v", err)
	}
	return ds
}

func mustOutcomes(t *testing.T, ctx context.Context, s store.Store, p store.OutcomeParams) store.OutcomeResult {
	t.Helper()
	res, err := s.RecordDeliveryOutcomes(ctx, p)
	if err != nil {
		t.Fatalf("RecordDeliveryOutcomes: %v", err)
	}
	return res
}

// seen makes a server ONLINE (its first state, history only), so that its
// later changes are news.
func seen(t *testing.T, ctx context.Context, s store.Store, name string) store.Server {
	t.Helper()
	sv := mustAdd(t, ctx, s, name)
	probeOK(t, ctx, s, sv.ID, time.Time{})
	mustEvaluate(t, ctx, s, store.EvalParams{})
	return sv
}

// goDown records a down-flip for sv (its heartbeat moved 10 minutes back)
// and returns it.
func goDown(t *testing.T, ctx context.Context, s store.Store, sv store.Server) store.Flip {
	t.Helper()
	probeOK(t, ctx, s, sv.ID, mustNow(t, ctx, s).Add(-10*time.Minute))
	return oneFlip(t, mustEvaluate(t, ctx, s, store.EvalParams{}), sv.ID, store.StateOnline, store.StateOffline, true)
}

// goUp records a recovery of sv at the store's clock.
func goUp(t *testing.T, ctx context.Context, s store.Store, sv store.Server) store.Flip {
	t.Helper()
	probeOK(t, ctx, s, sv.ID, time.Time{})
	return oneFlip(t, mustEvaluate(t, ctx, s, store.EvalParams{}), sv.ID, store.StateOffline, store.StateOnline, true)
}

func testChannels(t *testing.T, ctx context.Context, s store.Store) {
	a := mustAdd(t, ctx, s, "a")
	b := mustAdd(t, ctx, s, "b")
	all := mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "ops", URL: "slack://tok@chan", AllServers: true, Remind: time.Hour})
	if !slices.Equal(all.Kinds, store.DefaultChannelKinds) || !all.AllServers || all.Remind != time.Hour ||
		all.URL != "slack://tok@chan" || all.ID == 0 || all.CreatedAt.Location() != time.UTC || len(all.ServerIDs) != 0 {
		t.Errorf("AddChannel = %+v", all)
	}
	some := mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "db-team", Secret: "s3cret",
		Kinds: []string{store.DeliverWarning, store.DeliverDown}, ServerIDs: []int64{b.ID, a.ID, a.ID}})
	if !slices.Equal(some.Kinds, []string{store.DeliverDown, store.DeliverWarning}) || some.AllServers ||
		!slices.Equal(some.ServerIDs, []int64{a.ID, b.ID}) || !slices.Equal(some.ServerNames, []string{"a", "b"}) || some.Secret != "s3cret" {
		t.Errorf("AddChannel with servers = %+v", some)
	}
	if _, err := s.AddChannel(ctx, store.ChannelSpec{Name: "ops", URL: "x://y", AllServers: true}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate channel name: %v, want ErrConflict", err)
	}
	for _, bad := range []store.ChannelSpec{
		{Name: "", URL: "x://y", AllServers: true},
		{Name: "n", URL: "", AllServers: true},
		{Name: "n", URL: "x://y"},
		{Name: "n", URL: "x://y", AllServers: true, ServerIDs: []int64{a.ID}},
		{Name: "n", URL: "x://y", AllServers: true, Kinds: []string{"sideways"}},
		{Name: "n", URL: "x://y", AllServers: true, Remind: time.Millisecond},
	} {
		if _, err := s.AddChannel(ctx, bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("AddChannel(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := s.AddChannel(ctx, store.ChannelSpec{Name: "ghost", URL: "x://y", ServerIDs: []int64{a.ID, 999999}}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("channel for an unknown server: %v, want ErrNotFound", err)
	}
	list, err := s.Channels(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "db-team" || list[1].Name != "ops" {
		t.Fatalf("Channels = %+v, %v; want db-team, ops (nothing half-written)", list, err)
	}
	if got, err := s.ChannelByName(ctx, "ops"); err != nil || got.ID != all.ID {
		t.Errorf("ChannelByName = %+v, %v", got, err)
	}
	if _, err := s.ChannelByName(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ChannelByName(unknown) = %v", err)
	}
	// A removed server leaves the channel's list.
	if err := s.RemoveServer(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ChannelByName(ctx, "db-team"); !slices.Equal(got.ServerIDs, []int64{b.ID}) {
		t.Errorf("servers after removing a = %v", got.ServerIDs)
	}
	if err := s.RemoveChannel(ctx, all.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveChannel(ctx, all.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second RemoveChannel = %v, want ErrNotFound", err)
	}
}

// byChannel claims everything due and groups it by channel name, as
// "kind server" strings.
func byChannel(t *testing.T, ctx context.Context, s store.Store) (map[string][]string, []store.Delivery) {
	t.Helper()
	ds := mustClaim(t, ctx, s, store.ClaimParams{Claimer: "reader"})
	out := map[string][]string{}
	for _, d := range ds {
		out[d.ChannelName] = append(out[d.ChannelName], d.Kind+" "+d.ServerName)
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out, ds
}

// noFlapping keeps the flapping rule out of a test whose servers change
// often within seconds.
var noFlapping = store.EnqueueParams{FlapChanges: 1000}

func testEnqueueFilters(t *testing.T, ctx context.Context, s store.Store) {
	a := seen(t, ctx, s, "a")
	b := seen(t, ctx, s, "b")
	down := goDown(t, ctx, s, a) // before any channel: history for them

	downOnly := mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "down-only", Kinds: []string{store.DeliverDown}, AllServers: true})
	mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "everything", Kinds: store.ChannelKinds, AllServers: true})
	mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "only-b", ServerIDs: []int64{b.ID}})
	if n := mustEnqueue(t, ctx, s, noFlapping); n.Flips != 0 {
		t.Fatalf("new channels were queued %d flips from before they existed", n.Flips)
	}

	up := goUp(t, ctx, s, a)
	goDown(t, ctx, s, b)
	al, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: a.ID, Kind: store.KindAlert, Severity: store.SeverityWarning, Message: "disk"})
	if err != nil {
		t.Fatal(err)
	}
	mustEvaluate(t, ctx, s, store.EvalParams{})
	if _, err := s.ResolveAlert(ctx, al.ID); err != nil {
		t.Fatal(err)
	}
	mustEvaluate(t, ctx, s, store.EvalParams{})
	// History-only flips: a new server's first state, disabling.
	mustAdd(t, ctx, s, "c")
	if err := s.SetServerEnabled(ctx, b.ID, false); err != nil {
		t.Fatal(err)
	}
	mustEvaluate(t, ctx, s, store.EvalParams{})
	// A fleet event goes to all-servers channels that want down.
	cut := mustEvaluate(t, ctx, s, store.EvalParams{HostCutOff: true, CutOffReason: "cut off"})
	if len(cut.Flips) != 1 || cut.Flips[0].To != store.StateCutOff {
		t.Fatalf("cut-off round = %+v", cut.Flips)
	}

	if n := mustEnqueue(t, ctx, s, noFlapping); n.Flips != 2+5+1 {
		t.Errorf("enqueued %d, want 8 (down-only 2, everything 5, only-b 1)", n.Flips)
	}
	if n := mustEnqueue(t, ctx, s, noFlapping); n.Flips != 0 || n.Reminders != 0 {
		t.Errorf("a second enqueue queued %+v again", n)
	}
	got, ds := byChannel(t, ctx, s)
	want := map[string][]string{
		"down-only":  {"cutoff ", "down b"},
		"everything": {"cutoff ", "down b", "up a", "warning a", "warning a"},
		"only-b":     {"down b"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("deliveries = %v\nwant %v", got, want)
	}
	for _, d := range ds {
		switch {
		case d.Kind == store.DeliverUp:
			if d.DownFor != up.At.Sub(down.At) || d.FlipID != up.ID || d.From != store.StateOffline || d.Host != "a.example.net" || !d.At.Equal(up.At) {
				t.Errorf("up delivery = %+v; want DownFor %v", d, up.At.Sub(down.At))
			}
		case d.Kind == store.DeliverCutOff:
			if d.ServerID != 0 || d.Reason != "cut off" || d.To != store.StateCutOff {
				t.Errorf("cut-off delivery = %+v", d)
			}
		}
		if d.ChannelName == "down-only" && (d.ChannelID != downOnly.ID || d.ChannelURL != downOnly.URL) {
			t.Errorf("delivery carries channel %d %q", d.ChannelID, d.ChannelURL)
		}
		if d.Attempts != 0 || d.Reminder != 0 || d.At.Location() != time.UTC || d.CreatedAt.IsZero() {
			t.Errorf("delivery = %+v", d)
		}
	}
}

func testClaimOnce(t *testing.T, ctx context.Context, s store.Store) {
	const servers = 40
	var svs []store.Server
	for i := range servers {
		svs = append(svs, seen(t, ctx, s, fmt.Sprintf("srv%02d", i)))
	}
	mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "c1", AllServers: true})
	mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "c2", AllServers: true})
	now := mustNow(t, ctx, s)
	for _, sv := range svs {
		probeOK(t, ctx, s, sv.ID, now.Add(-10*time.Minute))
	}
	mustEvaluate(t, ctx, s, store.EvalParams{})
	if n := mustEnqueue(t, ctx, s, store.EnqueueParams{}); n.Flips != 2*servers {
		t.Fatalf("enqueued %d, want %d", n.Flips, 2*servers)
	}
	count := ClaimConcurrently(t, ctx, []store.Store{s, s, s, s}, 7)
	if len(count) != 2*servers {
		t.Errorf("claimed %d distinct deliveries, want %d", len(count), 2*servers)
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("delivery %d claimed %d times", id, n)
		}
	}
}

func testClaimExpires(t *testing.T, ctx context.Context, s store.Store) {
	a := seen(t, ctx, s, "a")
	mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "c", AllServers: true})
	goDown(t, ctx, s, a)
	mustEnqueue(t, ctx, s, store.EnqueueParams{})
	// A live claim holds.
	if ds := mustClaim(t, ctx, s, store.ClaimParams{Claimer: "alive", TTL: time.Hour}); len(ds) != 1 {
		t.Fatalf("claimed %d, want 1", len(ds))
	}
	if ds := mustClaim(t, ctx, s, store.ClaimParams{Claimer: "other"}); len(ds) != 0 {
		t.Fatalf("a held claim was claimed again: %+v", ds)
	}
	now := mustNow(t, ctx, s)
	// Its claimer died: an hour later someone else takes it, and the dead
	// claimer's late failure no longer counts.
	ds := mustClaim(t, ctx, s, store.ClaimParams{Claimer: "other", Now: now.Add(time.Hour + time.Second)})
	if len(ds) != 1 || ds[0].Attempts != 0 {
		t.Fatalf("after expiry claimed %+v, want the delivery", ds)
	}
	if res := mustOutcomes(t, ctx, s, store.OutcomeParams{Claimer: "alive", Outcomes: []store.DeliveryOutcome{{ID: ds[0].ID, Error: "late"}}}); res != (store.OutcomeResult{}) {
		t.Errorf("the dead claimer's failure counted: %+v", res)
	}
	// A short claim expires on the store's clock too.
	if res := mustOutcomes(t, ctx, s, store.OutcomeParams{Claimer: "other", Outcomes: []store.DeliveryOutcome{{ID: ds[0].ID, Unsent: true}}}); res.Released != 1 {
		t.Fatalf("release = %+v", res)
	}
	if ds = mustClaim(t, ctx, s, store.ClaimParams{Claimer: "brief", TTL: time.Millisecond}); len(ds) != 1 || ds[0].Attempts != 0 {
		t.Fatalf("a released delivery is claimable at once with no attempt counted: %+v", ds)
	}
	time.Sleep(20 * time.Millisecond)
	if ds = mustClaim(t, ctx, s, store.ClaimParams{Claimer: "next"}); len(ds) != 1 {
		t.Fatalf("an expired 1ms claim was not claimed again: %+v", ds)
	}
	// Sent counts whoever holds the claim: the receiver has it.
	if res := mustOutcomes(t, ctx, s, store.OutcomeParams{Claimer: "brief", Outcomes: []store.DeliveryOutcome{{ID: ds[0].ID, Sent: true}}}); res.Delivered != 1 {
		t.Errorf("sent by the previous claimer = %+v, want delivered", res)
	}
	if ds = mustClaim(t, ctx, s, store.ClaimParams{Now: now.Add(100 * time.Hour)}); len(ds) != 0 {
		t.Errorf("a delivered delivery was claimed: %+v", ds)
	}
}

func testDeliveryRetries(t *testing.T, ctx context.Context, s store.Store) {
	a := seen(t, ctx, s, "a")
	c := mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "flaky", AllServers: true})
	mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "fine", AllServers: true})
	goDown(t, ctx, s, a)
	mustEnqueue(t, ctx, s, store.EnqueueParams{})
	var flaky, fine store.Delivery
	for _, d := range mustClaim(t, ctx, s, store.ClaimParams{Claimer: "d"}) {
		if d.ChannelID == c.ID {
			flaky = d
		} else {
			fine = d
		}
	}
	if flaky.ID == 0 || fine.ID == 0 {
		t.Fatal("missing deliveries")
	}
	t0 := flaky.CreatedAt.Add(time.Second)
	res := mustOutcomes(t, ctx, s, store.OutcomeParams{Claimer: "d", At: t0, Outcomes: []store.DeliveryOutcome{
		{ID: flaky.ID, Error: "receiver said 503"}, {ID: fine.ID, Sent: true}}})
	if res != (store.OutcomeResult{Delivered: 1, Retrying: 1}) {
		t.Fatalf("outcomes = %+v", res)
	}
	st, err := s.DeliveryStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Backlog != 1 || st.OldestPending == nil || !st.OldestPending.Equal(flaky.CreatedAt) ||
		len(st.Failing) != 1 || st.Failing[0].ChannelName != "flaky" || st.Failing[0].LastError != "receiver said 503" ||
		!st.Failing[0].LastAttempt.Equal(t0) || st.Failing[0].Pending != 1 {
		t.Errorf("stats = %+v", st)
	}
	// Backoff: 30 s after the first failure, 60 s after the second.
	wait := []time.Duration{store.DeliveryRetryBase, 2 * store.DeliveryRetryBase}
	at := t0
	for i, w := range wait {
		if ds := mustClaim(t, ctx, s, store.ClaimParams{Claimer: "d", Now: at.Add(w - time.Second)}); len(ds) != 0 {
			t.Fatalf("retry %d claimable %v after the failure, before its backoff %v", i+1, w-time.Second, w)
		}
		ds := mustClaim(t, ctx, s, store.ClaimParams{Claimer: "d", Now: at.Add(w)})
		if len(ds) != 1 || ds[0].Attempts != i+1 {
			t.Fatalf("retry %d at +%v = %+v", i+1, w, ds)
		}
		at = at.Add(w)
		if i == 0 {
			mustOutcomes(t, ctx, s, store.OutcomeParams{Claimer: "d", At: at, Outcomes: []store.DeliveryOutcome{{ID: flaky.ID, Error: "again"}}})
		}
	}
	// 24 h after it was queued, a failure gives up.
	late := flaky.CreatedAt.Add(store.DeliveryGiveUpAfter)
	if res := mustOutcomes(t, ctx, s, store.OutcomeParams{Claimer: "d", At: late, Outcomes: []store.DeliveryOutcome{{ID: flaky.ID, Error: "still down"}}}); res.GaveUp != 1 {
		t.Fatalf("a failure 24h after queueing = %+v, want given up", res)
	}
	if ds := mustClaim(t, ctx, s, store.ClaimParams{Claimer: "d", Now: late.Add(100 * time.Hour)}); len(ds) != 0 {
		t.Errorf("a given-up delivery was claimed: %+v", ds)
	}
	if st, err = s.DeliveryStats(ctx); err != nil || st.Backlog != 0 || st.OldestPending != nil || len(st.Failing) != 1 || st.Failing[0].GaveUp != 1 {
		t.Errorf("stats after giving up = %+v, %v", st, err)
	}
	for n, want := range map[int]time.Duration{1: 30 * time.Second, 2: time.Minute, 7: 32 * time.Minute, 8: time.Hour, 40: time.Hour} {
		if got := store.DeliveryBackoff(n); got != want {
			t.Errorf("DeliveryBackoff(%d) = %v, want %v", n, got, want)
		}
	}
}

func testReminders(t *testing.T, ctx context.Context, s store.Store) {
	a := seen(t, ctx, s, "a")
	b := seen(t, ctx, s, "b")
	mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "nag", AllServers: true, Remind: time.Hour})
	mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "quiet", AllServers: true})
	down := goDown(t, ctx, s, a)
	goDown(t, ctx, s, b)
	goUp(t, ctx, s, b) // b is back: no reminders for it
	mustEnqueue(t, ctx, s, store.EnqueueParams{})
	mustClaim(t, ctx, s, store.ClaimParams{Claimer: "r", TTL: 1000 * time.Hour}) // out of the way

	if n := mustEnqueue(t, ctx, s, store.EnqueueParams{Now: down.At.Add(59 * time.Minute)}); n.Reminders != 0 {
		t.Errorf("reminders before the interval: %+v", n)
	}
	due := down.At.Add(time.Hour)
	if n := mustEnqueue(t, ctx, s, store.EnqueueParams{Now: due}); n.Reminders != 1 {
		t.Fatalf("reminders after an hour = %+v, want 1 (nag only, a only)", n)
	}
	if n := mustEnqueue(t, ctx, s, store.EnqueueParams{Now: due.Add(time.Minute)}); n.Reminders != 0 {
		t.Errorf("a reminder repeated a minute later: %+v", n)
	}
	ds := mustClaim(t, ctx, s, store.ClaimParams{Claimer: "r", Now: due})
	if len(ds) != 1 || ds[0].Kind != store.DeliverReminder || ds[0].Reminder != 1 || ds[0].ChannelName != "nag" ||
		ds[0].ServerID != a.ID || !ds[0].At.Equal(due) || ds[0].DownFor != time.Hour || ds[0].FlipID != down.ID {
		t.Fatalf("reminder = %+v", ds)
	}
	if n := mustEnqueue(t, ctx, s, store.EnqueueParams{Now: due.Add(time.Hour)}); n.Reminders != 1 {
		t.Errorf("second reminder = %+v", n)
	}
	goUp(t, ctx, s, a)
	if n := mustEnqueue(t, ctx, s, store.EnqueueParams{Now: due.Add(5 * time.Hour)}); n.Reminders != 0 {
		t.Errorf("reminders for a server that is back: %+v", n)
	}
}

func testPruneDeliveries(t *testing.T, ctx context.Context, s store.Store) {
	a := seen(t, ctx, s, "a")
	c := mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "c", AllServers: true})
	mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "d", AllServers: true})
	goDown(t, ctx, s, a)
	mustEnqueue(t, ctx, s, store.EnqueueParams{})
	now := mustNow(t, ctx, s)
	if p, err := s.PruneHistory(ctx, store.PruneParams{DeliveriesBefore: now.Add(-time.Hour)}); err != nil || p.Deliveries != 0 {
		t.Fatalf("prune with a past cutoff = %+v, %v", p, err)
	}
	// Removing a channel takes its deliveries with it.
	if err := s.RemoveChannel(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if st, err := s.DeliveryStats(ctx); err != nil || st.Backlog != 1 {
		t.Fatalf("backlog after removing a channel = %+v, %v; want 1", st, err)
	}
	if p, err := s.PruneHistory(ctx, store.PruneParams{DeliveriesBefore: now.Add(time.Hour)}); err != nil || p.Deliveries != 1 {
		t.Fatalf("prune = %+v, %v; want 1 delivery", p, err)
	}
	if st, err := s.DeliveryStats(ctx); err != nil || st.Backlog != 0 {
		t.Errorf("backlog after prune = %+v, %v", st, err)
	}
}

// testFlapping: a server that changes state often is held back until it
// has held one state for the settle time; then its settled state is
// queued, once.
func testFlapping(t *testing.T, ctx context.Context, s store.Store) {
	a := seen(t, ctx, s, "a") // its first state is a flip too
	steady := seen(t, ctx, s, "steady")
	mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "c", AllServers: true})
	var flips []store.Flip
	for i := range 4 {
		if i%2 == 0 {
			flips = append(flips, goDown(t, ctx, s, a))
		} else {
			flips = append(flips, goUp(t, ctx, s, a))
		}
	}
	last := goDown(t, ctx, s, a) // the 6th flip of a in seconds
	goDown(t, ctx, s, steady)
	if n := mustEnqueue(t, ctx, s, store.EnqueueParams{}); n.Flips != 3+1 || n.Settled != 0 {
		t.Fatalf("enqueue = %+v; want a's first 3 changes and steady's, the 4th and 5th held back", n)
	}
	if n := mustEnqueue(t, ctx, s, store.EnqueueParams{Now: last.At.Add(store.DefaultFlapSettle - time.Second)}); n.Settled != 0 {
		t.Errorf("settled before it held for %v: %+v", store.DefaultFlapSettle, n)
	}
	settledAt := last.At.Add(store.DefaultFlapSettle)
	if n := mustEnqueue(t, ctx, s, store.EnqueueParams{Now: settledAt}); n.Settled != 1 {
		t.Fatalf("after holding OFFLINE for %v: %+v, want its settled state queued", store.DefaultFlapSettle, n)
	}
	if n := mustEnqueue(t, ctx, s, store.EnqueueParams{Now: settledAt.Add(time.Minute)}); n.Settled != 0 {
		t.Errorf("the settled state was queued again: %+v", n)
	}
	var got []int64
	for _, d := range mustClaim(t, ctx, s, store.ClaimParams{Now: settledAt}) {
		if d.ServerID == a.ID {
			got = append(got, d.FlipID)
		}
	}
	want := []int64{flips[0].ID, flips[1].ID, flips[2].ID, last.ID}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("a's deliveries are flips %v, want %v (the first three, then the settled one)", got, want)
	}
	// A looser rule holds nothing back.
	b := seen(t, ctx, s, "b")
	for i := range 6 {
		if i%2 == 0 {
			goDown(t, ctx, s, b)
		} else {
			goUp(t, ctx, s, b)
		}
	}
	mustEnqueue(t, ctx, s, store.EnqueueParams{FlapChanges: 20})
	bs := 0
	for _, d := range mustClaim(t, ctx, s, store.ClaimParams{Now: settledAt}) {
		if d.ServerID == b.ID {
			bs++
		}
	}
	if bs != 6 {
		t.Errorf("with 20 changes allowed, %d of b's 6 changes were queued", bs)
	}
}

// ClaimConcurrently runs one claimer per store in stores (the same store
// several times, or separate connections to one database) until nothing
// is left to claim, and counts how often each delivery id was claimed.
func ClaimConcurrently(t *testing.T, ctx context.Context, stores []store.Store, limit int) map[int64]int {
	t.Helper()
	var (
		mu    sync.Mutex
		count = map[int64]int{}
		wg    sync.WaitGroup
	)
	for w, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ds, err := s.ClaimDeliveries(ctx, store.ClaimParams{Claimer: fmt.Sprintf("claimer%d", w), Limit: limit, TTL: time.Hour})
				if err != nil {
					t.Errorf("ClaimDeliveries: %v", err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					count[d.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return count
}

// DeliveryEvents lists each delivery once it is sent or given up, by the
// time that happened, with its channel's URL.
func testDeliveryEvents(t *testing.T, ctx context.Context, s store.Store) {
	a := seen(t, ctx, s, "a")
	hook := mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "hook", URL: "webhook+https://user:pw@hooks.example/x?token=secret", AllServers: true})
	mustAddChannel(t, ctx, s, store.ChannelSpec{Name: "chat", URL: "slack://hook:T-A-B@webhook", AllServers: true})
	goDown(t, ctx, s, a)
	mustEnqueue(t, ctx, s, store.EnqueueParams{})
	ds := mustClaim(t, ctx, s, store.ClaimParams{Claimer: "d"})
	if len(ds) != 2 {
		t.Fatalf("claimed %d deliveries, want 2", len(ds))
	}
	var hookID, chatID int64
	for _, d := range ds {
		if d.ChannelID == hook.ID {
			hookID = d.ID
		} else {
			chatID = d.ID
		}
	}
	t0 := ds[0].CreatedAt.Add(time.Second)
	mustOutcomes(t, ctx, s, store.OutcomeParams{Claimer: "d", At: t0, Outcomes: []store.DeliveryOutcome{
		{ID: hookID, Error: "503"}, {ID: chatID, Sent: true}}})
	events, now, err := s.DeliveryEvents(ctx, t0.Add(-time.Second))
	if err != nil || now.IsZero() {
		t.Fatalf("DeliveryEvents: %v, now %v", err, now)
	}
	if len(events) != 1 || events[0].ID != chatID || !events[0].Sent || events[0].ChannelURL != "slack://hook:T-A-B@webhook" || !events[0].At.Equal(t0) {
		t.Fatalf("after one sent, one retrying: %+v", events)
	}
	late := ds[0].CreatedAt.Add(store.DeliveryGiveUpAfter)
	mustClaim(t, ctx, s, store.ClaimParams{Claimer: "d", Now: late})
	mustOutcomes(t, ctx, s, store.OutcomeParams{Claimer: "d", At: late, Outcomes: []store.DeliveryOutcome{{ID: hookID, Error: "still 503"}}})
	events, _, err = s.DeliveryEvents(ctx, t0.Add(-time.Second))
	if err != nil || len(events) != 2 || events[1].ID != hookID || events[1].Sent || events[1].ChannelURL != hook.URL || !events[1].At.Equal(late) {
		t.Fatalf("after giving up: %+v, %v", events, err)
	}
	if events, _, err = s.DeliveryEvents(ctx, t0.Add(time.Second)); err != nil || len(events) != 1 || events[0].ID != hookID {
		t.Errorf("since after the first: %+v, %v", events, err)
	}
}
