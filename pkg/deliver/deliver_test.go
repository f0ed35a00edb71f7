package deliver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/deliver"
	"github.com/stacksense/heartbeat/pkg/notify"
	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/postgres"
	"github.com/stacksense/heartbeat/pkg/store/sqlite"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// engines runs fn against a fresh SQLite file and a fresh Postgres
// database.
func engines(t *testing.T, fn func(t *testing.T, open func(t *testing.T) store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hb.db")
		fn(t, func(t *testing.T) store.Store {
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.URL(t)
		first := true
		fn(t, func(t *testing.T) store.Store {
			ctx := context.Background()
			s, err := postgres.Open(ctx, url, postgres.Options{})
			if first {
				first = false
				if _, err := s.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}

// receiver is a webhook receiver on loopback that verifies signatures and
// counts what it got.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	mu     sync.Mutex
	// status to answer (0: 204) and delay before answering.
	status int
	delay  time.Duration
	// messages received (signature valid), and events by channel+key.
	messages []notify.Payload
	events   map[string]int
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{t: t, secret: secret, events: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	status, delay := r.status, r.delay
	r.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
			return
		}
	}
	if status != 0 {
		http.Error(w, "receiver down", status)
		return
	}
	if !notify.VerifySignature(body, req.Header.Get(notify.SignatureHeader), r.secret) {
		r.t.Errorf("bad signature on %s", req.URL.Path)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p notify.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		r.t.Errorf("payload: %v", err)
		return
	}
	r.mu.Lock()
	r.messages = append(r.messages, p)
	for _, e := range p.Events {
		r.events[req.URL.Path+" "+e.IdempotencyKey]++
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) set(status int, delay time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.delay = status, delay
}

func (r *receiver) url(path string) string {
	return "webhook+" + r.srv.URL + path
}

// snapshot returns copies of what was received.
func (r *receiver) snapshot() ([]notify.Payload, map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := make(map[string]int, len(r.events))
	for k, v := range r.events {
		ev[k] = v
	}
	return append([]notify.Payload(nil), r.messages...), ev
}

// fleet adds n servers that have been ONLINE, so their changes are news.
func fleet(t testing.TB, ctx context.Context, s store.Store, n int) []int64 {
	t.Helper()
	specs := make([]store.ServerSpec, n)
	for i := range specs {
		specs[i] = store.ServerSpec{Name: fmt.Sprintf("srv%04d", i), Host: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)}
	}
	if _, err := s.ImportServers(ctx, specs); err != nil {
		t.Fatal(err)
	}
	list, err := s.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(list))
	for i, sv := range list {
		ids[i] = sv.ID
	}
	heartbeat(t, ctx, s, ids, time.Time{})
	return ids
}

// heartbeat records a heartbeat at for every server (zero: now) and
// evaluates, returning the flips recorded.
func heartbeat(t testing.TB, ctx context.Context, s store.Store, ids []int64, at time.Time) []store.Flip {
	t.Helper()
	rs := make([]store.ProbeResult, len(ids))
	for i, id := range ids {
		rs[i] = store.ProbeResult{ServerID: id, OK: true, At: at}
	}
	if err := s.RecordProbeResults(ctx, rs); err != nil {
		t.Fatal(err)
	}
	res, err := s.Evaluate(ctx, store.EvalParams{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Flips
}

// down takes the servers OFFLINE (heartbeats 10 minutes old).
func down(t testing.TB, ctx context.Context, s store.Store, ids []int64) []store.Flip {
	t.Helper()
	now, err := s.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	flips := heartbeat(t, ctx, s, ids, now.Add(-10*time.Minute))
	if len(flips) != len(ids) {
		t.Fatalf("%d down-flips, want %d", len(flips), len(ids))
	}
	return flips
}

func addChannel(t testing.TB, ctx context.Context, s store.Store, name, url, secret string, kinds ...string) store.Channel {
	t.Helper()
	c, err := s.AddChannel(ctx, store.ChannelSpec{Name: name, URL: url, Secret: secret, Kinds: kinds, AllServers: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func drain(t testing.TB, ctx context.Context, s store.Store, opts deliver.Options) deliver.Result {
	t.Helper()
	res, err := deliver.Drain(ctx, s, opts)
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	return res
}

// TestDrainersAtOnceDeliverEachOnce: three drainers (each with its own
// store connection) drain one queue at once; the receiver sees every
// (flip, channel) exactly once.
func TestDrainersAtOnceDeliverEachOnce(t *testing.T) {
	engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s := open(t)
		rcv := newReceiver(t, "sekrit")
		ids := fleet(t, ctx, s, 30)
		addChannel(t, ctx, s, "one", rcv.url("/one"), "sekrit")
		addChannel(t, ctx, s, "two", rcv.url("/two"), "sekrit")
		down(t, ctx, s, ids)

		stores := []store.Store{s, open(t), open(t)}
		var wg sync.WaitGroup
		results := make([]deliver.Result, len(stores))
		for i, st := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := deliver.Drain(ctx, st, deliver.Options{StormThreshold: -1, BatchSize: 4, Parallel: 2})
				if err != nil {
					t.Errorf("Drain %d: %v", i, err)
				}
				results[i] = r
			}()
		}
		wg.Wait()
		_, events := rcv.snapshot()
		if len(events) != 60 {
			t.Errorf("receiver got %d distinct events, want 60", len(events))
		}
		for k, n := range events {
			if n != 1 {
				t.Errorf("%s received %d times", k, n)
			}
		}
		delivered, queued := 0, 0
		for _, r := range results {
			delivered += r.Delivered
			queued += r.Queued
		}
		if delivered != 60 || queued != 60 {
			t.Errorf("results %+v: delivered %d, queued %d; want 60 each", results, delivered, queued)
		}
		if again := drain(t, ctx, s, deliver.Options{}); again.Claimed != 0 {
			t.Errorf("a later drain claimed %d", again.Claimed)
		}
	})
}

// TestDrainStormAndRecovery: more than the threshold of events for one
// channel make one grouped message; a recovery says how long the server
// was down; a channel gets only the kinds it asked for.
func TestDrainStormAndRecovery(t *testing.T) {
	engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s := open(t)
		rcv := newReceiver(t, "k")
		ids := fleet(t, ctx, s, 12)
		addChannel(t, ctx, s, "all", rcv.url("/all"), "k")
		addChannel(t, ctx, s, "ups", rcv.url("/ups"), "k", store.DeliverUp)
		flips := down(t, ctx, s, ids)

		res := drain(t, ctx, s, deliver.Options{})
		msgs, _ := rcv.snapshot()
		if res.Messages != 1 || res.Delivered != 12 || len(msgs) != 1 || !msgs[0].Grouped || len(msgs[0].Events) != 12 || msgs[0].Counts["OFFLINE"] != 12 {
			t.Fatalf("storm of 12: result %+v, messages %+v; want one grouped message of 12", res, msgs)
		}

		// Three come back: three messages to each channel, each with how
		// long it was down.
		ups := heartbeat(t, ctx, s, ids[:3], time.Time{})
		res = drain(t, ctx, s, deliver.Options{})
		msgs, _ = rcv.snapshot()
		if res.Messages != 6 || len(msgs) != 7 {
			t.Fatalf("recoveries: result %+v, %d messages in all; want 6 more", res, len(msgs))
		}
		for _, m := range msgs[1:] {
			e := m.Events[0]
			var downAt time.Time
			for _, f := range flips {
				if f.ServerID == e.ServerID {
					downAt = f.At
				}
			}
			var upAt time.Time
			for _, f := range ups {
				if f.ServerID == e.ServerID {
					upAt = f.At
				}
			}
			if m.Grouped || e.Kind != notify.KindUp || e.DownForSeconds != int64(upAt.Sub(downAt)/time.Second) || upAt.Sub(downAt) <= 0 {
				t.Errorf("recovery message %+v: want up with down_for %v", m, upAt.Sub(downAt))
			}
		}
	})
}

// TestDrainExpiredClaim: a drainer that claimed and died leaves its claim
// to expire; the next drain delivers.
func TestDrainExpiredClaim(t *testing.T) {
	engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s := open(t)
		rcv := newReceiver(t, "k")
		ids := fleet(t, ctx, s, 2)
		addChannel(t, ctx, s, "c", rcv.url("/c"), "k")
		down(t, ctx, s, ids)
		if _, err := s.EnqueueDeliveries(ctx, store.EnqueueParams{}); err != nil {
			t.Fatal(err)
		}
		ds, err := s.ClaimDeliveries(ctx, store.ClaimParams{Claimer: "dead", TTL: time.Millisecond})
		if err != nil || len(ds) != 2 {
			t.Fatalf("claim = %d, %v", len(ds), err)
		}
		time.Sleep(20 * time.Millisecond)
		if res := drain(t, ctx, s, deliver.Options{}); res.Delivered != 2 {
			t.Errorf("drain after the claimer died = %+v, want 2 delivered", res)
		}
		if _, ev := rcv.snapshot(); len(ev) != 2 {
			t.Errorf("receiver got %v", ev)
		}
	})
}

