package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stacksense/heartbeat/pkg/store/sqlite"
	"github.com/stacksense/heartbeat/pkg/store/storetest"
)

// BenchmarkEvaluate: one evaluation round at 100,000 servers (target
// < 1 s). Run with
//
//	go test -run '^$' -bench Evaluate -benchtime 10x ./pkg/store/sqlite/
func BenchmarkEvaluate(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "heartbeat.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchmarkEvaluate(b, s, 100000)
}
