package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store"
)

// BenchmarkStatusOneServer compares what `status --server` and GET
// /api/servers/{id} cost at 100,000 servers: reading the whole fleet and
// picking one (Status, what they did) against ServerStatus. Run with
//
//	go test -run '^$' -bench StatusOneServer -benchtime 20x ./pkg/store/postgres/
func BenchmarkStatusOneServer(b *testing.B) {
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
	sv, err := s.ServerByName(ctx, "srv-050000")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Status", func(b *testing.B) {
		for b.Loop() {
			snap, err := s.Status(ctx)
			if err != nil || len(snap.Servers) != servers {
				b.Fatal(err)
			}
		}
	})
	b.Run("ServerStatus", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := s.ServerStatus(ctx, sv.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
