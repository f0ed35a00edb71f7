package store

import (
	"context"
	"errors"
	"time"
)

// ErrExclusiveProbeRun reports that TryHostProbeLock found the store-wide
// probe lock held exclusively: a probe-ssh from before hosts shared the
// fleet (it takes that lock and probes every server itself) is running.
// A run that gets it skips its tick, as when its host lock is taken.
var ErrExclusiveProbeRun = errors.New("a probe-ssh from an older heartbeat (one that probes every server under the store-wide lock) is running on this store")

// ProbeLeaser is implemented by stores on which several probe hosts share
// the fleet (Postgres). Instead of one run per store under TryProbeLock,
// each run claims the ssh servers that are due in batches, each claim with
// a lease, and marks them done with their next due time. A store without
// it (SQLite) runs one probe host at a time under its file lock.
//
// The due rule (FinishProbeTargets): a probed server is next due at the
// start of the tick interval that follows its probe, less a slack of a
// sixth of the interval (5 s of 30 s): probed at 12:00:00.4 or 12:00:20,
// due again at 12:00:25, so the run that cron starts at 12:00:30 finds
// the whole fleet due, even with a few seconds of clock skew or cron
// jitter. A probe within the slack of a boundary (12:00:26) counts for the
// next tick (due 12:00:55), so a run that overruns never probes a server
// twice in a row.
type ProbeLeaser interface {
	// TryHostProbeLock takes this host's probe lock without waiting (false
	// if another run on the same host holds it), so two runs on one host
	// never pile up; runs on other hosts go on. With it the run holds the
	// store-wide lock of TryProbeLock in shared mode, so an older binary's
	// exclusive run cannot start beside it; while such a run holds that
	// lock, it returns ErrExclusiveProbeRun (and no lock). Same contract
	// as TryProbeLock otherwise.
	TryHostProbeLock(ctx context.Context, host string) (lock ProbeLock, acquired bool, err error)
	// StartSharedRun records the start of a run on a store shared by
	// several hosts, in a location (see ValidateLocation): the run claims
	// only that location's leases, so every location probes every server
	// while the hosts of one location share it.
	// The caller holds host's probe lock, so open runs of the same host
	// are dead; open runs of other hosts are closed as aborted only once
	// they started more than staleAfter ago (longer than any live run
	// lasts). It also gives every server that has none a lease row, due
	// now. The run's Servers starts at servers (0 for a run that claims:
	// each claim adds to it).
	StartSharedRun(ctx context.Context, host, location string, servers int, staleAfter time.Duration) (Run, error)
	// ClaimProbeTargets claims up to limit enabled ssh-mode servers that
	// are due (due by the time the run started, no unexpired lease) for
	// run runID, in the run's location, with a
	// lease of the given length on the store's clock, and adds their
	// number to the run's Servers. Concurrent claims never return the same
	// server while its lease runs; none waits for another (SKIP LOCKED).
	// An empty result means nothing is due now.
	ClaimProbeTargets(ctx context.Context, runID int64, limit int, lease time.Duration) ([]Server, error)
	// FinishProbeTargets ends run runID's leases: probed servers become due
	// at the next tick (see the due rule; tick is the interval), released
	// ones stay due so another run may take them at once. Servers whose
	// lease another run has taken meanwhile are left alone.
	FinishProbeTargets(ctx context.Context, runID int64, probed, released []int64, tick time.Duration) error
	// HostRuns returns, per host, its last finished run among those that
	// finished within `within` of the store's clock, ordered by host, and
	// the store's clock. Each run carries its location.
	HostRuns(ctx context.Context, within time.Duration) ([]Run, time.Time, error)
}

// DueSlack is the slack of the due rule for a tick interval: a sixth of
// it (5 s of 30 s).
func DueSlack(tick time.Duration) time.Duration { return tick / 6 }
