package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"

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
		return fmt.Errorf("record probe results: %w", err)
	}
	defer tx.Rollback()
	var now string
	if err := tx.QueryRowContext(ctx, `SELECT `+nowSQL).Scan(&now); err != nil {
		return fmt.Errorf("record probe results: %w", err)
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
		return fmt.Errorf("record probe results: %w", err)
	}
	defer hb.Close()
	keys, err := tx.PrepareContext(ctx, `UPDATE servers SET
			host_key = COALESCE(host_key, ?1),
			seen_host_key = COALESCE(?2, seen_host_key)
		WHERE id = ?3`)
	if err != nil {
		return fmt.Errorf("record probe results: %w", err)
	}
	defer keys.Close()
	for _, r := range store.LastResultPerServer(results) {
		ph := r.Phases.Micros()
		if _, err := hb.ExecContext(ctx, now, r.OK, r.ErrorClass, r.Error, r.Latency.Microseconds(), r.ServerID,
			ph[0], ph[1], ph[2], ph[3], ph[4]); err != nil {
			return fmt.Errorf("record probe result for server %d: %w", r.ServerID, err)
		}
		if r.PinHostKey != nil || r.SeenHostKey != nil {
			if _, err := keys.ExecContext(ctx, r.PinHostKey, r.SeenHostKey, r.ServerID); err != nil {
				return fmt.Errorf("record host key for server %d: %w", r.ServerID, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record probe results: %w", err)
	}
	return nil
}

// TrustHostKey replaces (or clears) a server's pinned host key.
func (s *Store) TrustHostKey(ctx context.Context, serverID int64, key []byte) error {
	return s.execOne(ctx, fmt.Sprintf("trust host key of server %d", serverID),
		`UPDATE servers SET host_key = ?, seen_host_key = NULL WHERE id = ?`, key, serverID)
}

// TryProbeLock takes an exclusive, non-blocking flock on a file beside the
// database. The kernel drops it when the process exits, however it exits.
func (s *Store) TryProbeLock(ctx context.Context) (func() error, bool, error) {
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
	return f.Close, true, nil
}

// StartRun records the start of a probe run.
func (s *Store) StartRun(ctx context.Context, host string, servers int) (store.Run, error) {
	var (
		run     = store.Run{Host: host, Servers: servers}
		started string
	)
	err := s.db.QueryRowContext(ctx, `INSERT INTO probe_runs (host, started_at, servers) VALUES (?, `+nowSQL+`, ?)
		RETURNING id, started_at`, host, servers).Scan(&run.ID, &started)
	if err != nil {
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
		return store.Run{}, fmt.Errorf("finish run %d: %w", run.ID, err)
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
	err := s.db.QueryRowContext(ctx, `SELECT id, host, started_at, finished_at, servers, probed, succeeded, failed_by_class, deadline_hit
		FROM probe_runs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT 1`).
		Scan(&run.ID, &run.Host, &started, &finished, &run.Servers, &run.Probed, &run.Succeeded, &failed, &run.DeadlineHit)
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
