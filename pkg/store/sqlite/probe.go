package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stacksense/heartbeat/pkg/store"
)

// RecordProbeResults writes a batch of probe outcomes in one transaction.
func (s *Store) RecordProbeResults(ctx context.Context, results []store.ProbeResult) error {
	if len(results) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record probe results: %w", s.interpret(err))
	}
	defer tx.Rollback()
	var now string
	if err := tx.QueryRowContext(ctx, `SELECT `+nowSQL).Scan(&now); err != nil {
		return fmt.Errorf("record probe results: %w", s.interpret(err))
	}
	// The INSERT … SELECT FROM servers skips servers removed mid-run.
	hb, err := tx.PrepareContext(ctx, `INSERT INTO heartbeats
			(server_id, last_heartbeat, source, last_probe, last_error_class, last_error, latency_us, consecutive_failures,
			phase_dial_us, phase_banner_us, phase_kex_us, phase_auth_us, phase_exec_us)
		SELECT id, CASE WHEN ?2 THEN ?1 END, CASE WHEN ?2 THEN 'ssh' ELSE '' END, ?1, ?3, ?4,
			CASE WHEN ?2 THEN ?5 ELSE 0 END, CASE WHEN ?2 THEN 0 ELSE 1 END, ?7, ?8, ?9, ?10, ?11
		FROM servers WHERE id = ?6
		ON CONFLICT (server_id) DO UPDATE SET
			last_heartbeat = COALESCE(excluded.last_heartbeat, heartbeats.last_heartbeat),
			source = CASE WHEN ?2 THEN 'ssh' ELSE heartbeats.source END,
			last_probe = excluded.last_probe,
			last_error_class = excluded.last_error_class,
			last_error = excluded.last_error,
			latency_us = CASE WHEN ?2 THEN excluded.latency_us ELSE heartbeats.latency_us END,
			consecutive_failures = CASE WHEN ?2 THEN 0 ELSE heartbeats.consecutive_failures + 1 END,
			phase_dial_us = ?7, phase_banner_us = ?8, phase_kex_us = ?9, phase_auth_us = ?10, phase_exec_us = ?11`)
	if err != nil {
		return fmt.Errorf("record probe results: %w", s.interpret(err))
	}
	defer hb.Close()
	// An accepted key clears the last-seen key unless another key is
	// pinned (a certificate a pinned CA accepted is never the pin itself); rows with nothing to change are not rewritten.
	keys, err := tx.PrepareContext(ctx, `UPDATE servers SET
			host_key = COALESCE(host_key, ?1),
			seen_host_key = CASE
				WHEN ?2 IS NOT NULL THEN ?2
				WHEN ?4 IS NOT NULL AND (host_key_is_ca OR COALESCE(host_key, ?1, ?4) = ?4) THEN NULL
				ELSE seen_host_key END
		WHERE id = ?3 AND (?2 IS NOT NULL OR (?1 IS NOT NULL AND host_key IS NULL) OR seen_host_key IS NOT NULL)`)
	if err != nil {
		return fmt.Errorf("record probe results: %w", s.interpret(err))
	}
	defer keys.Close()
	for _, r := range store.LastResultPerServer(results) {
		at := now
		if !r.At.IsZero() {
			at = formatTime(r.At)
		}
		ph := r.Phases.Micros()
		if _, err := hb.ExecContext(ctx, at, r.OK, r.ErrorClass, r.Error, r.Latency.Microseconds(), r.ServerID,
			ph[0], ph[1], ph[2], ph[3], ph[4]); err != nil {
			return fmt.Errorf("record probe result for server %d: %w", r.ServerID, s.interpret(err))
		}
		if r.PinHostKey != nil || r.SeenHostKey != nil || r.AcceptedHostKey != nil {
			if _, err := keys.ExecContext(ctx, r.PinHostKey, r.SeenHostKey, r.ServerID, r.AcceptedHostKey); err != nil {
				return fmt.Errorf("record host key for server %d: %w", r.ServerID, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record probe results: %w", s.interpret(err))
	}
	return nil
}

// TrustHostKey replaces (or clears) a server's pinned host key or CA.
func (s *Store) TrustHostKey(ctx context.Context, serverID int64, key []byte) error {
	return s.execOne(ctx, fmt.Sprintf("trust host key of server %d", serverID),
		`UPDATE servers SET host_key = ?, host_key_is_ca = 0, seen_host_key = NULL WHERE id = ?`, key, serverID)
}

// TrustHostCA pins a certificate authority for a server.
func (s *Store) TrustHostCA(ctx context.Context, serverID int64, ca []byte) error {
	if len(ca) == 0 {
		return fmt.Errorf("trust host CA of server %d: no CA key given", serverID)
	}
	return s.execOne(ctx, fmt.Sprintf("trust host CA of server %d", serverID),
		`UPDATE servers SET host_key = ?, host_key_is_ca = 1, seen_host_key = NULL WHERE id = ?`, ca, serverID)
}

// TryProbeLock takes an exclusive, non-blocking flock on a file beside the
// database. The kernel drops it when the process exits, however it exits,
// and nothing else can take it from a live process, so it is never lost.
func (s *Store) TryProbeLock(ctx context.Context) (store.ProbeLock, bool, error) {
	path := s.path + ".probe.lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("probe lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("probe lock %s: %w", path, err)
	}
	return fileLock{f}, true, nil
}

// fileLock is a held flock; closing the file releases it.
type fileLock struct{ f *os.File }

func (fileLock) Lost() <-chan struct{}           { return nil }
func (fileLock) Err() error                      { return nil }
func (l fileLock) Release(context.Context) error { return l.f.Close() }

// StartRun closes runs left open by killed processes, then records the
// start of a probe run, in one transaction.
func (s *Store) StartRun(ctx context.Context, host string, servers int) (store.Run, error) {
	var (
		run     = store.Run{Host: host, Servers: servers}
		started string
	)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.Run{}, fmt.Errorf("start run: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE probe_runs SET aborted_at = `+nowSQL+`
		WHERE finished_at IS NULL AND aborted_at IS NULL`); err != nil {
		return store.Run{}, fmt.Errorf("start run: close aborted runs: %w", err)
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO probe_runs (host, started_at, servers) VALUES (?, `+nowSQL+`, ?)
		RETURNING id, started_at`, host, servers).Scan(&run.ID, &started)
	if err != nil {
		return store.Run{}, fmt.Errorf("start run: %w", s.interpret(err))
	}
	if err := tx.Commit(); err != nil {
		return store.Run{}, fmt.Errorf("start run: %w", err)
	}
	run.StartedAt, err = parseTime(started)
	return run, err
}

// FinishRun records a run's outcome.
func (s *Store) FinishRun(ctx context.Context, run store.Run) (store.Run, error) {
	failed, err := json.Marshal(nonNil(run.FailedByClass))
	if err != nil {
		return store.Run{}, fmt.Errorf("finish run %d: %w", run.ID, err)
	}
	var finished string
	err = s.db.QueryRowContext(ctx, `UPDATE probe_runs SET finished_at = `+nowSQL+`,
			probed = ?, succeeded = ?, failed_by_class = ?, deadline_hit = ?
		WHERE id = ? RETURNING finished_at`,
		run.Probed, run.Succeeded, string(failed), run.DeadlineHit, run.ID).Scan(&finished)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Run{}, fmt.Errorf("finish run %d: %w", run.ID, store.ErrNotFound)
	}
	if err != nil {
		return store.Run{}, fmt.Errorf("finish run %d: %w", run.ID, s.interpret(err))
	}
	t, err := parseTime(finished)
	if err != nil {
		return store.Run{}, err
	}
	run.FinishedAt = &t
	return run, nil
}

