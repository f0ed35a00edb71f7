package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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
		ats      = make([]*time.Time, len(results)) // nil: the store's clock
		phases   = make([][store.PhaseColumns]int64, len(results))
		locs     = make([]string, len(results))
		anyLoc   bool
		keyIDs   []int64
		pins     [][]byte
		seen     [][]byte
		accepted [][]byte
	)
	for i, r := range results {
		ids[i], oks[i], classes[i], messages[i], latency[i] = r.ServerID, r.OK, r.ErrorClass, r.Error, r.Latency.Microseconds()
		if !r.At.IsZero() {
			ats[i] = &r.At
		}
		phases[i] = r.Phases.Micros()
		locs[i] = r.Location
		anyLoc = anyLoc || r.Location != ""
		if r.PinHostKey != nil || r.SeenHostKey != nil || r.AcceptedHostKey != nil {
			keyIDs = append(keyIDs, r.ServerID)
			pins = append(pins, r.PinHostKey)
			seen = append(seen, r.SeenHostKey)
			accepted = append(accepted, r.AcceptedHostKey)
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Rows are taken in id order so two concurrent writers (a probe
		// and an API push) cannot deadlock on each other's row locks.
		_, err := tx.Exec(ctx, `INSERT INTO heartbeats AS h
				(server_id, last_heartbeat, source, last_probe, last_error_class, last_error, latency_us, consecutive_failures,
				phase_dial_us, phase_banner_us, phase_kex_us, phase_auth_us, phase_exec_us)
			SELECT r.id, CASE WHEN r.ok THEN COALESCE(r.at, now()) END, CASE WHEN r.ok THEN 'ssh' ELSE '' END, COALESCE(r.at, now()),
				r.class, r.msg, CASE WHEN r.ok THEN r.latency ELSE 0 END, CASE WHEN r.ok THEN 0 ELSE 1 END,
				r.dial, r.banner, r.kex, r.auth, r.exec
			FROM unnest($1::bigint[], $2::bool[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[],
				$7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[])
				AS r(id, ok, class, msg, latency, at, dial, banner, kex, auth, exec)
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
			ids, oks, classes, messages, latency, ats, phaseColumn(phases, 0), phaseColumn(phases, 1), phaseColumn(phases, 2), phaseColumn(phases, 3), phaseColumn(phases, 4))
		if err != nil {
			return err
		}
		if anyLoc {
			// Each location's last word, beside the aggregate heartbeat
			// above: quorum and "seen from" read it.
			if _, err := tx.Exec(ctx, `INSERT INTO location_results AS lr (server_id, location, last_ok, last_probe, error_class, error)
					SELECT r.id, r.loc, CASE WHEN r.ok THEN COALESCE(r.at, now()) END, COALESCE(r.at, now()), r.class, r.msg
					FROM unnest($1::bigint[], $2::text[], $3::bool[], $4::text[], $5::text[], $6::timestamptz[])
						AS r(id, loc, ok, class, msg, at)
					JOIN servers s ON s.id = r.id
					WHERE r.loc <> ''
					ORDER BY r.id
					ON CONFLICT (server_id, location) DO UPDATE SET
						last_ok = COALESCE(excluded.last_ok, lr.last_ok), last_probe = excluded.last_probe,
						error_class = excluded.error_class, error = excluded.error`,
				ids, locs, oks, classes, messages, ats); err != nil {
				return err
			}
		}
		if len(keyIDs) == 0 {
			return nil
		}
		// Servers whose keys would not change are skipped, so an
		// accepted key costs a row write only while a warning is cleared.
		_, err = tx.Exec(ctx, `UPDATE servers s SET
				host_key = COALESCE(s.host_key, k.pin),
				seen_host_key = CASE
					WHEN k.seen IS NOT NULL THEN k.seen
					WHEN k.accepted IS NOT NULL AND (s.host_key_is_ca OR COALESCE(s.host_key, k.pin, k.accepted) = k.accepted) THEN NULL
					ELSE s.seen_host_key END
			FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bytea[]) AS k(id, pin, seen, accepted)
			WHERE s.id = k.id AND (k.seen IS NOT NULL OR (k.pin IS NOT NULL AND s.host_key IS NULL) OR s.seen_host_key IS NOT NULL)`,
			keyIDs, pins, seen, accepted)
		return err
	})
	if err != nil {
		return fmt.Errorf("record %d probe results: %w", len(results), s.interpret(err))
	}
	return nil
}

// TrustHostKey replaces (or clears) a server's pinned host key or CA.
func (s *Store) TrustHostKey(ctx context.Context, serverID int64, key []byte) error {
	return s.execOne(ctx, fmt.Sprintf("trust host key of server %d", serverID),
		`UPDATE servers SET host_key = $1, host_key_is_ca = false, seen_host_key = NULL WHERE id = $2`, key, serverID)
}

// TrustHostCA pins a certificate authority for a server.
func (s *Store) TrustHostCA(ctx context.Context, serverID int64, ca []byte) error {
	if len(ca) == 0 {
		return fmt.Errorf("trust host CA of server %d: no CA key given", serverID)
	}
	return s.execOne(ctx, fmt.Sprintf("trust host CA of server %d", serverID),
		`UPDATE servers SET host_key = $1, host_key_is_ca = true, seen_host_key = NULL WHERE id = $2`, ca, serverID)
}

// TryProbeLock takes a session-level advisory lock on a connection held
// for the run. If the process dies, Postgres ends the session and the lock
// with it. The session is checked every LockCheckInterval: if it was
// terminated (pg_terminate_backend, a server restart), the lock is gone and
// another run may already hold it, so the lock reports itself lost.
func (s *Store) TryProbeLock(ctx context.Context) (store.ProbeLock, bool, error) {
	return s.tryAdvisoryLock(ctx, `SELECT pg_try_advisory_lock($1)`, `SELECT pg_advisory_unlock($1)`, probeLockKey)
}

// tryAdvisoryLock takes a session-level advisory lock with lockSQL (which
// returns whether it got it) on a connection held until Release, which
// runs unlockSQL with the same arguments.
func (s *Store) tryAdvisoryLock(ctx context.Context, lockSQL, unlockSQL string, args ...any) (store.ProbeLock, bool, error) {
	conn, err := s.lockSession(ctx)
	if err != nil {
		return nil, false, err
	}
	var ok bool
	if err := conn.QueryRow(ctx, lockSQL, args...).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("probe lock: %w", err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return newProbeLock(conn, unlockSQL, args...), true, nil
}

// lockSession takes a pool connection to hold a session-level lock on.
func (s *Store) lockSession(ctx context.Context) (*pgxpool.Conn, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("probe lock: %w", err)
	}
	// If this host vanishes mid-run (power, network), the server keeps the
	// session, and the lock, until TCP keepalive declares it dead: hours by
	// default, during which no other probe host could run. These settings
	// are per session and bring that down to about 25 s.
	if _, err := conn.Exec(ctx, `SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3`); err != nil {
		conn.Release()
		return nil, fmt.Errorf("probe lock: %w", err)
	}
	return conn, nil
}

// newProbeLock hands out the lock(s) conn's session holds, watched until
// Release, which runs unlockSQL with args.
func newProbeLock(conn *pgxpool.Conn, unlockSQL string, args ...any) *probeLock {
	l := &probeLock{conn: conn, unlockSQL: unlockSQL, args: args, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.watch()
	return l
}

// LockCheckInterval is how often a held probe lock's session is checked;
// a run learns it lost the lock within this plus LockCheckTimeout.
const (
	LockCheckInterval = time.Second
	LockCheckTimeout  = 3 * time.Second
)

// probeLock is a held advisory lock and the connection that holds it.
type probeLock struct {
	conn *pgxpool.Conn
	// unlockSQL and args give the lock up.
	unlockSQL string
	args      []any
	// mu serialises the watcher's checks with Release on the one
	// connection.
	mu      sync.Mutex
	lost    chan struct{}
	lostErr error
	stop    chan struct{}
	done    chan struct{}
}

func (l *probeLock) Lost() <-chan struct{} { return l.lost }

func (l *probeLock) Err() error {
	select {
	case <-l.lost:
		return l.lostErr
	default:
		return nil
	}
}

// watch checks the lock's session with a cheap query until Release or
// until the check fails; an unanswered check counts as a loss too, since
// the run can no longer tell whether it still holds the lock.
func (l *probeLock) watch() {
	defer close(l.done)
	t := time.NewTicker(LockCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		ctx, cancel := context.WithTimeout(context.Background(), LockCheckTimeout)
		_, err := l.conn.Exec(ctx, `SELECT 1`)
		cancel()
		l.mu.Unlock()
		if errors.Is(err, context.DeadlineExceeded) {
			l.lostErr = fmt.Errorf("its database session did not answer within %s", LockCheckTimeout)
			close(l.lost)
			return
		}
		if err != nil {
			l.lostErr = fmt.Errorf("its database session failed: %w", err)
			close(l.lost)
			return
		}
	}
}

func (l *probeLock) Release(ctx context.Context) error {
	close(l.stop)
	<-l.done
	defer l.conn.Release()
	if l.Err() != nil {
		// The session is gone and the lock with it.
		l.conn.Conn().Close(ctx)
		return nil
	}
	if _, err := l.conn.Exec(ctx, l.unlockSQL, l.args...); err != nil {
		// Unlocking failed, so this session may still hold the lock;
		// close it rather than return it to the pool.
		l.conn.Conn().Close(ctx)
		return fmt.Errorf("release probe lock: %w", err)
	}
	return nil
}

// StartRun closes runs left open by killed processes, then records the
// start of a probe run, in one transaction.
func (s *Store) StartRun(ctx context.Context, host string, servers int) (store.Run, error) {
	run := store.Run{Host: host, Location: store.DefaultLocation, Servers: servers}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE probe_runs SET aborted_at = now()
			WHERE finished_at IS NULL AND aborted_at IS NULL`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO probe_runs (host, started_at, servers) VALUES ($1, now(), $2)
			RETURNING id, started_at`, host, servers).Scan(&run.ID, &run.StartedAt)
	})
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
	err := s.pool.QueryRow(ctx, `SELECT id, host, location, started_at, finished_at, servers, probed, succeeded, failed_by_class, deadline_hit
		FROM probe_runs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT 1`).
		Scan(&run.ID, &run.Host, &run.Location, &run.StartedAt, &run.FinishedAt, &run.Servers, &run.Probed, &run.Succeeded, &failed, &run.DeadlineHit)
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

// LastAbortedRun returns the most recently started aborted run, or nil.
func (s *Store) LastAbortedRun(ctx context.Context) (*store.Run, error) {
	var run store.Run
	err := s.pool.QueryRow(ctx, `SELECT id, host, location, started_at, aborted_at, servers
		FROM probe_runs WHERE aborted_at IS NOT NULL ORDER BY started_at DESC, id DESC LIMIT 1`).
		Scan(&run.ID, &run.Host, &run.Location, &run.StartedAt, &run.AbortedAt, &run.Servers)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read last aborted run: %w", err)
	}
	run.StartedAt = run.StartedAt.UTC()
	run.AbortedAt = utcPtr(run.AbortedAt)
	return &run, nil
}

// PruneHistory deletes old runs, resolved alerts, flips and deliveries in small batches: a
// DELETE of a bounded id list holds its locks briefly and never rewrites a
// large part of the table in one transaction.
func (s *Store) PruneHistory(ctx context.Context, p store.PruneParams) (store.Pruned, error) {
	size, batches := store.PruneLimits(p)
	var out store.Pruned
	if !p.RunsBefore.IsZero() {
		n, err := s.pruneBatches(ctx, batches, `DELETE FROM probe_runs WHERE id IN (SELECT id FROM probe_runs
			WHERE started_at < $1 AND (finished_at IS NOT NULL OR aborted_at IS NOT NULL) ORDER BY id LIMIT $2)`, p.RunsBefore, size)
		out.Runs = n
		if err != nil {
			return out, fmt.Errorf("prune probe runs: %w", err)
		}
	}
	if !p.AlertsResolvedBefore.IsZero() {
		n, err := s.pruneBatches(ctx, batches, `DELETE FROM alerts WHERE id IN (SELECT id FROM alerts
			WHERE resolved_at < $1 ORDER BY id LIMIT $2)`, p.AlertsResolvedBefore, size)
		out.Alerts = n
		if err != nil {
			return out, fmt.Errorf("prune resolved alerts: %w", err)
		}
	}
	if !p.FlipsBefore.IsZero() {
		n, err := s.pruneBatches(ctx, batches, `DELETE FROM flips WHERE id IN (SELECT id FROM flips
			WHERE at < $1 ORDER BY at LIMIT $2)`, p.FlipsBefore, size)
		out.Flips = n
		if err != nil {
			return out, fmt.Errorf("prune flips: %w", err)
		}
		// The expression index on the effective end finds them.
		n, err = s.pruneBatches(ctx, batches, `DELETE FROM maintenance_windows WHERE id IN (SELECT id FROM maintenance_windows
			WHERE COALESCE(ended_at, ends_at) < $1 ORDER BY id LIMIT $2)`, p.FlipsBefore, size)
		out.Windows = n
		if err != nil {
			return out, fmt.Errorf("prune maintenance windows: %w", err)
		}
	}
	if !p.DeliveriesBefore.IsZero() {
		n, err := s.pruneBatches(ctx, batches, `DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
			WHERE created_at < $1 ORDER BY id LIMIT $2)`, p.DeliveriesBefore, size)
		out.Deliveries = n
		if err != nil {
			return out, fmt.Errorf("prune deliveries: %w", err)
		}
	}
	return out, nil
}

func (s *Store) pruneBatches(ctx context.Context, batches int, sql string, before time.Time, size int) (int, error) {
	total := 0
	for range batches {
		tag, err := s.pool.Exec(ctx, sql, before, size)
		if err != nil {
			return total, err
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < int64(size) {
			break
		}
	}
	return total, nil
}
