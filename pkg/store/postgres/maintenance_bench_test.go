package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store"
)

// BenchmarkEvaluateMaintenance measures a quiet evaluation round (nothing
// changes) at 100,000 servers, without maintenance windows and with 1,000
// servers inside one plus 10,000 windows of history, so the cost of
// judging windows is a figure, not a guess. Run with
//
//	go test -run '^$' -bench EvaluateMaintenance -benchtime 10x ./pkg/store/postgres/
func BenchmarkEvaluateMaintenance(b *testing.B) {
	const servers = 100000
	s := openMigrated(b, pgtest.URL(b))
	ctx := context.Background()
	specs := make([]store.ServerSpec, servers)
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
	for _, sv := range list[:10000] {
		ids = append(ids, sv.ID)
	}
	// History: 10,000 windows that ended, then 1,000 active.
	if _, err := s.StartMaintenance(ctx, store.MaintenanceSpec{ServerIDs: ids, For: time.Hour, Reason: "old"}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.EndMaintenance(ctx, nil, true); err != nil {
		b.Fatal(err)
	}
	if _, err := s.StartMaintenance(ctx, store.MaintenanceSpec{ServerIDs: ids[:1000], For: time.Hour, Reason: "now"}); err != nil {
		b.Fatal(err)
	}
	b.Run("1000InMaintenance", quiet)
}