// LastFinishedRun returns the most recently finished run, or nil.
func (s *Store) LastFinishedRun(ctx context.Context) (*store.Run, error) {
	var (
		run               store.Run
		started, finished string
		failed            string
	)
	err := s.db.QueryRowContext(ctx, `SELECT id, host, location, started_at, finished_at, servers, probed, succeeded, failed_by_class, deadline_hit
		FROM probe_runs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT 1`).
		Scan(&run.ID, &run.Host, &run.Location, &started, &finished, &run.Servers, &run.Probed, &run.Succeeded, &failed, &run.DeadlineHit)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read last run: %w", err)
	}
	if run.StartedAt, err = parseTime(started); err != nil {
		return nil, err
	}
	t, err := parseTime(finished)
	if err != nil {
		return nil, err
	}
	run.FinishedAt = &t
	if err := json.Unmarshal([]byte(failed), &run.FailedByClass); err != nil {
		return nil, fmt.Errorf("read last run: failed_by_class: %w", err)
	}
	return &run, nil
}

func nonNil(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

// LastAbortedRun returns the most recently started aborted run, or nil.
func (s *Store) LastAbortedRun(ctx context.Context) (*store.Run, error) {
	var (
		run              store.Run
		started, aborted string
	)
	err := s.db.QueryRowContext(ctx, `SELECT id, host, location, started_at, aborted_at, servers
		FROM probe_runs WHERE aborted_at IS NOT NULL ORDER BY started_at DESC, id DESC LIMIT 1`).
		Scan(&run.ID, &run.Host, &run.Location, &started, &aborted, &run.Servers)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read last aborted run: %w", err)
	}
	if run.StartedAt, err = parseTime(started); err != nil {
		return nil, err
	}
	t, err := parseTime(aborted)
	if err != nil {
		return nil, err
	}
	run.AbortedAt = &t
	return &run, nil
}

