package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

// BenchmarkEvaluate measures one evaluation round (Store.Evaluate) over a
// fleet of n servers, as probe-ssh runs at the end of each run and
// serve-api every 10 seconds. "steady" is the common tick: nothing
// changed. "flapping-1pct" is a tick in which 1% of the fleet changes
// state (every iteration moves those servers' heartbeats between fresh
// and stale, outside the timer). Targets for 100,000 servers: < 300 ms on
// Postgres, < 1 s on SQLite.
func BenchmarkEvaluate(b *testing.B, s store.Store, n int) {
	ctx := context.Background()
	list := benchFleet(b, s, n)
	now, err := s.Now(ctx)
	if err != nil {
		b.Fatal(err)
	}
	record := func(ids []store.Server, at time.Time) {
		for i := 0; i < len(ids); i += 1000 {
			batch := make([]store.ProbeResult, 0, 1000)
			for _, sv := range ids[i:min(i+1000, len(ids))] {
				batch = append(batch, store.ProbeResult{ServerID: sv.ID, OK: true, At: at})
			}
			if err := s.RecordProbeResults(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Fresh for the next hour of benchmark time.
	record(list, now.Add(time.Hour))
	if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil {
		b.Fatal(err)
	}
	b.Run("steady", func(b *testing.B) {
		for b.Loop() {
			res, err := s.Evaluate(ctx, store.EvalParams{})
			if err != nil || len(res.Flips) != 0 {
				b.Fatalf("Evaluate = %d flips, %v", len(res.Flips), err)
			}
		}
	})
	b.Run("flapping-1pct", func(b *testing.B) {
		some := list[:n/100]
		stale := true
		for b.Loop() {
			b.StopTimer()
			at := now.Add(time.Hour)
			if stale {
				at = now.Add(-time.Hour)
			}
			record(some, at)
			b.StartTimer()
			res, err := s.Evaluate(ctx, store.EvalParams{})
			if err != nil || len(res.Flips) != len(some) {
				b.Fatalf("Evaluate = %d flips, %v; want %d", len(res.Flips), err, len(some))
			}
			stale = !stale
		}
	})
}

// benchFleet registers n ssh servers in one import and returns them.
func benchFleet(b *testing.B, s store.Store, n int) []store.Server {
	ctx := context.Background()
	specs := make([]store.ServerSpec, n)
	for i := range specs {
		specs[i] = store.ServerSpec{Name: fmt.Sprintf("srv-%06d", i), Host: "127.0.0.1", Port: 1 + i%65000}
	}
	if _, err := s.ImportServers(ctx, specs); err != nil {
		b.Fatal(err)
	}
	list, err := s.Servers(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return list
}

// BenchmarkEvaluateMaintenance measures a quiet evaluation round (nothing
// changes) over n servers, without maintenance windows and with 1,000
// servers inside one plus 10,000 windows of history, so the cost of
// judging windows is a figure, not a guess.
func BenchmarkEvaluateMaintenance(b *testing.B, s store.Store, n int) {
	ctx := context.Background()
	list := benchFleet(b, s, n)
	quiet := func(b *testing.B) {
		if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil { // settle
			b.Fatal(err)
		}
		for b.Loop() {
			res, err := s.Evaluate(ctx, store.EvalParams{})
			if err != nil || len(res.Flips) != 0 {
				b.Fatalf("quiet round: %d flips, %v", len(res.Flips), err)
			}
		}
	}
	b.Run("NoWindows", quiet)
	ids := make([]int64, 0, 10000)
	for _, sv := range list[:min(10000, len(list))] {
		ids = append(ids, sv.ID)
	}
	if _, err := s.StartMaintenance(ctx, store.MaintenanceSpec{ServerIDs: ids, For: time.Hour, Reason: "old"}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.EndMaintenance(ctx, nil, true); err != nil {
		b.Fatal(err)
	}
	if _, err := s.StartMaintenance(ctx, store.MaintenanceSpec{ServerIDs: ids[:min(1000, len(ids))], For: time.Hour, Reason: "now"}); err != nil {
		b.Fatal(err)
	}
	b.Run("1000InMaintenance", quiet)
}