// TestDrainFailureRetriedLater: a refusing receiver fails the attempt,
// the rest of the channel's messages are not tried, and everything is due
// again after the backoff, not at once.
func TestDrainFailureRetriedLater(t *testing.T) {
	engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s := open(t)
		rcv := newReceiver(t, "k")
		ids := fleet(t, ctx, s, 3)
		addChannel(t, ctx, s, "c", rcv.url("/c"), "k")
		down(t, ctx, s, ids)
		rcv.set(http.StatusServiceUnavailable, 0)
		res := drain(t, ctx, s, deliver.Options{})
		if res.Failed != 3 || res.Messages != 1 || res.Delivered != 0 {
			t.Fatalf("drain against a 503 = %+v; want 3 failed after one attempt", res)
		}
		st, err := s.DeliveryStats(ctx)
		if err != nil || len(st.Failing) != 1 || st.Failing[0].ChannelName != "c" || st.Backlog != 3 {
			t.Fatalf("stats = %+v, %v", st, err)
		}
		rcv.set(0, 0)
		if res := drain(t, ctx, s, deliver.Options{}); res.Claimed != 0 {
			t.Errorf("a failed delivery was retried before its backoff: %+v", res)
		}
		now, _ := s.Now(ctx)
		ds, err := s.ClaimDeliveries(ctx, store.ClaimParams{Claimer: "x", Now: now.Add(store.DeliveryRetryBase + time.Second)})
		if err != nil || len(ds) != 3 || ds[0].Attempts != 1 {
			t.Errorf("after the backoff: %+v, %v", ds, err)
		}
	})
}

