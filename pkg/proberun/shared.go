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
// Leases: a batch is claimed only once the previous one has been handed to
// the workers, so each claimed server starts within one --timeout (the
// workers' current probes end by then) and is written within two, plus a
// result batch and a store write. The lease is 2 × timeout + the store
// timeout + 1 s, never beyond the run's own end (deadline + store timeout +
// 1 s): a host that dies leaves its servers to the others within that.
type claimer struct {
	s       store.ProbeLeaser
	runID   int64
	cfg     Config
	info    *targetInfo
	limit   int
	stopAt  time.Time
	endAt   time.Time
	mu      sync.Mutex
	claimed int
	err     error
}

func newClaimer(s store.ProbeLeaser, run store.Run, cfg Config, info *targetInfo, started time.Time) *claimer {
	limit := cfg.ClaimBatch
	if limit <= 0 {
		limit = min(max(cfg.Concurrency, 1), DefaultClaimBatch)
	}
	// Claim while a probe started now could still finish before the
	// deadline; with a --timeout close to --deadline, for the first half.
	claimFor := max(cfg.Deadline-cfg.Timeout, cfg.Deadline/2)
	return &claimer{s: s, runID: run.ID, cfg: cfg, info: info, limit: limit,
		stopAt: started.Add(claimFor), endAt: started.Add(cfg.Deadline)}
}

// next is the probe.RunFrom feed.
func (c *claimer) next(ctx context.Context) []probe.Target {
	now := time.Now()
	if ctx.Err() != nil || !now.Before(c.stopAt) || c.failure() != nil {
		return nil
	}
	lease := min(2*c.cfg.Timeout, c.endAt.Sub(now)) + c.cfg.StoreTimeout + leaseMargin
	cctx, cancel := context.WithTimeout(ctx, c.cfg.StoreTimeout)
	defer cancel()
	servers, err := c.s.ClaimProbeTargets(cctx, c.runID, c.limit, lease)
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
