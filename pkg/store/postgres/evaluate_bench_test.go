package postgres_test

import (
	"testing"

	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store/storetest"
)

// BenchmarkEvaluate: one evaluation round at 100,000 servers (target
// < 300 ms). Run with
//
//	go test -run '^$' -bench Evaluate -benchtime 10x ./pkg/store/postgres/
func BenchmarkEvaluate(b *testing.B) {
	storetest.BenchmarkEvaluate(b, openMigrated(b, pgtest.URL(b)), 100000)
}
