package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stacksense/heartbeat/pkg/store"
)

// evaluateSQL judges every server in one statement and records what
// changed. The state row is updated only where it still holds the state
// this statement read (ss.state = c.old): under READ COMMITTED a second
// evaluator that raced this one re-checks that condition against the
// committed row, finds it changed and records nothing, so no flip is
// written twice. $1: the host was cut off, so ssh servers are not taken
// OFFLINE by the silence of that run.
const evaluateSQL = `
WITH clock AS (SELECT now() AS t),
judged AS (
	-- Only servers whose judged state differs from the recorded one leave
	-- this CTE (none, on most ticks), so nothing below touches the fleet.
	SELECT * FROM (
		SELECT s.id, s.mode, s.stale_after_ms, s.stale_after_ms * interval '1 millisecond' AS stale,
			st.state AS old, st.since AS old_since, COALESCE(st.seen, false) AS seen,
			h.last_heartbeat AS lhb, COALESCE(a.active, 0) AS alerts, clock.t,
			CASE WHEN NOT s.enabled THEN 'DISABLED'
				WHEN h.last_heartbeat IS NULL OR clock.t - h.last_heartbeat > s.stale_after_ms * interval '1 millisecond' THEN 'OFFLINE'
				WHEN a.active > 0 THEN 'WARNING'
				ELSE 'ONLINE' END AS new
		FROM servers s
		CROSS JOIN clock
		LEFT JOIN heartbeats h ON h.server_id = s.id
		LEFT JOIN server_states st ON st.server_id = s.id
		LEFT JOIN (SELECT server_id, count(*) AS active FROM alerts WHERE resolved_at IS NULL GROUP BY server_id) a
			ON a.server_id = s.id
	) j
	WHERE old IS DISTINCT FROM new
),
suppressed AS (
	SELECT count(*) AS n FROM judged
	WHERE $1 AND mode = 'ssh' AND new = 'OFFLINE' AND old IS NOT NULL AND old NOT IN ('OFFLINE', 'DISABLED')
),
changed AS (
	SELECT j.id, j.old, j.new,
		LEAST(j.t, GREATEST(COALESCE(j.old_since, '-infinity'::timestamptz),
			CASE WHEN j.new = 'OFFLINE' AND j.lhb IS NOT NULL THEN j.lhb + j.stale
				WHEN (j.old IS NULL OR j.old = 'OFFLINE') AND j.new IN ('ONLINE', 'WARNING') AND j.lhb IS NOT NULL THEN j.lhb
				ELSE j.t END)) AS at,
		CASE j.new
			WHEN 'DISABLED' THEN 'disabled'
			WHEN 'OFFLINE' THEN
				CASE WHEN j.lhb IS NULL THEN 'no heartbeat yet'
					WHEN j.stale_after_ms % 1000 = 0 THEN 'no heartbeat for ' || (j.stale_after_ms / 1000) || 's'
					ELSE 'no heartbeat for ' || j.stale_after_ms || 'ms' END
				|| CASE WHEN COALESCE(h.last_error_class, '') <> '' THEN '; last probe: ' || h.last_error_class || ': ' || h.last_error ELSE '' END
			WHEN 'WARNING' THEN j.alerts || CASE WHEN j.alerts = 1 THEN ' active alert' ELSE ' active alerts' END
			ELSE CASE WHEN j.old = 'WARNING' THEN 'no active alerts'
				WHEN NOT j.seen THEN 'first heartbeat'
				ELSE 'heartbeat received' END
		END AS reason,
		(j.old IS NOT NULL AND j.old <> 'DISABLED' AND j.new <> 'DISABLED'
			AND (j.seen OR j.new NOT IN ('ONLINE', 'WARNING'))) AS notify
	FROM judged j
	LEFT JOIN heartbeats h ON h.server_id = j.id
	WHERE NOT ($1 AND j.mode = 'ssh' AND j.new = 'OFFLINE' AND j.old IS NOT NULL AND j.old NOT IN ('OFFLINE', 'DISABLED'))
),
upd AS (
	UPDATE server_states ss
	SET state = c.new, since = c.at, reason = c.reason, seen = ss.seen OR c.new IN ('ONLINE', 'WARNING')
	FROM changed c
	WHERE ss.server_id = c.id AND c.old IS NOT NULL AND ss.state = c.old
	RETURNING ss.server_id
),
ins AS (
	INSERT INTO server_states (server_id, state, since, reason, seen)
	SELECT id, new, at, reason, new IN ('ONLINE', 'WARNING') FROM changed WHERE old IS NULL
	ON CONFLICT (server_id) DO NOTHING
	RETURNING server_id
),
f AS (
	INSERT INTO flips (server_id, at, from_state, to_state, reason, notify)
	SELECT c.id, c.at, COALESCE(c.old, ''), c.new, c.reason, c.notify
	FROM changed c
	WHERE c.id IN (SELECT server_id FROM upd UNION ALL SELECT server_id FROM ins)
	RETURNING id, server_id, at, from_state, to_state, reason, notify
)
SELECT (SELECT t FROM clock), (SELECT n FROM suppressed),
	f.id, f.server_id, s.name, f.at, f.from_state, f.to_state, f.reason, f.notify
FROM (SELECT 1) one
LEFT JOIN f ON true
LEFT JOIN servers s ON s.id = f.server_id
ORDER BY f.at, f.id`

