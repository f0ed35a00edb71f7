package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

// judgedSQL is every server judged at the clock bound as ?1 (the store's
// clock, read once in the transaction, as text) and ?3 (the same instant in
// Unix milliseconds), with ?2 set when the host was cut off. Staleness is
// compared in integer milliseconds, which is several times cheaper per row
// than date arithmetic on the stored text; the stale moment itself is only
// computed for the rows that change. Times are nowSQL's text, so min/max
// work on them as strings; an empty string sorts before any time. base is
// the state the heartbeat rules give; new is DISABLED, else MAINTENANCE
// inside an active window, else base; prev is the state underneath before
// this round. ?4 says whether any maintenance window is active.
const judgedSQL = `
based AS (
	SELECT s.id, s.mode, s.stale_after_ms,
		st.state AS old, st.since AS old_since, st.reason AS old_reason, COALESCE(st.seen, 0) AS seen,
		st.base_state AS old_base, st.pre_maintenance_state AS pre,
		h.last_heartbeat AS lhb, COALESCE(h.last_error_class, '') AS ec, COALESCE(h.last_error, '') AS err,
		COALESCE(a.active, 0) AS alerts, ?1 AS t,
		mw.server_id IS NOT NULL AS in_mw, mw.reason AS mw_reason, mw.created_by AS mw_by, mw.starts_at AS mw_start,
		CASE WHEN st.state = 'MAINTENANCE' THEN (SELECT max(COALESCE(w.ended_at, w.ends_at)) FROM maintenance_windows w
			WHERE w.server_id = s.id AND COALESCE(w.ended_at, w.ends_at) <= ?1) END AS mw_end,
		CASE WHEN NOT s.enabled THEN 'DISABLED'
			WHEN h.last_heartbeat IS NULL
				OR ?3 - CAST(round(unixepoch(h.last_heartbeat, 'subsec') * 1000) AS INTEGER) > s.stale_after_ms THEN 'OFFLINE'
			WHEN a.active > 0 THEN 'WARNING'
			ELSE 'ONLINE' END AS base
	FROM servers s
	LEFT JOIN heartbeats h ON h.server_id = s.id
	LEFT JOIN server_states st ON st.server_id = s.id
	LEFT JOIN (SELECT server_id, count(*) AS active FROM alerts WHERE resolved_at IS NULL GROUP BY server_id) a
		ON a.server_id = s.id
	-- Only when some window is active at all (one probe of the end
	-- index), each server's latest active window by its own index.
	LEFT JOIN maintenance_windows mw ON ?4 AND mw.id = (SELECT w.id FROM maintenance_windows w
		WHERE w.server_id = s.id AND w.starts_at <= ?1 AND ?1 < COALESCE(w.ended_at, w.ends_at)
		ORDER BY w.starts_at DESC, w.id DESC LIMIT 1)
),
judged AS (
	SELECT *, CASE WHEN base <> 'DISABLED' AND in_mw THEN 'MAINTENANCE' ELSE base END AS new,
		CASE WHEN old = 'MAINTENANCE' THEN old_base ELSE old END AS prev
	FROM based
)`

// suppressedSQL is the condition under which a cut-off host keeps an ssh
// server from going OFFLINE.
const suppressedSQL = `?2 AND mode = 'ssh' AND new = 'OFFLINE' AND old IS NOT NULL AND old NOT IN ('OFFLINE', 'DISABLED')`

