package postgres_test

import (
	"testing"

	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store/storetest"
)

// BenchmarkEvaluateMaintenance: a quiet round at 100,000 servers, without
// windows and with 1,000 servers in one. Run with
//
//	go test -run '^$' -bench EvaluateMaintenance -benchtime 10x ./pkg/store/postgres/
func BenchmarkEvaluateMaintenance(b *testing.B) {
	storetest.BenchmarkEvaluateMaintenance(b, openMigrated(b, pgtest.URL(b)), 100000)
}