// TestDrainStopsBeforeItsDeadline: a slow receiver and a short budget:
// the drain returns in time, releases what it did not send, and the next
// drain sends the rest.
func TestDrainStopsBeforeItsDeadline(t *testing.T) {
	engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx := context.Background()
		s := open(t)
		rcv := newReceiver(t, "k")
		ids := fleet(t, ctx, s, 10)
		addChannel(t, ctx, s, "slow", rcv.url("/slow"), "k")
		down(t, ctx, s, ids)
		// Queued beforehand, so the budget goes to sending (a fresh
		// Postgres pool's first connection can take a good part of it).
		if _, err := s.EnqueueDeliveries(ctx, store.EnqueueParams{}); err != nil {
			t.Fatal(err)
		}
		rcv.set(0, 300*time.Millisecond)
		budget := 2 * time.Second
		dctx, cancel := context.WithTimeout(ctx, budget)
		start := time.Now()
		res, err := deliver.Drain(dctx, s, deliver.Options{StormThreshold: -1})
		took := time.Since(start)
		cancel()
		if err != nil {
			t.Fatalf("Drain: %v", err)
		}
		if took > budget+100*time.Millisecond {
			t.Errorf("drain took %v with a %v budget", took, budget)
		}
		if !res.DeadlineHit || res.Released == 0 || res.Delivered == 0 || res.Delivered+res.Released != 10 {
			t.Errorf("short drain = %+v; want some delivered, the rest released", res)
		}
		rcv.set(0, 0)
		res2 := drain(t, ctx, s, deliver.Options{StormThreshold: -1})
		if res2.Delivered != res.Released {
			t.Errorf("next drain delivered %d, want the %d released", res2.Delivered, res.Released)
		}
		if _, ev := rcv.snapshot(); len(ev) != 10 {
			t.Errorf("receiver got %d distinct events, want 10", len(ev))
		}
	})
}