// changedSQL is every change this round records, with the flip it makes
// and the server_states row it leaves; the same rules as the Postgres
// engine (see its evaluateSQL for the four kinds), which the conformance
// suite holds them to.
const changedSQL = `WITH ` + judgedSQL + `,
kinded AS (
	SELECT *,
		CASE WHEN new = 'MAINTENANCE' AND old IS NOT 'MAINTENANCE' THEN 'enter'
			WHEN old = 'MAINTENANCE' AND new <> 'MAINTENANCE' THEN 'leave'
			WHEN old = 'MAINTENANCE' THEN 'inner'
			ELSE 'plain' END AS kind,
		CASE WHEN old = 'MAINTENANCE' AND new = 'MAINTENANCE' THEN base ELSE new END AS target
	FROM judged
	WHERE (old IS NOT new OR (old = 'MAINTENANCE' AND new = 'MAINTENANCE' AND old_base IS NOT base))
		AND NOT (?2 AND mode = 'ssh' AND old IS NOT NULL
			AND ((new = 'OFFLINE' AND old NOT IN ('OFFLINE', 'DISABLED'))
				OR (old = 'MAINTENANCE' AND new = 'MAINTENANCE' AND base = 'OFFLINE' AND COALESCE(old_base, '') NOT IN ('OFFLINE', 'DISABLED'))))
),
reasoned AS (
	SELECT id, old, new, base, kind, old_since, old_reason, pre, seen,
		CASE kind WHEN 'inner' THEN COALESCE(old_base, '') ELSE COALESCE(old, '') END AS from_state, target AS to_state,
		CASE kind
			WHEN 'enter' THEN min(t, max(COALESCE(old_since, ''), mw_start))
			WHEN 'leave' THEN min(t, max(COALESCE(old_since, ''), COALESCE(mw_end, t),
				CASE WHEN new = 'OFFLINE' AND lhb IS NOT NULL THEN strftime('%Y-%m-%dT%H:%M:%fZ', lhb, '+' || (stale_after_ms / 1000.0) || ' seconds') ELSE '' END))
			ELSE min(t, max(COALESCE(old_since, ''),
				CASE WHEN target = 'OFFLINE' AND lhb IS NOT NULL THEN strftime('%Y-%m-%dT%H:%M:%fZ', lhb, '+' || (stale_after_ms / 1000.0) || ' seconds')
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
			WHEN 'inner' THEN 0
			WHEN 'leave' THEN new <> 'DISABLED' AND new IS NOT pre AND COALESCE(pre, '') <> 'DISABLED'
				AND (seen OR new NOT IN ('ONLINE', 'WARNING'))
			ELSE old IS NOT NULL AND old <> 'DISABLED' AND new <> 'DISABLED'
				AND (seen OR new NOT IN ('ONLINE', 'WARNING')) END AS notify
	FROM kinded
),
changed AS (
	SELECT *,
		CASE WHEN kind = 'inner' THEN old_since ELSE at END AS st_since,
		CASE WHEN kind = 'inner' THEN old_reason ELSE reason END AS st_reason,
		CASE kind WHEN 'enter' THEN COALESCE(old, base) WHEN 'leave' THEN NULL ELSE pre END AS st_pre
	FROM reasoned
)`

// evaluateSQL records a flip for every change. The transaction holds
// SQLite's write lock from its first statement (_txlock=immediate), so a
// second evaluator waits, then reads the states this one wrote and
// records nothing twice.
const evaluateSQL = changedSQL + `
INSERT INTO flips (server_id, at, from_state, to_state, reason, notify)
SELECT id, at, from_state, to_state, reason, notify FROM changed ORDER BY id`

// statesSQL writes the server_states rows the same changes leave; it runs
// after evaluateSQL in the same transaction, which changed nothing that
// changedSQL reads, so both see the same changes.
const statesSQL = changedSQL + `
INSERT INTO server_states (server_id, state, since, reason, seen, base_state, pre_maintenance_state)
SELECT id, new, st_since, st_reason, base IN ('ONLINE', 'WARNING'), base, st_pre FROM changed WHERE true
ON CONFLICT (server_id) DO UPDATE SET state = excluded.state, since = excluded.since, reason = excluded.reason,
	seen = seen OR excluded.seen, base_state = excluded.base_state, pre_maintenance_state = excluded.pre_maintenance_state`

