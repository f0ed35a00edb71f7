package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store"
)

// BenchmarkSharedTick is the store's side of one tick of shared probe
// runs, on one connection: claim a batch of 500 due servers, record their
// results, finish their leases, until the whole fleet is done. µs/server is what
// Postgres spends per probed server (three row writes: the lease claimed,
// the heartbeat, the lease finished), the figure behind the capacity table
// in the README. The fleet is 100,000 servers unless
// HEARTBEAT_BENCH_SERVERS says otherwise:
//
//	go test -run '^$' -bench SharedTick -benchtime 3x ./pkg/store/postgres
func BenchmarkSharedTick(b *testing.B) {
	servers, batch := 100000, 500
	if v := os.Getenv("HEARTBEAT_BENCH_SERVERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("HEARTBEAT_BENCH_SERVERS=%q: want a positive number", v)
		}
		servers = n
	}
	s := openMigrated(b, pgtest.URL(b))
	ctx := context.Background()
	specs := make([]store.ServerSpec, servers)
	for i := range specs {
		specs[i] = store.ServerSpec{Name: fmt.Sprintf("srv-%06d", i), Host: "127.0.0.1", Port: 1 + i%65000}
	}
	if _, err := s.ImportServers(ctx, specs); err != nil {
		b.Fatal(err)
	}
	// A tick of a millisecond: every server is due again by the next op
	// (and soon after it is finished, so an op stops at the fleet's size,
	// not when nothing is due).
	const tick = time.Millisecond
	results := make([]store.ProbeResult, 0, batch)
	ids := make([]int64, 0, batch)
	b.ResetTimer()
	for b.Loop() {
		run, err := s.StartSharedRun(ctx, "bench", store.DefaultLocation, 0, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		probed := 0
		for probed < servers {
			claimed, err := s.ClaimProbeTargets(ctx, run.ID, min(batch, servers-probed), time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			if len(claimed) == 0 {
				break
			}
			results, ids = results[:0], ids[:0]
			for i, sv := range claimed {
				results = append(results, store.ProbeResult{ServerID: sv.ID, OK: i%50 != 0, Latency: 3 * time.Millisecond})
				ids = append(ids, sv.ID)
			}
			if err := s.RecordProbeResults(ctx, results); err != nil {
				b.Fatal(err)
			}
			if err := s.FinishProbeTargets(ctx, run.ID, ids, nil, tick); err != nil {
				b.Fatal(err)
			}
			probed += len(claimed)
		}
		if probed != servers {
			b.Fatalf("a tick probed %d servers; want %d", probed, servers)
		}
		if _, err := s.FinishRun(ctx, run); err != nil {
			b.Fatal(err)
		}
		time.Sleep(2 * tick)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(servers), "µs/server")
}
