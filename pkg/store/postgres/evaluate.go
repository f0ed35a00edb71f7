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
// this statement read (ss.state = c.old, and for a change underneath
// MAINTENANCE ss.base_state = c.old_base): under READ COMMITTED a second
// evaluator that raced this one re-checks that condition against the
// committed row, finds it changed and records nothing, so no flip is
// written twice. $1: the host was cut off, so ssh servers are not taken
// OFFLINE by the silence of that run.
//
// base is the state the heartbeat rules give; new is what the server is
// judged: DISABLED, else MAINTENANCE inside an active window, else base.
// A change is one of four kinds: enter (into MAINTENANCE; notified, the
// state before is kept as pre_maintenance_state), inner (base changed
// while in MAINTENANCE; recorded from base to base, never notified),
// leave (out of MAINTENANCE; notified only if the state differs from
// pre_maintenance_state) and plain.
const evaluateSQL = `
WITH clock AS (SELECT now() AS t),
active AS (
	SELECT DISTINCT ON (w.server_id) w.server_id, w.reason, w.created_by, w.starts_at
	FROM maintenance_windows w CROSS JOIN clock
	WHERE COALESCE(w.ended_at, w.ends_at) > clock.t AND w.starts_at <= clock.t
	ORDER BY w.server_id, w.starts_at DESC, w.id DESC
),
-- The end of the window a server in MAINTENANCE may be leaving, looked up
-- for those servers only and joined, not as a subquery per server (whose
-- estimated cost alone pushed a 100,000-server round over the JIT
-- thresholds: seconds of compilation for a 0.5 s statement).
left_end AS (
	SELECT st.server_id, e.mw_end
	FROM server_states st CROSS JOIN clock
	-- Per server, by its index, so years of window history are not scanned.
	CROSS JOIN LATERAL (SELECT max(COALESCE(w.ended_at, w.ends_at)) AS mw_end FROM maintenance_windows w
		WHERE w.server_id = st.server_id AND COALESCE(w.ended_at, w.ends_at) <= clock.t) e
	WHERE st.state = 'MAINTENANCE'
),
base AS (
	SELECT s.id, s.mode, s.stale_after_ms, s.stale_after_ms * interval '1 millisecond' AS stale,
		st.state AS old, st.since AS old_since, st.reason AS old_reason, COALESCE(st.seen, false) AS seen,
		st.base_state AS old_base, st.pre_maintenance_state AS pre,
		h.last_heartbeat AS lhb, COALESCE(h.last_error_class, '') AS ec, COALESCE(h.last_error, '') AS err,
		COALESCE(a.active, 0) AS alerts, clock.t,
		mw.server_id IS NOT NULL AS in_mw, mw.reason AS mw_reason, mw.created_by AS mw_by, mw.starts_at AS mw_start,
		le.mw_end,
		CASE WHEN NOT s.enabled THEN 'DISABLED'
			WHEN (h.last_heartbeat IS NULL OR clock.t - h.last_heartbeat > s.stale_after_ms * interval '1 millisecond')
				-- Quorum (status.QuorumOffline): a stale ssh server stays up
				-- while fewer than $2 voting locations say it failed and some
				-- location probed it recently. Read only for stale servers,
				-- and only when a quorum above 1 can be reached.
				AND NOT ($2 > 1 AND s.mode = 'ssh' AND h.last_heartbeat IS NOT NULL AND COALESCE((
					SELECT count(*) > 0 AND count(*) FILTER (WHERE lr.location <> ALL($3)) < $2
					FROM location_results lr
					WHERE lr.server_id = s.id AND (lr.last_ok IS NULL OR lr.last_ok < lr.last_probe)
						AND lr.last_probe >= clock.t - GREATEST(s.stale_after_ms * interval '1 millisecond', $4 * interval '1 microsecond')), false))
				THEN 'OFFLINE'
			WHEN COALESCE(a.active, 0) > 0 THEN 'WARNING'
			ELSE 'ONLINE' END AS base
	FROM servers s
	CROSS JOIN clock
	LEFT JOIN heartbeats h ON h.server_id = s.id
	LEFT JOIN server_states st ON st.server_id = s.id
	LEFT JOIN (SELECT server_id, count(*) AS active FROM alerts WHERE resolved_at IS NULL GROUP BY server_id) a
		ON a.server_id = s.id
	LEFT JOIN active mw ON mw.server_id = s.id
	LEFT JOIN left_end le ON le.server_id = s.id
),
judged AS (
	SELECT *, CASE WHEN base <> 'DISABLED' AND in_mw THEN 'MAINTENANCE' ELSE base END AS new,
		CASE WHEN old = 'MAINTENANCE' THEN old_base ELSE old END AS prev
	FROM base
),
kinded AS (
	SELECT *,
		CASE WHEN new = 'MAINTENANCE' AND old IS DISTINCT FROM 'MAINTENANCE' THEN 'enter'
			WHEN old = 'MAINTENANCE' AND new <> 'MAINTENANCE' THEN 'leave'
			WHEN old = 'MAINTENANCE' THEN 'inner'
			ELSE 'plain' END AS kind,
		CASE WHEN old = 'MAINTENANCE' AND new = 'MAINTENANCE' THEN base ELSE new END AS target,
		-- cut: the host was cut off, so this ssh server keeps its state
		-- (kept == suppressed from going OFFLINE) or its change underneath
		-- MAINTENANCE is not recorded.
		($1 AND mode = 'ssh' AND old IS NOT NULL
			AND ((new = 'OFFLINE' AND old NOT IN ('OFFLINE', 'DISABLED'))
				OR (old = 'MAINTENANCE' AND new = 'MAINTENANCE' AND base = 'OFFLINE' AND COALESCE(old_base, '') NOT IN ('OFFLINE', 'DISABLED')))) AS cut,
		($1 AND mode = 'ssh' AND new = 'OFFLINE' AND old IS NOT NULL AND old NOT IN ('OFFLINE', 'DISABLED')) AS kept
	FROM judged
	-- judged is read here only, so it is not materialised: a quiet round
	-- carries no row past this filter.
	WHERE old IS DISTINCT FROM new OR (old = 'MAINTENANCE' AND new = 'MAINTENANCE' AND old_base IS DISTINCT FROM base)
),
suppressed AS (
	SELECT count(*) AS n FROM kinded WHERE kept
),
reasoned AS (
	SELECT id, old, new, base, old_base, kind, old_since, old_reason, pre,
		CASE kind WHEN 'inner' THEN COALESCE(old_base, '') ELSE COALESCE(old, '') END AS from_state, target AS to_state,
		CASE kind
			WHEN 'enter' THEN LEAST(t, GREATEST(COALESCE(old_since, '-infinity'::timestamptz), mw_start))
			WHEN 'leave' THEN LEAST(t, GREATEST(COALESCE(old_since, '-infinity'::timestamptz), COALESCE(mw_end, t),
				CASE WHEN new = 'OFFLINE' AND lhb IS NOT NULL THEN lhb + stale ELSE '-infinity'::timestamptz END))
			ELSE LEAST(t, GREATEST(COALESCE(old_since, '-infinity'::timestamptz),
				CASE WHEN target = 'OFFLINE' AND lhb IS NOT NULL THEN lhb + stale
					WHEN (prev IS NULL OR prev = 'OFFLINE') AND target IN ('ONLINE', 'WARNING') AND lhb IS NOT NULL THEN lhb
					ELSE t END)) END AS at,
		CASE WHEN kind = 'enter' THEN 'maintenance started' || CASE WHEN mw_by <> '' THEN ' by ' || mw_by ELSE '' END || ': ' || mw_reason
		ELSE CASE WHEN kind = 'leave' AND new <> 'DISABLED' THEN 'maintenance ended; ' ELSE '' END
			|| CASE target
			WHEN 'DISABLED' THEN 'disabled'
			WHEN 'OFFLINE' THEN
				CASE WHEN lhb IS NULL THEN 'no heartbeat yet'
					WHEN stale_after_ms % 1000 = 0 THEN 'no heartbeat for ' || (stale_after_ms / 1000) || 's'
					ELSE 'no heartbeat for ' || stale_after_ms || 'ms' END
				|| CASE WHEN ec <> '' THEN '; last probe: ' || ec || ': ' || err ELSE '' END
			WHEN 'WARNING' THEN alerts || CASE WHEN alerts = 1 THEN ' active alert' ELSE ' active alerts' END
			ELSE CASE WHEN prev = 'WARNING' THEN 'no active alerts'
				WHEN NOT seen THEN 'first heartbeat'
				ELSE 'heartbeat received' END
		END END AS reason,
		CASE kind
			WHEN 'enter' THEN old IS NOT NULL AND old <> 'DISABLED'
			WHEN 'inner' THEN false
			WHEN 'leave' THEN new <> 'DISABLED' AND new IS DISTINCT FROM pre AND COALESCE(pre, '') <> 'DISABLED'
				AND (seen OR new NOT IN ('ONLINE', 'WARNING'))
			ELSE old IS NOT NULL AND old <> 'DISABLED' AND new <> 'DISABLED'
				AND (seen OR new NOT IN ('ONLINE', 'WARNING')) END AS notify
	FROM kinded
	WHERE NOT cut
),
changed AS (
	-- The server_states row each change leaves behind.
	SELECT *,
		CASE WHEN kind = 'inner' THEN old_since ELSE at END AS st_since,
		CASE WHEN kind = 'inner' THEN old_reason ELSE reason END AS st_reason,
		CASE kind WHEN 'enter' THEN COALESCE(old, base) WHEN 'leave' THEN NULL ELSE pre END AS st_pre
	FROM reasoned
),
upd AS (
	UPDATE server_states ss
	SET state = c.new, since = c.st_since, reason = c.st_reason, seen = ss.seen OR c.base IN ('ONLINE', 'WARNING'),
		base_state = c.base, pre_maintenance_state = c.st_pre
	FROM changed c
	WHERE ss.server_id = c.id AND c.old IS NOT NULL AND ss.state = c.old
		AND (c.kind <> 'inner' OR ss.base_state IS NOT DISTINCT FROM c.old_base)
	RETURNING ss.server_id
),
ins AS (
	INSERT INTO server_states (server_id, state, since, reason, seen, base_state, pre_maintenance_state)
	SELECT id, new, st_since, st_reason, base IN ('ONLINE', 'WARNING'), base, st_pre FROM changed WHERE old IS NULL
	ON CONFLICT (server_id) DO NOTHING
	RETURNING server_id
),
f AS (
	INSERT INTO flips (server_id, at, from_state, to_state, reason, notify)
	SELECT c.id, c.at, c.from_state, c.to_state, c.reason, c.notify
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
INSERT INTO flips (server_id, at, from_state, to_state, reason, notify, host)
SELECT NULL, now(), COALESCE(last.to_state, ''), $1, $2, true, $4
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
	// Scheduled windows first, so an occurrence that began is judged in
	// this round.
	if _, err := s.MaterializeSchedules(ctx); err != nil {
		return res, fmt.Errorf("evaluate: %w", err)
	}
	muted := p.Muted
	if muted == nil {
		muted = []string{}
	}
	rows, err := s.pool.Query(ctx, evaluateSQL, p.HostCutOff, p.Need, muted, p.MinVoteWindow.Microseconds())
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
	kind, reason, absent, host := store.StateReconnected, "the monitoring host reaches servers again", store.StateReconnected, ""
	if p.HostCutOff {
		kind, reason, absent, host = store.StateCutOff, p.CutOffReason, "", p.CutOffHost
	}
	var ev *store.Flip
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(fleetEventLock)); err != nil {
			return err
		}
		var f store.Flip
		err := tx.QueryRow(ctx, fleetEventSQL, kind, reason, absent, host).Scan(&f.ID, &f.At, &f.From, &f.To, &f.Reason, &f.Notify)
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
	ids := q.ServerIDs
	if ids == nil {
		ids = []int64{}
	}
	// LIMIT NULL is no limit: without Newest every match is read.
	rows, err := s.pool.Query(ctx, `SELECT * FROM (SELECT f.id, COALESCE(f.server_id, 0), COALESCE(s.name, ''), f.at,
				f.from_state, f.to_state, f.reason, f.notify
			FROM flips f LEFT JOIN servers s ON s.id = f.server_id
			WHERE f.at >= $1 AND ($2 = 0 OR f.server_id = $2) AND f.id > $3
				AND (cardinality($4::bigint[]) = 0 OR f.server_id = ANY($4))
			ORDER BY f.at DESC, f.id DESC LIMIT NULLIF($5::int, 0)) newest
		ORDER BY 4, 1`, q.Since, q.ServerID, q.AfterID, ids, q.Newest)
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

// FlipStates implements store.Store. The (server_id, at) index gives the
// order, so nothing is sorted but ties on at; the states are read raw and
// interned, and every row scans into the same two locals.
func (s *Store) FlipStates(ctx context.Context, since time.Time) ([]store.Flip, error) {
	rows, err := s.pool.Query(ctx, `SELECT server_id, at, from_state, to_state FROM flips
		WHERE server_id IS NOT NULL AND at >= $1 ORDER BY server_id, at, id`, since)
	if err != nil {
		return nil, fmt.Errorf("read flip states: %w", s.interpret(err))
	}
	defer rows.Close()
	var (
		out store.FlipAppender
		id  int64
		at  time.Time
	)
	dest := []any{&id, &at, nil, nil}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read flip states: %w", s.interpret(err))
		}
		raw := rows.RawValues()
		out.Add(store.Flip{ServerID: id, At: at.UTC(), From: store.InternState(raw[2]), To: store.InternState(raw[3])})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read flip states: %w", s.interpret(err))
	}
	return out.Flips(), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
