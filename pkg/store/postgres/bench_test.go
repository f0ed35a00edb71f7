package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store"
)

// BenchmarkRecordProbeResults writes one probe run's results for a
// 10,000-server fleet in batches of 500, as probe-ssh does. ns/op is the
// store time of a whole run; the target is well under a second.
func BenchmarkRecordProbeResults(b *testing.B) {
	const servers, batch = 10000, 500
	s := openMigrated(b, pgtest.URL(b))
	ctx := context.Background()
	specs := make([]store.ServerSpec, servers)
	for i := range specs {
		specs[i] = store.ServerSpec{Name: fmt.Sprintf("srv-%05d", i), Host: "127.0.0.1", Port: 1 + i%65000}
	}
	if _, err := s.ImportServers(ctx, specs); err != nil {
		b.Fatal(err)
	}
	list, err := s.Servers(ctx)
	if err != nil {
		b.Fatal(err)
	}
	results := make([]store.ProbeResult, len(list))
	for i, sv := range list {
		results[i] = store.ProbeResult{ServerID: sv.ID, OK: i%50 != 0, Latency: 3 * time.Millisecond}
		if i%50 == 0 {
			results[i].ErrorClass, results[i].Error = "timeout", "no SSH banner within 10s"
		}
	}
	// Without a location (as before locations), and with one, which
	// also keeps that location's last word per server.
	for _, loc := range []string{"", store.DefaultLocation} {
		b.Run("location="+loc, func(b *testing.B) {
			for i := range results {
				results[i].Location = loc
			}
			for b.Loop() {
				for i := 0; i < len(results); i += batch {
					if err := s.RecordProbeResults(ctx, results[i:min(i+batch, len(results))]); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/servers, "µs/server")
		})
	}
}
