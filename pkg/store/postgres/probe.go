package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stacksense/heartbeat/pkg/store"
)

// probeLockKey is the advisory lock id probe-ssh runs take: one run at a
// time per database, across every probe host.
const probeLockKey int64 = 0x6862_7072_6f62_65 // "hbprobe"

// RecordProbeResults writes a batch in two statements: one upsert of all
// heartbeats through unnest() and, if any keys changed, one update of the
// servers' host keys. A round trip per server would cap a 100,000-server
// run at the database's latency.
func (s *Store) RecordProbeResults(ctx context.Context, results []store.ProbeResult) error {
	results = store.LastResultPerServer(results)
	if len(results) == 0 {
		return nil
	}
	var (
		ids      = make([]int64, len(results))
		oks      = make([]bool, len(results))
		classes  = make([]string, len(results))
		messages = make([]string, len(results))
		latency  = make([]int64, len(results))
		phases   = make([][store.PhaseColumns]int64, len(results))
		keyIDs   []int64
		pins     [][]byte
		seen     [][]byte
	)
	for i, r := range results {
		ids[i], oks[i], classes[i], messages[i], latency[i] = r.ServerID, r.OK, r.ErrorClass, r.Error, r.Latency.Microseconds()
		phases[i] = r.Phases.Micros()
		if r.PinHostKey != nil || r.SeenHostKey != nil {
			keyIDs = append(keyIDs, r.ServerID)
			pins = append(pins, r.PinHostKey)
			seen = append(seen, r.SeenHostKey)
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Rows are taken in id order so two concurrent writers (a probe
		// and an API push) cannot deadlock on each other's row locks.
		_, err := tx.Exec(ctx, `INSERT INTO heartbeats AS h
				(server_id, last_heartbeat, source, last_probe, last_error_class, last_error, latency_us, consecutive_failures,
				phase_dial_us, phase_banner_us, phase_kex_us, phase_auth_us, phase_exec_us)
			SELECT r.id, CASE WHEN r.ok THEN now() END, CASE WHEN r.ok THEN 'ssh' ELSE '' END, now(),
				r.class, r.msg, CASE WHEN r.ok THEN r.latency ELSE 0 END, CASE WHEN r.ok THEN 0 ELSE 1 END,
				r.dial, r.banner, r.kex, r.auth, r.exec
			FROM unnest($1::bigint[], $2::bool[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])
				AS r(id, ok, class, msg, latency, dial, banner, kex, auth, exec)
			JOIN servers s ON s.id = r.id
			ORDER BY r.id
			ON CONFLICT (server_id) DO UPDATE SET
				last_heartbeat = COALESCE(excluded.last_heartbeat, h.last_heartbeat),
				source = CASE WHEN excluded.last_heartbeat IS NOT NULL THEN 'ssh' ELSE h.source END,
				last_probe = excluded.last_probe,
				last_error_class = excluded.last_error_class,
				last_error = excluded.last_error,
				latency_us = CASE WHEN excluded.last_heartbeat IS NOT NULL THEN excluded.latency_us ELSE h.latency_us END,
				consecutive_failures = CASE WHEN excluded.last_heartbeat IS NOT NULL THEN 0 ELSE h.consecutive_failures + 1 END,
				phase_dial_us = excluded.phase_dial_us, phase_banner_us = excluded.phase_banner_us, phase_kex_us = excluded.phase_kex_us,
				phase_auth_us = excluded.phase_auth_us, phase_exec_us = excluded.phase_exec_us`,
			ids, oks, classes, messages, latency, phaseColumn(phases, 0), phaseColumn(phases, 1), phaseColumn(phases, 2), phaseColumn(phases, 3), phaseColumn(phases, 4))
		if err != nil || len(keyIDs) == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE servers s SET
				host_key = COALESCE(s.host_key, k.pin),
				seen_host_key = COALESCE(k.seen, s.seen_host_key)
			FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS k(id, pin, seen)
			WHERE s.id = k.id`, keyIDs, pins, seen)
		return err
	})
	if err != nil {
		return fmt.Errorf("record %d probe results: %w", len(results), err)
	}
	return nil
}

// TrustHostKey replaces (or clears) a server's pinned host key.
func (s *Store) TrustHostKey(ctx context.Context, serverID int64, key []byte) error {
	return s.execOne(ctx, fmt.Sprintf("trust host key of server %d", serverID),
		`UPDATE servers SET host_key = $1, seen_host_key = NULL WHERE id = $2`, key, serverID)
}

// TryProbeLock takes a session-level advisory lock on a connection held
// for the run. If the process dies, Postgres ends the session and the lock
// with it.
func (s *Store) TryProbeLock(ctx context.Context) (func() error, bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("probe lock: %w", err)
	}
	// If this host vanishes mid-run (power, network), the server keeps the
	// session, and the lock, until TCP keepalive declares it dead: hours by
	// default, during which no other probe host could run. These settings
	// are per session and bring that down to about 25 s.
	if _, err := conn.Exec(ctx, `SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3`); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("probe lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, probeLockKey).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("probe lock: %w", err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	release := func() error {
		defer conn.Release()
		// A fresh context: the run's may already be cancelled, and the
		// unlock must still go through.
		_, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, probeLockKey)
		if err != nil {
			// Unlocking failed, so this session may still hold the lock;
			// close it rather than return it to the pool.
			conn.Conn().Close(context.WithoutCancel(ctx))
			return fmt.Errorf("release probe lock: %w", err)
		}
		return nil
	}
	return release, true, nil
}

// StartRun records the start of a probe run.
func (s *Store) StartRun(ctx context.Context, host string, servers int) (store.Run, error) {
	run := store.Run{Host: host, Servers: servers}
	err := s.pool.QueryRow(ctx, `INSERT INTO probe_runs (host, started_at, servers) VALUES ($1, now(), $2)
		RETURNING id, started_at`, host, servers).Scan(&run.ID, &run.StartedAt)
	if err != nil {
		return store.Run{}, fmt.Errorf("start run: %w", err)
	}
	run.StartedAt = run.StartedAt.UTC()
	return run, nil
}

// FinishRun records a run's outcome.
func (s *Store) FinishRun(ctx context.Context, run store.Run) (store.Run, error) {
	failed := run.FailedByClass
	if failed == nil {
		failed = map[string]int{}
	}
	failedJSON, err := json.Marshal(failed)
	if err != nil {
		return store.Run{}, fmt.Errorf("finish run %d: %w", run.ID, err)
	}
	var finished time.Time
	err = s.pool.QueryRow(ctx, `UPDATE probe_runs SET finished_at = now(),
			probed = $1, succeeded = $2, failed_by_class = $3, deadline_hit = $4
		WHERE id = $5 RETURNING finished_at`,
		run.Probed, run.Succeeded, string(failedJSON), run.DeadlineHit, run.ID).Scan(&finished)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Run{}, fmt.Errorf("finish run %d: %w", run.ID, store.ErrNotFound)
	}
	if err != nil {
		return store.Run{}, fmt.Errorf("finish run %d: %w", run.ID, err)
	}
	t := finished.UTC()
	run.FinishedAt = &t
	return run, nil
}

// LastFinishedRun returns the most recently finished run, or nil.
func (s *Store) LastFinishedRun(ctx context.Context) (*store.Run, error) {
	var (
		run    store.Run
		failed string
	)
	err := s.pool.QueryRow(ctx, `SELECT id, host, started_at, finished_at, servers, probed, succeeded, failed_by_class, deadline_hit
		FROM probe_runs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT 1`).
		Scan(&run.ID, &run.Host, &run.StartedAt, &run.FinishedAt, &run.Servers, &run.Probed, &run.Succeeded, &failed, &run.DeadlineHit)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read last run: %w", err)
	}
	run.StartedAt = run.StartedAt.UTC()
	run.FinishedAt = utcPtr(run.FinishedAt)
	if err := json.Unmarshal([]byte(failed), &run.FailedByClass); err != nil {
		return nil, fmt.Errorf("read last run: failed_by_class: %w", err)
	}
	return &run, nil
}
