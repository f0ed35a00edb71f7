package evaluate_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/evaluate"
	"github.com/stacksense/heartbeat/pkg/failure"
	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/backend"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func eachStore(t *testing.T, fn func(t *testing.T, ctx context.Context, s store.Store)) {
	run := func(t *testing.T, target backend.Target) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		target.ConnectTimeout = 5 * time.Second
		s, err := backend.Open(ctx, target)
		if s != nil {
			defer s.Close()
		}
		if err != nil && s != nil {
			_, err = s.Migrate(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(t, ctx, s)
	}
	t.Run("sqlite", func(t *testing.T) {
		run(t, backend.Target{Engine: backend.SQLite, Path: filepath.Join(t.TempDir(), "hb.db")})
	})
	t.Run("postgres", func(t *testing.T) { run(t, backend.Target{Engine: backend.Postgres, URL: pgtest.URL(t)}) })
}

// staleFleet registers three ssh servers that answered 50 s ago, judges
// them ONLINE, then narrows their window to 10 s so that all three are
// stale: the next round takes them down unless it decides otherwise.
func staleFleet(t *testing.T, ctx context.Context, s store.Store) []store.Server {
	now, err := s.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Server
	for _, name := range []string{"a", "b", "c"} {
		sv, err := s.AddServer(ctx, store.ServerSpec{Name: name, Host: name + ".example.net"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, OK: true, At: now.Add(-50 * time.Second)}}); err != nil {
			t.Fatal(err)
		}
		out = append(out, sv)
	}
	if _, err := evaluate.Round(ctx, s, evaluate.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, sv := range out {
		if _, err := s.UpdateServer(ctx, sv.ID, store.ServerSpec{Name: sv.Name, Host: sv.Host, StaleAfter: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func finishRun(t *testing.T, ctx context.Context, s store.Store, succeeded int, failed map[string]int) *store.Run {
	t.Helper()
	run, err := s.StartRun(ctx, "probe1", 3)
	if err != nil {
		t.Fatal(err)
	}
	run.Probed, run.Succeeded, run.FailedByClass = 3, succeeded, failed
	if run, err = s.FinishRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	return &run
}

func TestRoundHostCutOffTakesNoSSHServerDown(t *testing.T) {
	eachStore(t, func(t *testing.T, ctx context.Context, s store.Store) {
		staleFleet(t, ctx, s)
		// The last run could connect to none of them: the prober's
		// problem, not theirs. Read from the store, as serve-api and
		// `heartbeat evaluate` do.
		finishRun(t, ctx, s, 0, map[string]int{string(failure.Unreachable): 3})
		res, err := evaluate.Round(ctx, s, evaluate.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !res.HostCutOff || res.Suppressed != 3 || len(res.Flips) != 1 || res.Flips[0].To != store.StateCutOff {
			t.Fatalf("round after a cut-off run = %+v; want no down-flips, one cut-off event", res)
		}
		// The next run reaches the network again but the servers stay
		// silent: now they go down, stamped when they went stale.
		run := finishRun(t, ctx, s, 0, map[string]int{string(failure.Auth): 3})
		res, err = evaluate.Round(ctx, s, evaluate.Options{Run: run})
		if err != nil {
			t.Fatal(err)
		}
		down := 0
		for _, f := range res.Flips {
			if f.To == store.StateOffline {
				down++
			}
		}
		if res.HostCutOff || down != 3 {
			t.Errorf("round after a normal run = %+v; want 3 down-flips", res)
		}
	})
}

func TestRoundIgnoresAnOldCutOffRun(t *testing.T) {
	eachStore(t, func(t *testing.T, ctx context.Context, s store.Store) {
		staleFleet(t, ctx, s)
		run := finishRun(t, ctx, s, 0, map[string]int{string(failure.Refused): 3})
		// A probe that died right after a cut-off run must not shield the
		// fleet for ever: seen 2 minutes later, that run is overdue.
		finished := run.FinishedAt.Add(-2 * time.Minute)
		run.FinishedAt = &finished
		res, err := evaluate.Round(ctx, s, evaluate.Options{Run: run})
		if err != nil {
			t.Fatal(err)
		}
		if res.HostCutOff || len(res.Flips) != 3 {
			t.Errorf("round = %+v; want the servers down and no cut-off", res)
		}
	})
}
