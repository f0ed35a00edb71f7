package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stacksense/heartbeat/pkg/store/sqlite"
	"github.com/stacksense/heartbeat/pkg/store/storetest"
)

// BenchmarkEvaluateMaintenance: a quiet round at 100,000 servers, without
// windows and with 1,000 servers in one. Run with
//
//	go test -run '^$' -bench EvaluateMaintenance -benchtime 5x ./pkg/store/sqlite/
func BenchmarkEvaluateMaintenance(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "hb.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchmarkEvaluateMaintenance(b, s, 100000)
}
