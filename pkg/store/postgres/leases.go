package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stacksense/heartbeat/pkg/store"
)

var _ store.ProbeLeaser = (*Store)(nil)

// hostLockClass is the first key of the per-host advisory locks (the
// two-key form, so they never collide with probeLockKey); the second is a
// hash of the host name.
const hostLockClass int32 = 0x68627068 // "hbph"

// TryHostProbeLock takes the advisory lock of one host's probe runs and,
// on the same session, probeLockKey in shared mode. Runs of this version
// only ever take that key shared, so they never exclude each other by it;
// a probe-ssh from before leases takes it exclusively (TryProbeLock) and
// probes every server, so while any shared run holds it, that older run's
// try fails and it skips its tick, and while it holds it, this returns
// store.ErrExclusiveProbeRun. Both locks go with the session.
func (s *Store) TryHostProbeLock(ctx context.Context, host string) (store.ProbeLock, bool, error) {
	conn, err := s.lockSession(ctx)
	if err != nil {
		return nil, false, err
	}
	var hostLock, storeLock bool
	err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, hostLockClass, host).Scan(&hostLock)
	if err == nil && hostLock {
		err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock_shared($1)`, probeLockKey).Scan(&storeLock)
	}
	switch {
	case err == nil && hostLock && storeLock:
		// Both in one statement, each evaluated: the select list is.
		return newProbeLock(conn, `SELECT pg_advisory_unlock_shared($3), pg_advisory_unlock($1, hashtext($2))`,
			hostLockClass, host, probeLockKey), true, nil
	case hostLock:
		if _, uerr := conn.Exec(ctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, hostLockClass, host); uerr != nil {
			// The session may still hold the host lock: close it
			// rather than return it to the pool.
			conn.Conn().Close(ctx)
		}
	}
	conn.Release()
	if err != nil {
		return nil, false, fmt.Errorf("probe lock: %w", err)
	}
	if hostLock {
		return nil, false, store.ErrExclusiveProbeRun
	}
	return nil, false, nil
}

// StartSharedRun closes the runs that are certainly dead, gives new
// servers a lease row in the run's location and records the run, in one
// transaction.
func (s *Store) StartSharedRun(ctx context.Context, host, location string, servers int, staleAfter time.Duration) (store.Run, error) {
	if err := store.ValidateLocation(location); err != nil {
		return store.Run{}, fmt.Errorf("start shared run: %w", err)
	}
	run := store.Run{Host: host, Location: location, Servers: servers}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE probe_runs SET aborted_at = now()
			WHERE finished_at IS NULL AND aborted_at IS NULL
				AND (host = $1 OR started_at < now() - $2 * interval '1 microsecond')`, host, staleAfter.Microseconds()); err != nil {
			return err
		}
		// An anti-join over the fleet, once per run rather than per claim.
		if _, err := tx.Exec(ctx, `INSERT INTO probe_leases (server_id, location)
			SELECT id, $1 FROM servers s WHERE NOT EXISTS (SELECT 1 FROM probe_leases l WHERE l.server_id = s.id AND l.location = $1)
			ON CONFLICT DO NOTHING`, location); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO probe_runs (host, location, started_at, servers) VALUES ($1, $2, now(), $3)
			RETURNING id, started_at`, host, location, servers).Scan(&run.ID, &run.StartedAt)
	})
	if err != nil {
		return store.Run{}, fmt.Errorf("start shared run: %w", s.interpret(err))
	}
	run.StartedAt = run.StartedAt.UTC()
	return run, nil
}

// ClaimProbeTargets claims a batch in one statement: the due rows are
// locked with SKIP LOCKED (a concurrent claimer takes the next ones
// instead of waiting), leased to the run, counted on the run, and returned
// with their servers. A row another claimer leased after this statement's
// snapshot is re-checked under its lock and dropped, so no server is
// handed out twice.
func (s *Store) ClaimProbeTargets(ctx context.Context, runID int64, limit int, lease time.Duration) ([]store.Server, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `WITH run AS (
			SELECT location, started_at FROM probe_runs WHERE id = $1
		), picked AS (
			-- Due when the run started, not merely now: a run still claiming
			-- when the servers it probed fall due again (it started just
			-- before a tick's due time) leaves them to the runs that start
			-- after, instead of probing them twice.
			SELECT l.server_id, l.location FROM probe_leases l JOIN servers s ON s.id = l.server_id CROSS JOIN run
			WHERE l.location = run.location
				AND s.enabled AND s.mode = 'ssh' AND l.due_at <= run.started_at AND (l.lease_until IS NULL OR l.lease_until <= now())
			ORDER BY l.due_at, l.server_id
			LIMIT $2
			FOR UPDATE OF l SKIP LOCKED
		), claimed AS (
			UPDATE probe_leases l SET lease_until = now() + $3 * interval '1 microsecond', run_id = $1
			FROM picked WHERE l.server_id = picked.server_id AND l.location = picked.location
			RETURNING l.server_id
		), counted AS (
			UPDATE probe_runs SET servers = servers + (SELECT count(*) FROM claimed) WHERE id = $1
		)
		SELECT `+serverColumns+` FROM servers JOIN claimed ON claimed.server_id = servers.id ORDER BY id`,
		runID, limit, lease.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("claim probe targets for run %d: %w", runID, s.interpret(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Server, error) { return scanServer(r) })
	if err != nil {
		return nil, fmt.Errorf("claim probe targets for run %d: %w", runID, s.interpret(err))
	}
	return out, nil
}

// FinishProbeTargets applies the due rule of store.ProbeLeaser in SQL, on
// the store's clock: next due = date_bin(tick, now() + slack) + tick -
// slack. The rows are found by primary key ($5 is every id), not by run:
// there is no index on run_id, and a scan per result batch would cost a
// 100,000-server fleet a table scan every 200 ms.
func (s *Store) FinishProbeTargets(ctx context.Context, runID int64, probed, released []int64, tick time.Duration) error {
	if len(probed) == 0 && len(released) == 0 {
		return nil
	}
	if tick <= 0 {
		return fmt.Errorf("finish probe targets for run %d: tick must be positive: %w", runID, store.ErrInvalid)
	}
	_, err := s.pool.Exec(ctx, `UPDATE probe_leases l SET
			due_at = CASE WHEN l.server_id = ANY($2) THEN
				date_bin($3 * interval '1 microsecond', now() + $4 * interval '1 microsecond', timestamptz '2000-01-01 00:00:00+00')
					+ ($3 - $4) * interval '1 microsecond'
				ELSE l.due_at END,
			lease_until = NULL, run_id = NULL
		WHERE l.server_id = ANY($5) AND l.run_id = $1`,
		runID, nonNil(probed), tick.Microseconds(), store.DueSlack(tick).Microseconds(),
		append(append(make([]int64, 0, len(probed)+len(released)), probed...), released...))
	if err != nil {
		return fmt.Errorf("finish probe targets for run %d: %w", runID, s.interpret(err))
	}
	return nil
}

func nonNil(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

// HostRuns returns each host's last finished run within the window.
func (s *Store) HostRuns(ctx context.Context, within time.Duration) ([]store.Run, time.Time, error) {
	var now time.Time
	if err := s.pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return nil, time.Time{}, fmt.Errorf("read probe hosts: %w", s.interpret(err))
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (host) id, host, location, started_at, finished_at, servers, probed, succeeded, failed_by_class, deadline_hit
		FROM probe_runs WHERE finished_at >= $1::timestamptz - $2 * interval '1 microsecond'
		ORDER BY host, finished_at DESC, id DESC`, now, within.Microseconds())
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read probe hosts: %w", s.interpret(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Run, error) {
		var (
			run    store.Run
			failed string
		)
		if err := r.Scan(&run.ID, &run.Host, &run.Location, &run.StartedAt, &run.FinishedAt, &run.Servers, &run.Probed, &run.Succeeded, &failed, &run.DeadlineHit); err != nil {
			return run, err
		}
		run.StartedAt = run.StartedAt.UTC()
		run.FinishedAt = utcPtr(run.FinishedAt)
		return run, json.Unmarshal([]byte(failed), &run.FailedByClass)
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read probe hosts: %w", s.interpret(err))
	}
	return out, now.UTC(), nil
}
