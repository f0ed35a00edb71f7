package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/storetest"
)

// TestPostgresClaimFromTwoConnections: two stores (separate pools, as two
// hosts would have) claim from one database at once; every delivery is
// claimed exactly once.
func TestPostgresClaimFromTwoConnections(t *testing.T) {
	url := pgtest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first := openMigrated(t, url)
	second := openMigratedAlready(t, url)

	const servers = 60
	var ids []int64
	for i := range servers {
		sv, err := first.AddServer(ctx, store.ServerSpec{Name: fmt.Sprintf("s%02d", i), Host: "10.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sv.ID)
		if err := first.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, OK: true}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := first.Evaluate(ctx, store.EvalParams{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"c1", "c2", "c3"} {
		if _, err := first.AddChannel(ctx, store.ChannelSpec{Name: name, URL: "webhook+http://127.0.0.1:9/", AllServers: true}); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-10 * time.Minute)
	var results []store.ProbeResult
	for _, id := range ids {
		results = append(results, store.ProbeResult{ServerID: id, OK: true, At: old})
	}
	if err := first.RecordProbeResults(ctx, results); err != nil {
		t.Fatal(err)
	}
	if res, err := second.Evaluate(ctx, store.EvalParams{}); err != nil || len(res.Flips) != servers {
		t.Fatalf("Evaluate = %d flips, %v", len(res.Flips), err)
	}
	// Both hosts enqueue at once: each pair is queued once.
	var wg sync.WaitGroup
	queued := make([]int, 2)
	for i, s := range []store.Store{first, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.EnqueueDeliveries(ctx, store.EnqueueParams{})
			if err != nil {
				t.Errorf("EnqueueDeliveries: %v", err)
			}
			queued[i] = n.Flips
		}()
	}
	wg.Wait()
	if queued[0]+queued[1] != 3*servers {
		t.Fatalf("queued %v, want %d in all", queued, 3*servers)
	}

	count := storetest.ClaimConcurrently(t, ctx, []store.Store{first, second, first, second}, 5)
	if len(count) != 3*servers {
		t.Errorf("claimed %d distinct deliveries, want %d", len(count), 3*servers)
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("delivery %d claimed %d times", id, n)
		}
	}
}
