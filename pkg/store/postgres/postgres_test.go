package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/postgres"
	"github.com/stacksense/heartbeat/pkg/store/storetest"
)

func TestMain(m *testing.M) {
	// The store promises UTC whatever the process's local zone: pgx hands
	// timestamptz back in time.Local, so run everything somewhere else.
	time.Local = time.FixedZone("EST", -5*3600)
	pgtest.Main(m)
}

// openMigrated returns a store on a fresh database with the schema applied.
func openMigrated(t testing.TB, url string) *postgres.Store {
	t.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if !errors.Is(err, store.ErrSchemaBehind) {
		t.Fatalf("Open on an empty database: %v, want ErrSchemaBehind", err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPostgresConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		// A session time zone other than UTC too, so text-format times
		// and now()::text would show it.
		return openMigrated(t, withParam(pgtest.URL(t), "timezone", "America/New_York"))
	})
}

// withParam adds a query parameter (a runtime setting for pgx) to a URL.
func withParam(raw, key, value string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestPostgresSchemaBehindNamesMigrate(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if !errors.Is(err, store.ErrSchemaBehind) || !strings.Contains(err.Error(), "heartbeat migrate") {
		t.Fatalf("Open error = %v, want ErrSchemaBehind naming `heartbeat migrate`", err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s2, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatalf("Open after migrate: %v", err)
	}
	s2.Close()
}

func TestPostgresConcurrentMigrate(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	applied := make([]int, 4)
	errs := make([]error, 4)
	for i := range applied {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(ctx, url, postgres.Options{})
			if s == nil {
				errs[i] = err
				return
			}
			defer s.Close()
			applied[i], errs[i] = s.Migrate(ctx)
		}()
	}
	wg.Wait()
	total := 0
	for i := range applied {
		if errs[i] != nil {
			t.Errorf("migrate %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	s := openMigratedAlready(t, url)
	n, err := s.Pending(ctx)
	if err != nil || n != 0 {
		t.Errorf("pending after concurrent migrate = %d, %v", n, err)
	}
	if total == 0 {
		t.Error("no process applied the migrations")
	}
}

func openMigratedAlready(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPostgresUnreachableFailsFastAndRedacts(t *testing.T) {
	t.Parallel()
	// 192.0.2.0/24 is TEST-NET-1: routed nowhere, so the connect hangs
	// until the timeout rather than being refused.
	url := "postgres://admin:s3cret@192.0.2.1:5432/db"
	start := time.Now()
	_, err := postgres.Open(context.Background(), url, postgres.Options{ConnectTimeout: 500 * time.Millisecond})
	if err == nil {
		t.Fatal("Open succeeded against an unroutable address")
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("error = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error leaks the password: %v", err)
	}
	if !strings.Contains(err.Error(), "192.0.2.1") {
		t.Errorf("error does not name the store: %v", err)
	}
	// Loose bound: the point is "no hang", not a timing.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open took %v with a 500ms connect timeout", d)
	}
}

func TestPostgresMalformedURLRedacts(t *testing.T) {
	t.Parallel()
	_, err := postgres.Open(context.Background(), "postgres://u:hunter2@host:notaport/db", postgres.Options{})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error = %v, want a failure without the password", err)
	}
}

// Every migration's Down undoes its Up: down to an empty schema and up
// again leaves a store that works and has every setting.
func TestPostgresMigrateUpDownUp(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	s := openMigrated(t, url)
	if _, err := s.AddServer(ctx, store.ServerSpec{Name: "before", Host: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := s.MigrateDownTo(ctx, 0); err != nil {
		t.Fatalf("down to 0: %v", err)
	}
	pending, err := s.Pending(ctx)
	if err != nil || pending < 3 {
		t.Fatalf("pending after down = %d, %v; want every migration", pending, err)
	}
	if n, err := s.Migrate(ctx); err != nil || n != pending {
		t.Fatalf("up again applied %d, %v; want %d", n, err, pending)
	}
	storetest.EmptySchemaWorks(t, s)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var opts []string
	if err := conn.QueryRow(ctx, `SELECT coalesce(reloptions, '{}') FROM pg_class WHERE relname = 'heartbeats'`).Scan(&opts); err != nil {
		t.Fatal(err)
	}
	if strings.Join(opts, ",") != "fillfactor=50" {
		t.Errorf("heartbeats reloptions = %v, want fillfactor=50", opts)
	}
}

func TestPostgresSessionTimeoutDefaults(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t, pgtest.URL(t))
	for name, want := range map[string]string{"statement_timeout": "30s", "lock_timeout": "10s"} {
		if got, err := postgres.Setting(ctx, s, name); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
}

// A table locked by someone else makes a read fail within lock_timeout
// with an error that says it waited for a lock, instead of hanging a
// Nagios check until it is killed.
func TestPostgresLockTimeout(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	openMigrated(t, url).Close()
	holder, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE servers IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts postgres.Options
		want []string
	}{
		{"lock_timeout", postgres.Options{LockTimeout: 200 * time.Millisecond}, []string{"waited 200ms", "lock held by another session"}},
		{"statement_timeout", postgres.Options{StatementTimeout: 300 * time.Millisecond, LockTimeout: -1}, []string{"longer than 300ms", "statement_timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := postgres.Open(ctx, url, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// The test's own bound: without the session timeouts Status
			// would wait for the lock until this expires, and fail here
			// with a deadline error instead of the lock message.
			sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, err = s.Status(sctx)
			if err == nil {
				t.Fatal("Status succeeded while the table was locked")
			}
			msg := err.Error()
			for _, w := range append(tc.want, "postgres ") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if !errors.Is(err, store.ErrUnavailable) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line matching ErrUnavailable", msg)
			}
		})
	}
}

func TestPostgresSessionTimeoutFromURL(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	openMigrated(t, url).Close()
	s, err := postgres.Open(ctx, withParam(url, "lock_timeout", "45s"), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := postgres.Setting(ctx, s, "lock_timeout"); err != nil || got != "45s" {
		t.Errorf("lock_timeout with the URL's 45s = %q, %v", got, err)
	}
}

func TestPostgresLeaseConformance(t *testing.T) {
	storetest.RunLeases(t, func(t *testing.T) storetest.LeaseStore {
		return openMigrated(t, withParam(pgtest.URL(t), "timezone", "America/New_York"))
	})
}
