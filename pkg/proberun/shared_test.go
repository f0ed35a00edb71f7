package proberun_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/hostkey"
	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/probe"
	"github.com/stacksense/heartbeat/pkg/proberun"
	"github.com/stacksense/heartbeat/pkg/sshtest"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/postgres"

	"golang.org/x/crypto/ssh"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// sharedEnv is one Postgres store with n registered servers, all of them
// in-process SSH servers that accept keyPath.
type sharedEnv struct {
	url     string
	store   *postgres.Store
	fleet   *sshtest.Fleet
	keyPath string
}

func newSharedEnv(t *testing.T, n int, fleetOpts ...func(*sshtest.Config)) *sharedEnv {
	t.Helper()
	ctx := context.Background()
	url := pgtest.URL(t)
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if s == nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	key, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(t.TempDir(), "id_ed25519")
	if err := key.WriteFile(keyPath, nil); err != nil {
		t.Fatal(err)
	}
	fc := sshtest.Config{Groups: []sshtest.Group{{Mode: sshtest.ModeOK, Count: n}},
		AuthorizedKeys: []ssh.PublicKey{key.PublicKey()}, SharedHostKey: true}
	for _, o := range fleetOpts {
		o(&fc)
	}
	f, err := sshtest.Start(ctx, fc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	specs := make([]store.ServerSpec, n)
	for i, sv := range f.Servers() {
		specs[i] = store.ServerSpec{Name: fmt.Sprintf("srv-%04d", i), Host: sv.Host, Port: sv.Port, User: "probe"}
	}
	if _, err := s.ImportServers(ctx, specs); err != nil {
		t.Fatal(err)
	}
	return &sharedEnv{url: url, store: s, fleet: f, keyPath: keyPath}
}

func (e *sharedEnv) config(host string, tick time.Duration) proberun.Config {
	return proberun.Config{Host: host, User: "probe", Auth: probe.AuthConfig{KeyPath: e.keyPath}, Policy: hostkey.PolicyPin,
		Concurrency: 16, Timeout: 20 * time.Second, Deadline: 60 * time.Second, Tick: tick, ClaimBatch: 25}
}

// accepts returns how many connections each server has accepted.
func (e *sharedEnv) accepts() []int64 {
	out := make([]int64, e.fleet.Len())
	for i, sv := range e.fleet.Servers() {
		out[i] = sv.Accepts()
	}
	return out
}

// executeAll runs one proberun.Execute per host at once, each with its own
// connection pool as separate processes have, and returns their outcomes.
func (e *sharedEnv) executeAll(t *testing.T, tick time.Duration, hosts ...string) []proberun.Outcome {
	t.Helper()
	stores := make([]*postgres.Store, len(hosts))
	for i := range hosts {
		s, err := postgres.Open(context.Background(), e.url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	outs := make([]proberun.Outcome, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = proberun.Execute(context.Background(), stores[i], e.config(h, tick))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("run on %s: %v", hosts[i], err)
		}
	}
	return outs
}

// Two and four probers at once split one fleet: every server is probed
// exactly once (counted at the servers), the runs' shares add up to the
// fleet, and a run right after finds nothing due until the next tick.
func TestPostgresSharedRunsSplitTheFleet(t *testing.T) {
	const n = 240
	for _, probers := range []int{2, 4} {
		t.Run(fmt.Sprintf("%d probers", probers), func(t *testing.T) {
			e := newSharedEnv(t, n)
			hosts := make([]string, probers)
			for i := range hosts {
				hosts[i] = fmt.Sprintf("probe-%c", 'a'+i)
			}
			// A tick of an hour: nothing probed now is due again within
			// the test.
			outs := e.executeAll(t, time.Hour, hosts...)
			claimed, probed := 0, 0
			for i, o := range outs {
				t.Logf("%s claimed %d, probed %d, %d answered", hosts[i], o.Run.Servers, o.Run.Probed, o.Run.Succeeded)
				claimed += o.Run.Servers
				probed += o.Run.Probed
				if o.Run.Probed != o.Run.Servers || o.Run.Succeeded != o.Run.Probed {
					t.Errorf("%s: %+v", hosts[i], o.Run)
				}
			}
			if claimed != n || probed != n {
				t.Errorf("claimed %d, probed %d; want %d each", claimed, probed, n)
			}
			for i, a := range e.accepts() {
				if a != 1 {
					t.Errorf("server %d accepted %d connections; want exactly 1", i, a)
				}
			}
			again := e.executeAll(t, time.Hour, hosts[0])
			if again[0].Run.Servers != 0 {
				t.Errorf("a run in the same tick claimed %d servers; want 0", again[0].Run.Servers)
			}
			snap, err := e.store.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, sv := range snap.Servers {
				if sv.LastHeartbeat == nil {
					t.Errorf("%s has no heartbeat", sv.Name)
				}
			}
		})
	}
}

// The next tick finds the whole fleet due again.
func TestPostgresSharedRunsNextTick(t *testing.T) {
	const n = 40
	e := newSharedEnv(t, n)
	tick := 2 * time.Second
	e.executeAll(t, tick, "probe-a", "probe-b")
	time.Sleep(tick + 100*time.Millisecond)
	outs := e.executeAll(t, tick, "probe-a", "probe-b")
	if got := outs[0].Run.Servers + outs[1].Run.Servers; got != n {
		t.Errorf("second tick claimed %d servers; want %d", got, n)
	}
	for i, a := range e.accepts() {
		if a != 2 {
			t.Errorf("server %d accepted %d connections over two ticks; want 2", i, a)
		}
	}
}

// A prober that claims and dies (here: claims with a short lease and never
// records) keeps its servers only until the lease expires; then the next
// run probes them, and nothing else.
func TestPostgresSharedRunTakesOverExpiredLeases(t *testing.T) {
	const n, dead = 60, 20
	e := newSharedEnv(t, n)
	ctx := context.Background()
	run, err := e.store.StartSharedRun(ctx, "probe-dead", store.DefaultLocation, 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lease := 2 * time.Second
	taken, err := e.store.ClaimProbeTargets(ctx, run.ID, dead, lease)
	if err != nil || len(taken) != dead {
		t.Fatalf("claim: %d servers, %v", len(taken), err)
	}
	claimedAt := time.Now()
	first := e.executeAll(t, time.Hour, "probe-live")
	if first[0].Run.Servers != n-dead {
		t.Errorf("while the lease runs, the live prober claimed %d; want %d", first[0].Run.Servers, n-dead)
	}
	time.Sleep(time.Until(claimedAt.Add(lease + 200*time.Millisecond)))
	second := e.executeAll(t, time.Hour, "probe-live")
	if second[0].Run.Servers != dead {
		t.Errorf("after the lease expired, the live prober claimed %d; want the dead one's %d", second[0].Run.Servers, dead)
	}
	for i, a := range e.accepts() {
		if a != 1 {
			t.Errorf("server %d accepted %d connections; want exactly 1", i, a)
		}
	}
}

// Mixed versions: while a probe-ssh from before leases holds the
// store-wide lock (TryProbeLock, on its own session) and probes every
// server, a shared run skips its tick and says why; and while a shared run
// holds its locks, that older run's try fails.
func TestPostgresSharedRunSkipsBesideAnOlderBinary(t *testing.T) {
	e := newSharedEnv(t, 4)
	ctx := context.Background()
	old, ok, err := e.store.TryProbeLock(ctx)
	if err != nil || !ok {
		t.Fatalf("older binary's lock = %v, %v", ok, err)
	}
	_, err = proberun.Execute(ctx, e.store, e.config("probe-new", time.Hour))
	if !errors.Is(err, proberun.ErrLocked) || !errors.Is(err, proberun.ErrOlderRun) || !strings.Contains(err.Error(), "older heartbeat") {
		t.Errorf("shared run beside an older binary's run: %v; want ErrOlderRun naming the older heartbeat", err)
	}
	for i, a := range e.accepts() {
		if a != 0 {
			t.Errorf("server %d accepted %d connections beside the older run; want 0", i, a)
		}
	}
	if err := old.Release(ctx); err != nil {
		t.Fatal(err)
	}

	// The older binary tries while a shared run holds its locks.
	other, err := postgres.Open(ctx, e.url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cfg := e.config("probe-new", time.Hour)
	var (
		once  sync.Once
		tried bool
	)
	cfg.OnResult = func(string, probe.Result) {
		once.Do(func() {
			l, ok, err := other.TryProbeLock(ctx)
			if ok {
				l.Release(ctx)
			}
			if err != nil {
				t.Error(err)
			}
			tried = ok
		})
	}
	if _, err := proberun.Execute(ctx, e.store, cfg); err != nil {
		t.Fatal(err)
	}
	if tried {
		t.Error("an older binary took the store-wide lock while a shared run ran")
	}
}

// With many workers and a small fleet, two hosts still share it: a run
// claims no more than its workers can start, starting small and growing
// as probes finish, instead of taking the whole fleet in one claim of up
// to DefaultClaimBatch.
func TestPostgresSharedRunsSplitASmallFleetEvenly(t *testing.T) {
	const n = 200
	// Servers that take 300 ms to answer, so a run that starts a moment
	// after the other (a loaded CI machine) still finds most of the fleet
	// unclaimed: the first run's claims grow one window of answers at a
	// time. With instant answers it had claimed 162 of 200 before the
	// second run began.
	e := newSharedEnv(t, n, func(c *sshtest.Config) {
		c.Groups, c.SlowDelay = []sshtest.Group{{Mode: sshtest.ModeSlow, Count: n}}, 300*time.Millisecond
	})
	ctx := context.Background()
	stores := make([]*postgres.Store, 2)
	for i := range stores {
		s, err := postgres.Open(ctx, e.url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	outs := make([]proberun.Outcome, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, host := range []string{"probe-a", "probe-b"} {
		cfg := e.config(host, time.Hour)
		cfg.Concurrency, cfg.ClaimBatch = 512, 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = proberun.Execute(ctx, stores[i], cfg)
		}()
	}
	wg.Wait()
	total := 0
	for i, o := range outs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Logf("run %d claimed %d of %d", i, o.Run.Servers, n)
		total += o.Run.Servers
		// An even split is 100 each; a quarter leaves room for one run
		// starting a little late on a loaded machine.
		if o.Run.Servers < n/4 {
			t.Errorf("run %d claimed %d of %d servers; want at least %d", i, o.Run.Servers, n, n/4)
		}
	}
	if total != n {
		t.Errorf("runs claimed %d servers together; want %d", total, n)
	}
}
