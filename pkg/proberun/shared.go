package proberun

import (
	"context"
	"sync"
	"time"

	"github.com/stacksense/heartbeat/pkg/probe"
	"github.com/stacksense/heartbeat/pkg/store"
)

// Defaults for runs that share the fleet (a store.ProbeLeaser).
const (
	// DefaultTick is cron's interval: two lines, 30 s apart.
	DefaultTick = 30 * time.Second
	// DefaultClaimBatch caps one claim: a claim of 500 is one statement
	// of a few milliseconds, and smaller claims keep the lease short.
	DefaultClaimBatch = 500
	// leaseMargin is added to every lease for the clock and scheduling.
	leaseMargin = time.Second
	// minStaleRunAge is how long another host's open run is left alone
	// before a shared run closes it as aborted.
	minStaleRunAge = 10 * time.Minute
)

func tickOf(cfg Config) time.Duration {
	if cfg.Tick > 0 {
		return cfg.Tick
	}
	return DefaultTick
}

// staleRunAge is how old another host's open run must be before it is
// certainly dead: far longer than any run lasts.
func staleRunAge(cfg Config) time.Duration {
	return max(minStaleRunAge, 2*(cfg.Deadline+2*cfg.StoreTimeout))
}

// targetInfo is what the sink needs to know about each server it gets a
// result for; a shared run learns its servers as it claims them, on the
// feeder's goroutine, so the map is guarded.
type targetInfo struct {
	mu sync.Mutex
	m  map[int64]serverInfo
}

type serverInfo struct {
	name   string
	pinned bool
	warned bool
}

func newTargetInfo(servers []store.Server, targets []probe.Target, names map[int64]string) *targetInfo {
	ti := &targetInfo{m: make(map[int64]serverInfo, len(targets))}
	for _, t := range targets {
		ti.m[t.ServerID] = serverInfo{name: names[t.ServerID], pinned: t.PinnedHostKey != nil}
	}
	for _, sv := range servers {
		if i, ok := ti.m[sv.ID]; ok && sv.SeenHostKey != nil {
			i.warned = true
			ti.m[sv.ID] = i
		}
	}
	return ti
}

func (ti *targetInfo) get(id int64) serverInfo {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return ti.m[id]
}

func (ti *targetInfo) learn(servers []store.Server, targets []probe.Target) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	seen := make(map[int64]bool, len(servers))
	for _, sv := range servers {
		seen[sv.ID] = sv.SeenHostKey != nil
	}
	for _, t := range targets {
		ti.m[t.ServerID] = serverInfo{name: t.Name, pinned: t.PinnedHostKey != nil, warned: seen[t.ServerID]}
	}
}

// claimer feeds a shared run: each call claims the next batch of due
// servers, until none is due, a claim fails, or the run is too close to its
// deadline for a new probe to finish.
//
// Sizes: a claim takes no more servers than the run's workers can start
// now (its window less the probes in flight), so a host never sits on
// servers another host's idle workers could probe. The window starts at
// firstClaim and grows by one for each probe that finishes (doubling each
// round of probes, as TCP's slow start does) up to --concurrency: hosts
// that start together take turns from the first claim, and a host with
// 512 workers cannot take a fleet of 600 in one claim before the others
// have claimed anything. A fleet larger than the hosts' workers keeps
// them all busy once the windows have grown, within a few rounds.
//
// Leases: every claimed server starts at once (a free worker waits for
// it), and is written within a --timeout plus a result batch and a store
// write. The lease is 2 × timeout + the store timeout + 1 s, never beyond
// the run's own end (deadline + store timeout + 1 s): a host that dies
// leaves its servers to the others within that.
type claimer struct {
	s      store.ProbeLeaser
	runID  int64
	cfg    Config
	info   *targetInfo
	limit  int
	stopAt time.Time
	endAt  time.Time
	// freed wakes a claim that waits for workers when probes finish.
	freed    chan struct{}
	mu       sync.Mutex
	workers  int
	window   int
	claimed  int
	finished int
	err      error
}

// firstClaim is a run's first window: small enough that hosts starting
// together split a small fleet, large enough that a big one keeps the
// workers busy after a few rounds (32, 64, … 512: four).
const firstClaim = 32

func newClaimer(s store.ProbeLeaser, run store.Run, cfg Config, info *targetInfo, started time.Time) *claimer {
	workers := max(cfg.Concurrency, 1)
	limit := cfg.ClaimBatch
	if limit <= 0 {
		limit = min(workers, DefaultClaimBatch)
	}
	// Claim while a probe started now could still finish before the
	// deadline; with a --timeout close to --deadline, for the first half.
	claimFor := max(cfg.Deadline-cfg.Timeout, cfg.Deadline/2)
	return &claimer{s: s, runID: run.ID, cfg: cfg, info: info, limit: limit, workers: workers, window: min(workers, firstClaim),
		freed: make(chan struct{}, 1), stopAt: started.Add(claimFor), endAt: started.Add(cfg.Deadline)}
}

// done counts n results (probed or interrupted) as finished: their
// workers are free again, and the window grows by as many.
func (c *claimer) done(n int) {
	c.mu.Lock()
	c.finished += n
	c.window = min(c.workers, c.window+n)
	c.mu.Unlock()
	select {
	case c.freed <- struct{}{}:
	default:
	}
}

// free is how many servers the run may claim now.
func (c *claimer) free() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.window - (c.claimed - c.finished)
}

// next is the probe.RunFrom feed.
func (c *claimer) next(ctx context.Context) []probe.Target {
	free := c.free()
	for free <= 0 {
		// Every worker of the window is busy: wait for results.
		wait := time.Until(c.stopAt)
		if wait <= 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-c.freed:
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			return nil
		}
		free = c.free()
	}
	now := time.Now()
	if ctx.Err() != nil || !now.Before(c.stopAt) || c.failure() != nil {
		return nil
	}
	lease := min(2*c.cfg.Timeout, c.endAt.Sub(now)) + c.cfg.StoreTimeout + leaseMargin
	cctx, cancel := context.WithTimeout(ctx, c.cfg.StoreTimeout)
	defer cancel()
	servers, err := c.s.ClaimProbeTargets(cctx, c.runID, min(free, c.limit), lease)
	if err != nil {
		// The run deadline cancelling a claim is the end of the run, not
		// a store failure; the leases of a claim that committed expire.
		if ctx.Err() == nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
		}
		return nil
	}
	targets, _ := buildTargets(servers, c.cfg.User)
	c.info.learn(servers, targets)
	c.mu.Lock()
	// A claimed server that is not a target (disabled or push between
	// read and claim) never gets a result: count only the targets.
	c.claimed += len(targets)
	c.mu.Unlock()
	return targets
}

func (c *claimer) claimedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.claimed
}

func (c *claimer) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
