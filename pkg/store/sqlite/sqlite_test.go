package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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

// childOpenEnv, when set in the environment, makes this test binary a child
// that opens the store at that path and exits: 0 if Open succeeded, 1 with
// the error on stderr if not. The parent starts several at once, so the
// race is between processes, as between cron jobs, not goroutines.
const childOpenEnv = "HEARTBEAT_TEST_SQLITE_OPEN"

func TestMain(m *testing.M) {
	if path := os.Getenv(childWriteEnv); path != "" {
		os.Exit(writeChild(path))
	}
	if path := os.Getenv(childOpenEnv); path != "" {
		// Wait for the parent to close stdin, so every child reaches Open
		// at the same moment instead of in start-up order.
		io.Copy(io.Discard, os.Stdin)
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		s.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestConcurrentFirstOpenFromProcesses(t *testing.T) {
	const procs = 6
	for trial := 0; trial < 3; trial++ {
		path := filepath.Join(t.TempDir(), "fresh.db")
		var (
			cmds   []*exec.Cmd
			stdins []io.Closer
			errs   = make([]*bytes.Buffer, procs)
		)
		for i := 0; i < procs; i++ {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childOpenEnv+"="+path)
			errs[i] = new(bytes.Buffer)
			cmd.Stderr = errs[i]
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, stdins = append(cmds, cmd), append(stdins, in)
		}
		for _, in := range stdins {
			in.Close()
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Errorf("trial %d: process %d opening a fresh store: %v: %s", trial, i, err, strings.TrimSpace(errs[i].String()))
			}
		}
	}
}

// Every migration's Down undoes its Up: down to an empty schema and up
// again leaves a store that works.
func TestMigrateUpDownUp(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if _, err := s.AddServer(ctx, store.ServerSpec{Name: "before", Host: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := s.MigrateDownTo(ctx, 0); err != nil {
		t.Fatalf("down to 0: %v", err)
	}
	if _, err := s.Servers(ctx); err == nil {
		t.Fatal("servers table still there after migrating down to 0")
	}
	n, err := s.Migrate(ctx)
	if err != nil || n < 3 {
		t.Fatalf("up again applied %d, %v; want every migration", n, err)
	}
	storetest.EmptySchemaWorks(t, s)
}

// A path with characters an SQLite URI gives meaning to ('#', '?', '%')
// opens exactly that file, not a truncated name beside it.
func TestOpenPathWithURICharacters(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "run#01", "a?b%20c")
	path := filepath.Join(dir, "hb.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddServer(ctx, store.ServerSpec{Name: "kept", Host: "h"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at the path given: %v", err)
	}
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ServerByName(ctx, "kept"); err != nil {
		t.Errorf("reopened store lost the server: %v", err)
	}
}

// A process stopped while holding the open/migration lock (SIGSTOP, a
// hung disk) makes the next open fail when its context ends, naming the
// lock, instead of hanging the command.
func TestOpenGivesUpOnAHeldMigrationLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hb.db")
	f, err := os.OpenFile(path+".migrate.lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	s, err := sqlite.Open(ctx, path)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded while another process held the migration lock")
	}
	if !strings.Contains(err.Error(), ".migrate.lock") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %q does not name the lock and the deadline", err)
	}
	f.Close() // the holder goes away: the next open proceeds
	s, err = sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open after the lock was released: %v", err)
	}
	s.Close()
}
