package doctor_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/doctor"
	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/backend"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// eachStore runs fn against a fresh SQLite file and a fresh, migrated
// Postgres database.
func eachStore(t *testing.T, fn func(t *testing.T, s store.Store)) {
	open := func(t *testing.T, target backend.Target) store.Store {
		ctx := context.Background()
		target.ConnectTimeout = 5 * time.Second
		s, err := backend.Open(ctx, target)
		if s != nil {
			t.Cleanup(func() { s.Close() })
		}
		if err != nil && s != nil {
			_, err = s.Migrate(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, open(t, backend.Target{Engine: backend.SQLite, Path: filepath.Join(t.TempDir(), "hb.db")}))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, open(t, backend.Target{Engine: backend.Postgres, URL: pgtest.URL(t)}))
	})
}

// shifted is a store whose last run and clock the test decides.
type shifted struct {
	store.Store
	last, aborted *store.Run
	offset        time.Duration
}

func (s *shifted) LastFinishedRun(context.Context) (*store.Run, error) { return s.last, nil }
func (s *shifted) LastAbortedRun(context.Context) (*store.Run, error)  { return s.aborted, nil }

func (s *shifted) Now(ctx context.Context) (time.Time, error) {
	now, err := s.Store.Now(ctx)
	return now.Add(s.offset), err
}

// Close is a no-op: the real store is closed by the test's cleanup.
func (s *shifted) Close() error { return nil }

func runChecks(t *testing.T, s store.Store, clock func() time.Time) map[string]doctor.Result {
	t.Helper()
	results := doctor.Run(context.Background(), doctor.Config{
		Version:     "test",
		OpenStore:   func(context.Context) (store.Store, error) { return s, nil },
		StoreName:   "the store",
		Crontab:     func(context.Context) (string, error) { return "", nil },
		TimerActive: func(context.Context) (bool, error) { return true, nil },
		Clock:       clock,
	})
	m := map[string]doctor.Result{}
	for _, r := range results {
		m[r.Check] = r
	}
	return m
}

func TestLastRunAndClock(t *testing.T) {
	eachStore(t, func(t *testing.T, real store.Store) {
		ctx := context.Background()
		now, err := real.Now(ctx)
		if err != nil {
			t.Fatal(err)
		}
		at := func(ago time.Duration) *time.Time { v := now.Add(-ago); return &v }
		fresh := &store.Run{Host: "mon1", StartedAt: *at(12 * time.Second), FinishedAt: at(10 * time.Second), Servers: 3, Probed: 3, Succeeded: 3}
		tests := []struct {
			name      string
			last      *store.Run
			aborted   *store.Run
			offset    time.Duration // added to the store's clock
			check     string
			status    doctor.Status
			inMessage string
		}{
			{"fresh run", &store.Run{Host: "mon1", StartedAt: *at(12 * time.Second), FinishedAt: at(10 * time.Second), Servers: 3, Probed: 3, Succeeded: 3}, nil,
				0, doctor.CheckLastRun, doctor.OK, "last run finished 10s ago on mon1: 3/3 answered in 2.0s"},
			{"overdue run", &store.Run{Host: "mon1", StartedAt: *at(5 * time.Minute), FinishedAt: at(5 * time.Minute), Servers: 3, Probed: 3, Succeeded: 3}, nil,
				0, doctor.CheckLastRun, doctor.Fail, "probe-ssh is not running"},
			{"just inside 90 s", &store.Run{StartedAt: *at(89 * time.Second), FinishedAt: at(89 * time.Second)}, nil,
				0, doctor.CheckLastRun, doctor.OK, "1m29s ago on an unknown host"},
			{"deadline hit", &store.Run{Host: "mon1", StartedAt: *at(30 * time.Second), FinishedAt: at(5 * time.Second), Servers: 10, Probed: 4, DeadlineHit: true}, nil,
				0, doctor.CheckLastRun, doctor.Warn, "hit its deadline with 4 of 10 servers probed"},
			{"never ran", nil, nil, 0, doctor.CheckLastRun, doctor.Fail, "no probe-ssh run has finished"},
			{"killed run", fresh, &store.Run{ID: 41, Host: "mon2", StartedAt: *at(time.Hour)},
				0, doctor.CheckLastRun, doctor.Warn, "last run aborted: run 41 on host mon2"},
			{"killed run long ago", fresh, &store.Run{ID: 7, Host: "mon2", StartedAt: *at(48 * time.Hour)},
				0, doctor.CheckLastRun, doctor.OK, "last run finished 10s ago"},
			{"clock in step", nil, nil, 0, doctor.CheckClock, doctor.OK, "the store's clock is"},
			{"store ahead", nil, nil, 5 * time.Second, doctor.CheckClock, doctor.Warn, "ahead of this host's"},
			{"store behind", nil, nil, -8 * time.Second, doctor.CheckClock, doctor.Warn, "behind this host's"},
		}
		for _, tt := range tests {
			got := runChecks(t, &shifted{Store: real, last: tt.last, aborted: tt.aborted, offset: tt.offset}, nil)[tt.check]
			if got.Status != tt.status || !strings.Contains(got.Message, tt.inMessage) {
				t.Errorf("%s: %s %s %q, want %s with %q", tt.name, tt.check, got.Status, got.Message, tt.status, tt.inMessage)
			}
			if got.Status != doctor.OK && got.Fix == "" {
				t.Errorf("%s: %s is %s without a fix", tt.name, tt.check, got.Status)
			}
		}
		// The host's clock running ahead is the same as the store's behind.
		got := runChecks(t, real, func() time.Time { return time.Now().Add(time.Minute) })[doctor.CheckClock]
		if got.Status != doctor.Warn || !strings.Contains(got.Message, "behind this host's") || !strings.Contains(got.Fix, "NTP") {
			t.Errorf("host clock a minute ahead: %+v", got)
		}
	})
}

func TestScheduleReadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		crontab func(context.Context) (string, error)
		want    string
	}{
		{"crontab fails", func(context.Context) (string, error) { return "", context.DeadlineExceeded }, "cannot read the crontab"},
		{"nothing available", nil, "no crontab command and there is no systemd"},
	}
	for _, tt := range tests {
		results := doctor.Run(context.Background(), doctor.Config{Crontab: tt.crontab})
		var got doctor.Result
		for _, r := range results {
			if r.Check == doctor.CheckSchedule {
				got = r
			}
		}
		if got.Status != doctor.Fail || !strings.Contains(got.Message, tt.want) {
			t.Errorf("%s: %+v, want fail with %q", tt.name, got, tt.want)
		}
		if !doctor.Failed(results) {
			t.Errorf("%s: Failed() = false", tt.name)
		}
	}
}

func TestWriteText(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	err := doctor.WriteText(&b, []doctor.Result{
		{Check: "store", Status: doctor.OK, Message: "fine"},
		{Check: "ssh-key", Status: doctor.Fail, Message: "missing", Fix: "chmod 600 it"},
		{Check: "clock", Status: doctor.Skip, Message: "not checked"},
	})
	want := "ok    store    fine\n" +
		"FAIL  ssh-key  missing\n" +
		"               fix: chmod 600 it\n" +
		"skip  clock    not checked\n" +
		"NOT healthy: 1 ok, 0 warning(s), 1 failed, 1 skipped\n"
	if err != nil || b.String() != want {
		t.Errorf("WriteText:\n%s\nwant:\n%s", b.String(), want)
	}
}