// PruneHistory deletes old runs, resolved alerts, flips and deliveries in small batches, each
// its own short write transaction, so a probe or push waiting on the
// database lock waits for one batch at most.
func (s *Store) PruneHistory(ctx context.Context, p store.PruneParams) (store.Pruned, error) {
	size, batches := store.PruneLimits(p)
	var out store.Pruned
	if !p.RunsBefore.IsZero() {
		n, err := s.pruneBatches(ctx, batches, `DELETE FROM probe_runs WHERE id IN (SELECT id FROM probe_runs
			WHERE started_at < ? AND (finished_at IS NOT NULL OR aborted_at IS NOT NULL) ORDER BY id LIMIT ?)`, p.RunsBefore, size)
		out.Runs = n
		if err != nil {
			return out, fmt.Errorf("prune probe runs: %w", err)
		}
	}
	if !p.AlertsResolvedBefore.IsZero() {
		n, err := s.pruneBatches(ctx, batches, `DELETE FROM alerts WHERE id IN (SELECT id FROM alerts
			WHERE resolved_at < ? ORDER BY id LIMIT ?)`, p.AlertsResolvedBefore, size)
		out.Alerts = n
		if err != nil {
			return out, fmt.Errorf("prune resolved alerts: %w", err)
		}
	}
	if !p.FlipsBefore.IsZero() {
		n, err := s.pruneBatches(ctx, batches, `DELETE FROM flips WHERE id IN (SELECT id FROM flips
			WHERE at < ? ORDER BY at LIMIT ?)`, p.FlipsBefore, size)
		out.Flips = n
		if err != nil {
			return out, fmt.Errorf("prune flips: %w", err)
		}
		// The expression index on the effective end finds them.
		n, err = s.pruneBatches(ctx, batches, `DELETE FROM maintenance_windows WHERE id IN (SELECT id FROM maintenance_windows
			WHERE COALESCE(ended_at, ends_at) < ? ORDER BY id LIMIT ?)`, p.FlipsBefore, size)
		out.Windows = n
		if err != nil {
			return out, fmt.Errorf("prune maintenance windows: %w", err)
		}
	}
	if !p.DeliveriesBefore.IsZero() {
		n, err := s.pruneBatches(ctx, batches, `DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
			WHERE created_at < ? ORDER BY id LIMIT ?)`, p.DeliveriesBefore, size)
		out.Deliveries = n
		if err != nil {
			return out, fmt.Errorf("prune deliveries: %w", err)
		}
	}
	return out, nil
}

func (s *Store) pruneBatches(ctx context.Context, batches int, query string, before time.Time, size int) (int, error) {
	// Stored times are nowSQL's text, which sorts as it reads: compare in
	// the same layout.
	cutoff := before.UTC().Format("2006-01-02T15:04:05.000Z")
	total := 0
	for range batches {
		res, err := s.db.ExecContext(ctx, query, cutoff, size)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += int(n)
		if n < int64(size) {
			break
		}
	}
	return total, nil
}
