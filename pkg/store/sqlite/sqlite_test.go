package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/sqlite"
	"github.com/stacksense/heartbeat/pkg/store/storetest"
)

func openTemp(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state", "heartbeat.db"))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func TestOpenCreatesPrivateDirectoryAndMigratesOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "state")
	path := filepath.Join(dir, "hb.db")
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("store directory mode = %o, want 700", perm)
	}
	if n, err := s.Migrate(ctx); err != nil || n != 0 {
		t.Errorf("second Migrate applied %d, %v; want 0 (Open already migrated)", n, err)
	}
	if _, err := s.AddServer(ctx, store.ServerSpec{Name: "kept", Host: "h"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Reopening keeps the data: nothing is lost between commands.
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ServerByName(ctx, "kept"); err != nil {
		t.Errorf("after reopen: %v", err)
	}
}

func TestOpenUnwritableLocation(t *testing.T) {
	// A path under a regular file fails even for root, who ignores
	// directory permissions.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Open(context.Background(), filepath.Join(f, "x.db")); err == nil {
		t.Fatal("Open under a regular file succeeded, want an error")
	}
}