// BenchmarkDrain1000 drains 1,000 pending messages (no grouping) to a
// loopback webhook. Target: < 2 s per drain.
//
//	go test ./pkg/deliver/ -run '^$' -bench Drain1000 -benchtime 3x
func BenchmarkDrain1000(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			var s store.Store
			var err error
			if engine == "sqlite" {
				s, err = sqlite.Open(ctx, filepath.Join(b.TempDir(), "hb.db"))
			} else {
				var pg *postgres.Store
				pg, _ = postgres.Open(ctx, pgtest.URL(b), postgres.Options{})
				if _, err = pg.Migrate(ctx); err == nil {
					s = pg
				}
			}
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var got sync.Map
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.Store(r.Header.Get(notify.IdempotencyKeyHeader), true)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			ids := fleet(b, ctx, s, 1000)
			addChannel(b, ctx, s, "bench", "webhook+"+srv.URL+"/", "k")
			down(b, ctx, s, ids)
			if _, err := deliver.Drain(ctx, s, deliver.Options{}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				heartbeat(b, ctx, s, ids, time.Time{}) // back up: 1,000 recoveries to send
				b.StartTimer()
				start := time.Now()
				// Every round flips each server twice within seconds: not
				// flapping for this measurement.
				res, err := deliver.Drain(ctx, s, deliver.Options{StormThreshold: -1, BatchSize: 1000, Enqueue: store.EnqueueParams{FlapChanges: 1 << 30}})
				if err != nil || res.Delivered != 1000 {
					b.Fatalf("drain = %+v, %v", res, err)
				}
				b.ReportMetric(time.Since(start).Seconds(), "s/drain")
				b.StopTimer()
				down(b, ctx, s, ids) // and down again, for the next round
				if _, err := deliver.Drain(ctx, s, deliver.Options{Enqueue: store.EnqueueParams{FlapChanges: 1 << 30}}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// TestDrainWithAlmostNoTimeLeft: a round that has used its budget calls
// Drain anyway; it returns at once and leaves everything queued.
func TestDrainWithAlmostNoTimeLeft(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "hb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rcv := newReceiver(t, "k")
	ids := fleet(t, ctx, s, 3)
	addChannel(t, ctx, s, "c", rcv.url("/c"), "k")
	down(t, ctx, s, ids)
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := deliver.Drain(short, s, deliver.Options{})
	if err != nil || !res.DeadlineHit || res.Claimed != 0 || time.Since(start) > 30*time.Millisecond {
		t.Errorf("drain with 30ms left = %+v, %v after %v; want an immediate return", res, err, time.Since(start))
	}
	if res := drain(t, ctx, s, deliver.Options{StormThreshold: -1}); res.Delivered != 3 {
		t.Errorf("the next drain = %+v, want 3 delivered", res)
	}
}

// TestEventFromDelivery: what notify is told for the store's kinds.
func TestEventFromDelivery(t *testing.T) {
	at := time.Date(2026, 11, 23, 22, 0, 0, 0, time.UTC)
	tests := []struct {
		d              store.Delivery
		kind, from, to string
		name           string
	}{
		{store.Delivery{FlipID: 1, Kind: store.DeliverDown, ServerName: "web1", From: "ONLINE", To: "OFFLINE", At: at}, notify.KindDown, "ONLINE", "OFFLINE", "web1"},
		{store.Delivery{FlipID: 2, Kind: store.DeliverReminder, ServerName: "web1", From: "ONLINE", To: "OFFLINE", At: at, DownFor: time.Hour}, notify.KindReminder, "OFFLINE", "OFFLINE", "web1"},
		{store.Delivery{FlipID: 3, Kind: store.DeliverCutOff, From: "", To: store.StateCutOff, At: at}, notify.KindCutOff, "", store.StateCutOff, ""},
		{store.Delivery{FlipID: 4, Kind: store.DeliverCutOff, From: store.StateCutOff, To: store.StateReconnected, At: at}, notify.KindUp, store.StateCutOff, store.StateReconnected, "monitoring host"},
	}
	for _, tt := range tests {
		e := deliver.Event(tt.d)
		if e.Kind != tt.kind || e.From != tt.from || e.To != tt.to || e.ServerName != tt.name || e.ID != tt.d.FlipID || !e.At.Equal(at) || e.DownFor != tt.d.DownFor {
			t.Errorf("Event(%+v) = %+v", tt.d, e)
		}
	}
	m := deliver.Message([]store.Delivery{tests[0].d, tests[1].d}, "ops", "mon1", true)
	if !m.Grouped || m.Channel != "ops" || m.Source != "mon1" || len(m.Events) != 2 {
		t.Errorf("Message = %+v", m)
	}
}

// TestCutOffNamesTheMonitoringHost: the one message about a cut-off
// monitoring host names that host (it said "monitoring host (unknown) is
// cut off": a fleet event has no server to take a host from).
func TestCutOffNamesTheMonitoringHost(t *testing.T) {
	engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s := open(t)
		rcv := newReceiver(t, "k")
		fleet(t, ctx, s, 1)
		addChannel(t, ctx, s, "c", rcv.url("/c"), "k")
		if _, err := s.Evaluate(ctx, store.EvalParams{HostCutOff: true, CutOffHost: "mon-fra-1",
			CutOffReason: "monitoring host cut off (probe run 7 on mon-fra-1): 3 of 3 servers failed to connect"}); err != nil {
			t.Fatal(err)
		}
		drain(t, ctx, s, deliver.Options{})
		msgs, _ := rcv.snapshot()
		var found bool
		for _, m := range msgs {
			for _, e := range m.Events {
				if e.Kind == notify.KindCutOff {
					found = true
					if e.Host != "mon-fra-1" || !strings.Contains(m.Text, "monitoring host mon-fra-1 is cut off") {
						t.Errorf("cut-off event host %q, text %q; want mon-fra-1 named", e.Host, m.Text)
					}
				}
			}
		}
		if !found {
			t.Fatalf("no cut-off message among %+v", msgs)
		}
	})
}