// Evaluate judges every server and records the changes, in one write
// transaction of a few set-based statements.
func (s *Store) Evaluate(ctx context.Context, p store.EvalParams) (store.EvalResult, error) {
	fail := func(err error) (store.EvalResult, error) {
		return store.EvalResult{}, fmt.Errorf("evaluate: %w", s.interpret(err))
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	// Scheduled windows first, in this transaction, so an occurrence that
	// began is judged in this round.
	if _, err := materialize(ctx, tx); err != nil {
		return fail(err)
	}
	var now string
	var before int64
	if err := tx.QueryRowContext(ctx, `SELECT `+nowSQL+`, COALESCE((SELECT max(id) FROM flips), 0)`).Scan(&now, &before); err != nil {
		return fail(err)
	}
	var res store.EvalResult
	if res.Now, err = parseTime(now); err != nil {
		return fail(err)
	}
	// ?4: whether any window is active, so a fleet without one skips the
	// per-server window lookup.
	var anyWindow bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM maintenance_windows
		WHERE COALESCE(ended_at, ends_at) > ?1 AND starts_at <= ?1)`, now).Scan(&anyWindow); err != nil {
		return fail(err)
	}
	if p.HostCutOff {
		if err := tx.QueryRowContext(ctx, `WITH `+judgedSQL+` SELECT count(*) FROM judged WHERE `+suppressedSQL, now, p.HostCutOff, res.Now.UnixMilli(), anyWindow).Scan(&res.Suppressed); err != nil {
			return fail(err)
		}
	}
	recorded, err := tx.ExecContext(ctx, evaluateSQL, now, p.HostCutOff, res.Now.UnixMilli(), anyWindow)
	if err != nil {
		return fail(err)
	}
	// A quiet round (the usual one) judges the fleet once, not twice.
	if n, err := recorded.RowsAffected(); err != nil || n > 0 {
		if _, err := tx.ExecContext(ctx, statesSQL, now, p.HostCutOff, res.Now.UnixMilli(), anyWindow); err != nil {
			return fail(err)
		}
	}
	kind, reason, absent, host := store.StateReconnected, "the monitoring host reaches servers again", store.StateReconnected, ""
	if p.HostCutOff {
		kind, reason, absent, host = store.StateCutOff, p.CutOffReason, "", p.CutOffHost
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO flips (server_id, at, from_state, to_state, reason, notify, host)
		SELECT NULL, ?1, COALESCE(last.to_state, ''), ?2, ?3, 1, ?6
		FROM (SELECT 1) one
		LEFT JOIN (SELECT to_state FROM flips WHERE server_id IS NULL AND id <= ?5 ORDER BY at DESC, id DESC LIMIT 1) last ON 1
		WHERE COALESCE(last.to_state, ?4) <> ?2`, now, kind, reason, absent, before, host); err != nil {
		return fail(err)
	}
	if res.Flips, err = s.flips(ctx, tx, `f.id > ?`, before); err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return res, nil
}

// Flips lists flips at or after q.Since, oldest first.
func (s *Store) Flips(ctx context.Context, q store.FlipQuery) ([]store.Flip, error) {
	where := `f.at >= ? AND (? = 0 OR f.server_id = ?) AND f.id > ?`
	args := []any{formatTime(q.Since), q.ServerID, q.ServerID, q.AfterID}
	if len(q.ServerIDs) > 0 {
		ids, err := json.Marshal(q.ServerIDs)
		if err != nil {
			return nil, fmt.Errorf("read flips: %w", err)
		}
		where += ` AND f.server_id IN (SELECT value FROM json_each(?))`
		args = append(args, string(ids))
	}
	if q.Newest > 0 {
		where = `f.id IN (SELECT f.id FROM flips f WHERE ` + where + ` ORDER BY f.at DESC, f.id DESC LIMIT ?)`
		args = append(args, q.Newest)
	}
	out, err := s.flips(ctx, s.db, where, args...)
	if err != nil {
		return nil, fmt.Errorf("read flips: %w", s.interpret(err))
	}
	return out, nil
}

// FlipStates implements store.Store.
func (s *Store) FlipStates(ctx context.Context, since time.Time) ([]store.Flip, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT server_id, at, from_state, to_state FROM flips
		WHERE server_id IS NOT NULL AND at >= ? ORDER BY server_id, at, id`, formatTime(since))
	if err != nil {
		return nil, fmt.Errorf("read flip states: %w", s.interpret(err))
	}
	defer rows.Close()
	var (
		out          store.FlipAppender
		id           int64
		at, from, to sql.RawBytes
	)
	for rows.Next() {
		if err := rows.Scan(&id, &at, &from, &to); err != nil {
			return nil, fmt.Errorf("read flip states: %w", s.interpret(err))
		}
		t, err := parseTime(string(at))
		if err != nil {
			return nil, fmt.Errorf("read flip states: %w", err)
		}
		out.Add(store.Flip{ServerID: id, At: t, From: store.InternState(from), To: store.InternState(to)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read flip states: %w", s.interpret(err))
	}
	return out.Flips(), nil
}

func (s *Store) flips(ctx context.Context, q querier, where string, args ...any) ([]store.Flip, error) {
	rows, err := q.QueryContext(ctx, `SELECT f.id, COALESCE(f.server_id, 0), COALESCE(s.name, ''), f.at,
			f.from_state, f.to_state, f.reason, f.notify
		FROM flips f LEFT JOIN servers s ON s.id = f.server_id
		WHERE `+where+` ORDER BY f.at, f.id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Flip
	for rows.Next() {
		var (
			f  store.Flip
			at string
		)
		if err := rows.Scan(&f.ID, &f.ServerID, &f.ServerName, &at, &f.From, &f.To, &f.Reason, &f.Notify); err != nil {
			return nil, err
		}
		if f.At, err = parseTime(at); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}
