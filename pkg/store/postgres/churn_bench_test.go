package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store"
)

// BenchmarkHeartbeatChurn measures what heartbeat updates do to the
// heartbeats table: each op is one probe round that rewrites every
// server's row (RecordProbeResults in batches of 500), and the benchmark
// reports, after all rounds, the share of HOT updates, the dead tuples left
// and the table's size, with the migration's fillfactor (50) and with the
// default (100) for comparison. On the development VM (2 cores, Postgres
// 15),
//
//	HEARTBEAT_BENCH_SERVERS=20000 go test -run '^$' -bench HeartbeatChurn -benchtime 10x ./pkg/store/postgres
//
// printed 99.6 %HOT, 19k dead tuples, 3.4 MB at fillfactor 50 against
// 23 %HOT, 169k dead tuples, 14 MB at 100. The default fleet is 10,000
// servers so that `make bench` stays short.
func BenchmarkHeartbeatChurn(b *testing.B) {
	servers := 10000
	if v := os.Getenv("HEARTBEAT_BENCH_SERVERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("HEARTBEAT_BENCH_SERVERS=%q: want a positive number", v)
		}
		servers = n
	}
	for _, fillfactor := range []int{50, 100} {
		b.Run(fmt.Sprintf("fillfactor=%d", fillfactor), func(b *testing.B) {
			churn(b, servers, fillfactor)
		})
	}
}

func churn(b *testing.B, servers, fillfactor int) {
	const batch = 500
	ctx := context.Background()
	url := pgtest.URL(b)
	s := openMigrated(b, url)
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER TABLE heartbeats SET (fillfactor = %d)`, fillfactor)); err != nil {
		b.Fatal(err)
	}
	specs := make([]store.ServerSpec, servers)
	for i := range specs {
		specs[i] = store.ServerSpec{Name: fmt.Sprintf("srv-%06d", i), Host: "127.0.0.1"}
	}
	if _, err := s.ImportServers(ctx, specs); err != nil {
		b.Fatal(err)
	}
	list, err := s.Servers(ctx)
	if err != nil {
		b.Fatal(err)
	}
	results := make([]store.ProbeResult, len(list))
	round := func(n int) {
		for i, sv := range list {
			// Mostly successes, a few failures whose message changes, as
			// in a real fleet.
			results[i] = store.ProbeResult{ServerID: sv.ID, OK: (i+n)%50 != 0, Latency: time.Duration(1000+i%3000) * time.Microsecond}
			if !results[i].OK {
				results[i].ErrorClass, results[i].Error = "timeout", fmt.Sprintf("no SSH banner within 10s (round %d)", n)
			}
		}
		for i := 0; i < len(results); i += batch {
			if err := s.RecordProbeResults(ctx, results[i:min(i+batch, len(results))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	round(0) // the inserts, which are not what is measured
	if _, err := admin.Exec(ctx, `SELECT pg_stat_reset_single_table_counters('heartbeats'::regclass)`); err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		n++
		round(n)
	}
	b.StopTimer()
	// A backend sends its table statistics when it goes idle or exits:
	// close the store's sessions so every update is counted.
	s.Close()
	if _, err := admin.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
		b.Fatal(err)
	}
	var (
		upd, hot, dead int64
		size           int64
	)
	// The counters can lag the closed sessions by a moment; read until
	// every update of the benchmark is counted.
	want := int64(n) * int64(len(list))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := admin.Exec(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
			b.Fatal(err)
		}
		err := admin.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd, n_dead_tup, pg_table_size('heartbeats')
			FROM pg_stat_user_tables WHERE relname = 'heartbeats'`).Scan(&upd, &hot, &dead, &size)
		if err != nil {
			b.Fatal(err)
		}
		if upd >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if upd == 0 {
		b.Fatal("no updates counted")
	}
	b.ReportMetric(100*float64(hot)/float64(upd), "%HOT")
	b.ReportMetric(float64(dead), "dead-tuples")
	b.ReportMetric(float64(size)/(1<<20), "table-MB")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n)/float64(len(list)), "µs/update")
}