// fleetEventSQL records a fleet event unless the last one is already of
// its kind ($1). The caller holds an advisory transaction lock, so two
// evaluators cannot both find the condition true.
const fleetEventSQL = `
INSERT INTO flips (server_id, at, from_state, to_state, reason, notify)
SELECT NULL, now(), COALESCE(last.to_state, ''), $1, $2, true
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT to_state FROM flips WHERE server_id IS NULL ORDER BY at DESC, id DESC LIMIT 1) last ON true
WHERE COALESCE(last.to_state, $3) <> $1
RETURNING id, at, from_state, to_state, reason, notify`

// fleetEventLock is the advisory lock key that serialises fleet events
// (an arbitrary constant, distinct from the probe and migration locks).
const fleetEventLock = 7_460_211_010

// Evaluate judges every server and records the changes.
func (s *Store) Evaluate(ctx context.Context, p store.EvalParams) (store.EvalResult, error) {
	var res store.EvalResult
	rows, err := s.pool.Query(ctx, evaluateSQL, p.HostCutOff)
	if err != nil {
		return res, fmt.Errorf("evaluate: %w", s.interpret(err))
	}
	for rows.Next() {
		var (
			id, serverID *int64
			name         *string
			at           *time.Time
			from, to     *string
			reason       *string
			notify       *bool
			suppressed   int64
		)
		if err := rows.Scan(&res.Now, &suppressed, &id, &serverID, &name, &at, &from, &to, &reason, &notify); err != nil {
			rows.Close()
			return store.EvalResult{}, fmt.Errorf("evaluate: %w", s.interpret(err))
		}
		res.Suppressed = int(suppressed)
		if id == nil {
			continue // the one row of a round that changed nothing
		}
		res.Flips = append(res.Flips, store.Flip{ID: *id, ServerID: *serverID, ServerName: deref(name),
			At: at.UTC(), From: *from, To: *to, Reason: *reason, Notify: *notify})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return store.EvalResult{}, fmt.Errorf("evaluate: %w", s.interpret(err))
	}
	res.Now = res.Now.UTC()

	ev, err := s.fleetEvent(ctx, p)
	if err != nil {
		return store.EvalResult{}, err
	}
	if ev != nil {
		res.Flips = append(res.Flips, *ev)
	}
	return res, nil
}

// fleetEvent records a cut-off when the host is cut off and the last fleet
// event is not one, and a reconnection when it is no longer cut off and
// the last fleet event is a cut-off.
func (s *Store) fleetEvent(ctx context.Context, p store.EvalParams) (*store.Flip, error) {
	kind, reason, absent := store.StateReconnected, "the monitoring host reaches servers again", store.StateReconnected
	if p.HostCutOff {
		kind, reason, absent = store.StateCutOff, p.CutOffReason, ""
	}
	var ev *store.Flip
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(fleetEventLock)); err != nil {
			return err
		}
		var f store.Flip
		err := tx.QueryRow(ctx, fleetEventSQL, kind, reason, absent).Scan(&f.ID, &f.At, &f.From, &f.To, &f.Reason, &f.Notify)
		if err == pgx.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		f.At = f.At.UTC()
		ev = &f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("evaluate: record fleet event: %w", s.interpret(err))
	}
	return ev, nil
}

// Flips lists flips at or after q.Since, oldest first.
func (s *Store) Flips(ctx context.Context, q store.FlipQuery) ([]store.Flip, error) {
	rows, err := s.pool.Query(ctx, `SELECT f.id, COALESCE(f.server_id, 0), COALESCE(s.name, ''), f.at,
			f.from_state, f.to_state, f.reason, f.notify
		FROM flips f LEFT JOIN servers s ON s.id = f.server_id
		WHERE f.at >= $1 AND ($2 = 0 OR f.server_id = $2) AND f.id > $3
		ORDER BY f.at, f.id`, q.Since, q.ServerID, q.AfterID)
	if err != nil {
		return nil, fmt.Errorf("read flips: %w", s.interpret(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Flip, error) {
		var f store.Flip
		err := r.Scan(&f.ID, &f.ServerID, &f.ServerName, &f.At, &f.From, &f.To, &f.Reason, &f.Notify)
		f.At = f.At.UTC()
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("read flips: %w", s.interpret(err))
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
