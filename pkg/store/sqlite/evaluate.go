package sqlite

import (
	"context"
	"fmt"

	"github.com/stacksense/heartbeat/pkg/store"
)

// judgedSQL is every server judged at the clock bound as ?1 (the store's
// clock, read once in the transaction, as text) and ?3 (the same instant in
// Unix milliseconds), with ?2 set when the host was cut off. Staleness is
// compared in integer milliseconds, which is several times cheaper per row
// than date arithmetic on the stored text; the stale moment itself is only
// computed for the rows that change. Times are nowSQL's text, so min/max
// work on them as strings; an empty string sorts before any time.
const judgedSQL = `
judged AS (
	SELECT s.id, s.mode, s.stale_after_ms,
		st.state AS old, st.since AS old_since, COALESCE(st.seen, 0) AS seen,
		h.last_heartbeat AS lhb, COALESCE(h.last_error_class, '') AS ec, COALESCE(h.last_error, '') AS err,
		COALESCE(a.active, 0) AS alerts, ?1 AS t,
		CASE WHEN NOT s.enabled THEN 'DISABLED'
			WHEN h.last_heartbeat IS NULL
				OR ?3 - CAST(round(unixepoch(h.last_heartbeat, 'subsec') * 1000) AS INTEGER) > s.stale_after_ms THEN 'OFFLINE'
			WHEN a.active > 0 THEN 'WARNING'
			ELSE 'ONLINE' END AS new
	FROM servers s
	LEFT JOIN heartbeats h ON h.server_id = s.id
	LEFT JOIN server_states st ON st.server_id = s.id
	LEFT JOIN (SELECT server_id, count(*) AS active FROM alerts WHERE resolved_at IS NULL GROUP BY server_id) a
		ON a.server_id = s.id
)`

// suppressedSQL is the condition under which a cut-off host keeps an ssh
// server from going OFFLINE.
const suppressedSQL = `?2 AND mode = 'ssh' AND new = 'OFFLINE' AND old IS NOT NULL AND old NOT IN ('OFFLINE', 'DISABLED')`

// evaluateSQL records a flip for every server whose judged state differs
// from its recorded one; the same rules as the Postgres engine, which the
// conformance suite holds them to. The transaction holds SQLite's write
// lock from its first statement (_txlock=immediate), so a second
// evaluator waits, then reads the states this one wrote and records
// nothing twice.
const evaluateSQL = `WITH ` + judgedSQL + `
INSERT INTO flips (server_id, at, from_state, to_state, reason, notify)
SELECT id,
	min(t, max(COALESCE(old_since, ''),
		CASE WHEN new = 'OFFLINE' AND lhb IS NOT NULL
				THEN strftime('%Y-%m-%dT%H:%M:%fZ', lhb, '+' || (stale_after_ms / 1000.0) || ' seconds')
			WHEN (old IS NULL OR old = 'OFFLINE') AND new IN ('ONLINE', 'WARNING') AND lhb IS NOT NULL THEN lhb
			ELSE t END)),
	COALESCE(old, ''), new,
	CASE new
		WHEN 'DISABLED' THEN 'disabled'
		WHEN 'OFFLINE' THEN
			CASE WHEN lhb IS NULL THEN 'no heartbeat yet'
				WHEN stale_after_ms % 1000 = 0 THEN 'no heartbeat for ' || (stale_after_ms / 1000) || 's'
				ELSE 'no heartbeat for ' || stale_after_ms || 'ms' END
			|| CASE WHEN ec <> '' THEN '; last probe: ' || ec || ': ' || err ELSE '' END
		WHEN 'WARNING' THEN alerts || CASE WHEN alerts = 1 THEN ' active alert' ELSE ' active alerts' END
		ELSE CASE WHEN old = 'WARNING' THEN 'no active alerts'
			WHEN NOT seen THEN 'first heartbeat'
			ELSE 'heartbeat received' END
	END,
	(old IS NOT NULL AND old <> 'DISABLED' AND new <> 'DISABLED'
		AND (seen OR new NOT IN ('ONLINE', 'WARNING')))
FROM judged
WHERE old IS NOT new AND NOT (` + suppressedSQL + `)
ORDER BY id`

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
	var now string
	var before int64
	if err := tx.QueryRowContext(ctx, `SELECT `+nowSQL+`, COALESCE((SELECT max(id) FROM flips), 0)`).Scan(&now, &before); err != nil {
		return fail(err)
	}
	var res store.EvalResult
	if res.Now, err = parseTime(now); err != nil {
		return fail(err)
	}
	if p.HostCutOff {
		if err := tx.QueryRowContext(ctx, `WITH `+judgedSQL+` SELECT count(*) FROM judged WHERE `+suppressedSQL, now, p.HostCutOff, res.Now.UnixMilli()).Scan(&res.Suppressed); err != nil {
			return fail(err)
		}
	}
	if _, err := tx.ExecContext(ctx, evaluateSQL, now, p.HostCutOff, res.Now.UnixMilli()); err != nil {
		return fail(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO server_states (server_id, state, since, reason, seen)
		SELECT server_id, to_state, at, reason, to_state IN ('ONLINE', 'WARNING') FROM flips
		WHERE id > ? AND server_id IS NOT NULL
		ON CONFLICT (server_id) DO UPDATE SET state = excluded.state, since = excluded.since,
			reason = excluded.reason, seen = seen OR excluded.seen`, before); err != nil {
		return fail(err)
	}
	kind, reason, absent := store.StateReconnected, "the monitoring host reaches servers again", store.StateReconnected
	if p.HostCutOff {
		kind, reason, absent = store.StateCutOff, p.CutOffReason, ""
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO flips (server_id, at, from_state, to_state, reason, notify)
		SELECT NULL, ?1, COALESCE(last.to_state, ''), ?2, ?3, 1
		FROM (SELECT 1) one
		LEFT JOIN (SELECT to_state FROM flips WHERE server_id IS NULL AND id <= ?5 ORDER BY at DESC, id DESC LIMIT 1) last ON 1
		WHERE COALESCE(last.to_state, ?4) <> ?2`, now, kind, reason, absent, before); err != nil {
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
	out, err := s.flips(ctx, s.db, `f.at >= ? AND (? = 0 OR f.server_id = ?) AND f.id > ?`, formatTime(q.Since), q.ServerID, q.ServerID, q.AfterID)
	if err != nil {
		return nil, fmt.Errorf("read flips: %w", s.interpret(err))
	}
	return out, nil
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
