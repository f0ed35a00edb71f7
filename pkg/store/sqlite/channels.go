package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

// plusMillis is SQL for time text expr plus ms milliseconds, in nowSQL's
// layout.
func plusMillis(expr, ms string) string {
	return `strftime('%Y-%m-%dT%H:%M:%fZ', ` + expr + `, '+' || ((` + ms + `) / 1000.0) || ' seconds')`
}

const channelColumns = `c.id, c.name, c.url, c.secret, c.kinds, c.all_servers, c.remind_ms, c.created_at,
	COALESCE((SELECT json_group_array(id) FROM (SELECT s.id FROM channel_servers cs JOIN servers s ON s.id = cs.server_id WHERE cs.channel_id = c.id ORDER BY s.name)), '[]'),
	COALESCE((SELECT json_group_array(name) FROM (SELECT s.name FROM channel_servers cs JOIN servers s ON s.id = cs.server_id WHERE cs.channel_id = c.id ORDER BY s.name)), '[]')`

func scanChannel(row interface{ Scan(...any) error }) (store.Channel, error) {
	var (
		c                  store.Channel
		kinds, created     string
		remind             int64
		idsJSON, namesJSON string
	)
	if err := row.Scan(&c.ID, &c.Name, &c.URL, &c.Secret, &kinds, &c.AllServers, &remind, &created, &idsJSON, &namesJSON); err != nil {
		return store.Channel{}, err
	}
	c.Kinds = store.ParseKinds(kinds)
	c.Remind = time.Duration(remind) * time.Millisecond
	var err error
	if c.CreatedAt, err = parseTime(created); err != nil {
		return store.Channel{}, err
	}
	if err := json.Unmarshal([]byte(idsJSON), &c.ServerIDs); err != nil {
		return store.Channel{}, fmt.Errorf("channel servers: %w", err)
	}
	if err := json.Unmarshal([]byte(namesJSON), &c.ServerNames); err != nil {
		return store.Channel{}, fmt.Errorf("channel servers: %w", err)
	}
	if len(c.ServerIDs) == 0 {
		c.ServerIDs, c.ServerNames = []int64{}, []string{}
	}
	return c, nil
}

// AddChannel stores a channel and its servers in one transaction; its
// high-water mark starts at the newest flip.
func (s *Store) AddChannel(ctx context.Context, spec store.ChannelSpec) (store.Channel, error) {
	if err := spec.Validate(); err != nil {
		return store.Channel{}, err
	}
	fail := func(err error) (store.Channel, error) {
		if err = s.interpret(err); errors.Is(err, store.ErrConflict) {
			return store.Channel{}, fmt.Errorf("add channel %q: name %w", spec.Name, err)
		}
		return store.Channel{}, fmt.Errorf("add channel %q: %w", spec.Name, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	var id int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO channels (name, url, secret, kinds, all_servers, remind_ms, last_enqueued_flip_id)
		VALUES (?, ?, ?, ?, ?, ?, (SELECT COALESCE(max(id), 0) FROM flips)) RETURNING id`,
		spec.Name, spec.URL, spec.Secret, spec.KindsText(), spec.AllServers, spec.Remind.Milliseconds()).Scan(&id); err != nil {
		return fail(err)
	}
	seen := map[int64]bool{}
	for _, sid := range spec.ServerIDs {
		if seen[sid] {
			continue
		}
		seen[sid] = true
		res, err := tx.ExecContext(ctx, `INSERT INTO channel_servers (channel_id, server_id) SELECT ?, id FROM servers WHERE id = ?`, id, sid)
		if err != nil {
			return fail(err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fail(fmt.Errorf("server %d: %w", sid, store.ErrNotFound))
		}
	}
	c, err := scanChannel(tx.QueryRowContext(ctx, `SELECT `+channelColumns+` FROM channels c WHERE c.id = ?`, id))
	if err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return c, nil
}

// Channels lists the channels by name.
func (s *Store) Channels(ctx context.Context) ([]store.Channel, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+channelColumns+` FROM channels c ORDER BY c.name`)
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", s.interpret(err))
	}
	defer rows.Close()
	var out []store.Channel
	for rows.Next() {
		c, err := scanChannel(rows)
		if err != nil {
			return nil, fmt.Errorf("list channels: %w", s.interpret(err))
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list channels: %w", s.interpret(err))
	}
	return out, nil
}

// ChannelByName returns one channel by its exact name.
func (s *Store) ChannelByName(ctx context.Context, name string) (store.Channel, error) {
	c, err := scanChannel(s.db.QueryRowContext(ctx, `SELECT `+channelColumns+` FROM channels c WHERE c.name = ?`, name))
	if err != nil {
		return store.Channel{}, fmt.Errorf("channel %q: %w", name, s.interpret(err))
	}
	return c, nil
}

// RemoveChannel deletes a channel; its deliveries go by cascade.
func (s *Store) RemoveChannel(ctx context.Context, id int64) error {
	return s.execOne(ctx, fmt.Sprintf("remove channel %d", id), `DELETE FROM channels WHERE id = ?`, id)
}

// deliveryKindSQL is the delivery kind of flip f (” for none); the same
// rule as the Postgres engine's.
const deliveryKindSQL = `CASE WHEN f.server_id IS NULL THEN 'cutoff'
	WHEN f.to_state = 'MAINTENANCE' THEN 'maintenance'
	WHEN f.to_state = 'OFFLINE' THEN 'down'
	WHEN f.from_state = 'OFFLINE' THEN 'up'
	WHEN f.from_state = 'MAINTENANCE' THEN 'maintenance'
	WHEN f.to_state = 'WARNING' OR f.from_state = 'WARNING' THEN 'warning'
	ELSE '' END`

// minusMillis is SQL for time text expr minus ms milliseconds.
func minusMillis(expr, ms string) string {
	return `strftime('%Y-%m-%dT%H:%M:%fZ', ` + expr + `, '-' || ((` + ms + `) / 1000.0) || ' seconds')`
}

// heldSQL: flip f is held back for flapping (the Postgres engine's rule).
func heldSQL(n, w, settle string) string {
	return `(f.server_id IS NOT NULL
		AND (SELECT count(*) FROM flips g WHERE g.server_id = f.server_id AND g.id <= f.id
			AND g.at > ` + minusMillis("f.at", w) + `) >= ` + n + `
		AND EXISTS (SELECT 1 FROM flips p WHERE p.server_id = f.server_id AND p.id < f.id
			AND p.at > ` + minusMillis("f.at", settle) + `))`
}

// enqueueFlipsSQL queues every notifiable flip past each channel's mark
// that the channel wants and flapping does not hold back (?1: the clock;
// ?2-?4: the flapping rule). SQLite commits writers one at a
// time, so every flip with an id up to the newest is visible here and the
// mark can move to it at once (see the Postgres engine for why it cannot
// there).
var enqueueFlipsSQL = `
INSERT INTO deliveries (flip_id, channel_id, reminder, kind, due_at, created_at, next_attempt_at)
SELECT flip_id, channel_id, 0, kind, at, ?1, ?1 FROM (
	SELECT c.id AS channel_id, f.id AS flip_id, f.at, ` + deliveryKindSQL + ` AS kind, c.kinds, c.all_servers, f.server_id
	FROM channels c
	JOIN flips f ON f.id > c.last_enqueued_flip_id AND f.notify
	WHERE NOT ` + heldSQL("?2", "?3", "?4") + `
) cand
WHERE kind <> ''
	AND (',' || kinds || ',') LIKE ('%,' || CASE WHEN kind = 'cutoff' THEN 'down' ELSE kind END || ',%')
	AND (all_servers OR (server_id IS NOT NULL AND EXISTS
		(SELECT 1 FROM channel_servers cs WHERE cs.channel_id = cand.channel_id AND cs.server_id = cand.server_id)))
ORDER BY flip_id, channel_id
ON CONFLICT (flip_id, channel_id, reminder) DO NOTHING`

// enqueueSettledSQL: see the Postgres engine's (?1 clock, ?2-?4 the
// flapping rule, ?5 store.SettledWithin).
var enqueueSettledSQL = `
INSERT INTO deliveries (flip_id, channel_id, reminder, kind, due_at, created_at, next_attempt_at)
SELECT l.id, c.id, 0, l.kind, l.at, ?1, ?1
FROM (
	SELECT f.id, f.server_id, f.at, f.recorded_at, ` + deliveryKindSQL + ` AS kind
	FROM flips f
	WHERE f.at > ` + minusMillis("?1", "?5") + ` AND f.at <= ` + minusMillis("?1", "?4") + `
		AND f.notify
		AND NOT EXISTS (SELECT 1 FROM flips n WHERE n.server_id = f.server_id AND n.id > f.id)
		AND ` + heldSQL("?2", "?3", "?4") + `
) l
JOIN channels c ON l.recorded_at >= c.created_at
WHERE l.kind <> ''
	AND (',' || c.kinds || ',') LIKE ('%,' || l.kind || ',%')
	AND (c.all_servers OR EXISTS
		(SELECT 1 FROM channel_servers cs WHERE cs.channel_id = c.id AND cs.server_id = l.server_id))
ORDER BY l.id, c.id
ON CONFLICT (flip_id, channel_id, reminder) DO NOTHING`

// enqueueRemindersSQL: see the Postgres engine's.
var enqueueRemindersSQL = `
INSERT INTO deliveries (flip_id, channel_id, reminder, kind, due_at, created_at, next_attempt_at)
SELECT flip_id, channel_id, n, 'reminder', ?1, ?1, ?1 FROM (
	SELECT d.flip_id, d.channel_id, max(d.reminder) + 1 AS n, max(d.due_at) AS last_due, c.remind_ms
	FROM server_states ss
	JOIN flips f ON f.id = (SELECT max(l.id) FROM flips l WHERE l.server_id = ss.server_id) AND f.to_state = 'OFFLINE'
	JOIN deliveries d ON d.flip_id = f.id AND d.kind IN ('down', 'reminder')
	JOIN channels c ON c.id = d.channel_id AND c.remind_ms > 0
	WHERE ss.state = 'OFFLINE'
	GROUP BY d.flip_id, d.channel_id, c.remind_ms
) due
WHERE ` + plusMillis("last_due", "remind_ms") + ` <= ?1
ORDER BY flip_id, channel_id
ON CONFLICT (flip_id, channel_id, reminder) DO NOTHING`

// clock returns the explicit time t in stored form, or the store's clock
// read in q.
func (s *Store) clock(ctx context.Context, q *sql.Tx, t time.Time) (string, error) {
	if !t.IsZero() {
		return formatTime(t), nil
	}
	var now string
	err := q.QueryRowContext(ctx, `SELECT `+nowSQL).Scan(&now)
	return now, err
}

// EnqueueDeliveries queues new flips and due reminders in one write
// transaction.
func (s *Store) EnqueueDeliveries(ctx context.Context, p store.EnqueueParams) (store.Enqueued, error) {
	var out store.Enqueued
	fail := func(err error) (store.Enqueued, error) {
		return store.Enqueued{}, fmt.Errorf("enqueue deliveries: %w", s.interpret(err))
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	now, err := s.clock(ctx, tx, p.Now)
	if err != nil {
		return fail(err)
	}
	var newest int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(max(id), 0) FROM flips`).Scan(&newest); err != nil {
		return fail(err)
	}
	changes, window, settle := store.FlapRule(p)
	res, err := tx.ExecContext(ctx, enqueueFlipsSQL, now, changes, window.Milliseconds(), settle.Milliseconds())
	if err != nil {
		return fail(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fail(err)
	}
	out.Flips = int(n)
	if res, err = tx.ExecContext(ctx, enqueueSettledSQL, now, changes, window.Milliseconds(), settle.Milliseconds(),
		store.SettledWithin.Milliseconds()); err != nil {
		return fail(err)
	}
	if n, err = res.RowsAffected(); err != nil {
		return fail(err)
	}
	out.Settled = int(n)
	if _, err := tx.ExecContext(ctx, `UPDATE channels SET last_enqueued_flip_id = ? WHERE last_enqueued_flip_id < ?`, newest, newest); err != nil {
		return fail(err)
	}
	if res, err = tx.ExecContext(ctx, enqueueRemindersSQL, now); err != nil {
		return fail(err)
	}
	if n, err = res.RowsAffected(); err != nil {
		return fail(err)
	}
	out.Reminders = int(n)
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return out, nil
}

// ClaimDeliveries claims due deliveries: a conditional update in a write
// transaction, which SQLite runs one at a time, so no two claimers take
// the same row.
func (s *Store) ClaimDeliveries(ctx context.Context, p store.ClaimParams) ([]store.Delivery, error) {
	limit, ttl := store.ClaimLimits(p)
	fail := func(err error) ([]store.Delivery, error) {
		return nil, fmt.Errorf("claim deliveries: %w", s.interpret(err))
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	now, err := s.clock(ctx, tx, p.Now)
	if err != nil {
		return fail(err)
	}
	rows, err := tx.QueryContext(ctx, `UPDATE deliveries SET claimed_by = ?2, claim_expires_at = `+plusMillis("?1", "?4")+`
		WHERE id IN (SELECT id FROM deliveries
			WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= ?1
				AND (claim_expires_at IS NULL OR claim_expires_at <= ?1)
				AND (?5 = 0 OR channel_id = ?5)
			ORDER BY next_attempt_at, id LIMIT ?3)
		RETURNING id`, now, p.Claimer, limit, ttl.Milliseconds(), p.ChannelID)
	if err != nil {
		return fail(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fail(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	if len(ids) == 0 {
		return nil, tx.Commit()
	}
	idsJSON, _ := json.Marshal(ids)
	rows, err = tx.QueryContext(ctx, `SELECT d.id, c.id, c.name, c.url, c.secret, d.kind, d.reminder, f.id, COALESCE(f.server_id, 0),
			COALESCE(s.name, ''), COALESCE(s.host, f.host), f.from_state, f.to_state, f.reason, d.due_at, d.attempts, d.created_at,
			CASE WHEN d.kind = 'up' THEN (SELECT p.at FROM flips p
					WHERE p.server_id = f.server_id AND p.id < f.id AND p.to_state = 'OFFLINE'
					ORDER BY p.at DESC, p.id DESC LIMIT 1)
				WHEN d.kind = 'reminder' THEN f.at END
		FROM deliveries d
		JOIN channels c ON c.id = d.channel_id
		JOIN flips f ON f.id = d.flip_id
		LEFT JOIN servers s ON s.id = f.server_id
		WHERE d.id IN (SELECT value FROM json_each(?))
		ORDER BY d.next_attempt_at, d.id`, string(idsJSON))
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		var (
			d           store.Delivery
			at, created string
			downSince   sql.NullString
		)
		if err := rows.Scan(&d.ID, &d.ChannelID, &d.ChannelName, &d.ChannelURL, &d.ChannelSecret, &d.Kind, &d.Reminder,
			&d.FlipID, &d.ServerID, &d.ServerName, &d.Host, &d.From, &d.To, &d.Reason, &at, &d.Attempts, &created, &downSince); err != nil {
			return fail(err)
		}
		if d.At, err = parseTime(at); err != nil {
			return fail(err)
		}
		if d.CreatedAt, err = parseTime(created); err != nil {
			return fail(err)
		}
		since, err := parseNullTime(downSince)
		if err != nil {
			return fail(err)
		}
		if since != nil && d.At.After(*since) {
			d.DownFor = d.At.Sub(*since)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	rows.Close()
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return out, nil
}

// RecordDeliveryOutcomes records a batch of outcomes in one transaction
// (the same rules as the Postgres engine's single statement).
func (s *Store) RecordDeliveryOutcomes(ctx context.Context, p store.OutcomeParams) (store.OutcomeResult, error) {
	var res store.OutcomeResult
	if len(p.Outcomes) == 0 {
		return res, nil
	}
	fail := func(err error) (store.OutcomeResult, error) {
		return store.OutcomeResult{}, fmt.Errorf("record delivery outcomes: %w", s.interpret(err))
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	now, err := s.clock(ctx, tx, p.At)
	if err != nil {
		return fail(err)
	}
	// ?1 clock, ?2 claimer, ?3 id, ?4 sent, ?5 unsent, ?6 error, ?7
	// give-up ms, ?8 retry base ms, ?9 retry max ms.
	stmt, err := tx.PrepareContext(ctx, `UPDATE deliveries SET
			claimed_by = NULL, claim_expires_at = NULL,
			attempts = attempts + CASE WHEN ?5 THEN 0 ELSE 1 END,
			last_attempt_at = CASE WHEN ?5 THEN last_attempt_at ELSE ?1 END,
			last_error = CASE WHEN ?4 THEN '' WHEN ?5 THEN last_error ELSE ?6 END,
			delivered_at = CASE WHEN ?4 THEN ?1 END,
			gave_up_at = CASE WHEN NOT ?4 AND NOT ?5 AND ?1 >= `+plusMillis("created_at", "?7")+` THEN ?1 END,
			next_attempt_at = CASE WHEN ?4 OR ?5 THEN next_attempt_at
				ELSE `+plusMillis("?1", "min(?8 * (1 << min(attempts, 30)), ?9)")+` END
		WHERE id = ?3 AND delivered_at IS NULL AND gave_up_at IS NULL AND (?4 OR claimed_by = ?2)
		RETURNING gave_up_at IS NOT NULL`)
	if err != nil {
		return fail(err)
	}
	defer stmt.Close()
	for _, o := range p.Outcomes {
		unsent := o.Unsent && !o.Sent
		var gaveUp bool
		err := stmt.QueryRowContext(ctx, now, p.Claimer, o.ID, o.Sent, unsent, store.TrimDeliveryError(o.Error),
			store.DeliveryGiveUpAfter.Milliseconds(), store.DeliveryRetryBase.Milliseconds(), store.DeliveryRetryMax.Milliseconds()).Scan(&gaveUp)
		if errors.Is(err, sql.ErrNoRows) {
			continue // delivered or taken over meanwhile
		}
		if err != nil {
			return fail(err)
		}
		res.Count(o.Sent, unsent, gaveUp)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return res, nil
}

// DeliveryStats reads the backlog and the channels whose latest attempt
// failed.
func (s *Store) DeliveryStats(ctx context.Context) (store.DeliveryStats, error) {
	var st store.DeliveryStats
	fail := func(err error) (store.DeliveryStats, error) {
		return store.DeliveryStats{}, fmt.Errorf("read delivery stats: %w", s.interpret(err))
	}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	var now string
	var oldest sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT `+nowSQL+`, count(*), min(created_at) FROM deliveries
		WHERE delivered_at IS NULL AND gave_up_at IS NULL`).Scan(&now, &st.Backlog, &oldest); err != nil {
		return fail(err)
	}
	if st.Now, err = parseTime(now); err != nil {
		return fail(err)
	}
	if st.OldestPending, err = parseNullTime(oldest); err != nil {
		return fail(err)
	}
	rows, err := tx.QueryContext(ctx, `
		WITH last AS (
			SELECT channel_id, last_error, last_attempt_at, delivered_at,
				row_number() OVER (PARTITION BY channel_id ORDER BY last_attempt_at DESC, id DESC) AS rn
			FROM deliveries WHERE last_attempt_at IS NOT NULL
		)
		SELECT c.id, c.name, l.last_error, l.last_attempt_at,
			(SELECT count(*) FROM deliveries p WHERE p.channel_id = c.id AND p.delivered_at IS NULL AND p.gave_up_at IS NULL AND p.attempts > 0),
			(SELECT count(*) FROM deliveries g WHERE g.channel_id = c.id AND g.gave_up_at >= strftime('%Y-%m-%dT%H:%M:%fZ', ?1, '-' || (?2 / 1000.0) || ' seconds'))
		FROM last l JOIN channels c ON c.id = l.channel_id
		WHERE l.rn = 1 AND l.delivered_at IS NULL
		ORDER BY c.name`, now, store.DeliveryGiveUpAfter.Milliseconds())
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			f    store.ChannelFailure
			last string
		)
		if err := rows.Scan(&f.ChannelID, &f.ChannelName, &f.LastError, &last, &f.Pending, &f.GaveUp); err != nil {
			return fail(err)
		}
		if f.LastAttempt, err = parseTime(last); err != nil {
			return fail(err)
		}
		st.Failing = append(st.Failing, f)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return st, nil
}

// DeliveryEvents lists deliveries delivered or given up at or after since.
func (s *Store) DeliveryEvents(ctx context.Context, since time.Time) ([]store.DeliveryEvent, time.Time, error) {
	fail := func(err error) ([]store.DeliveryEvent, time.Time, error) {
		return nil, time.Time{}, fmt.Errorf("read delivery events: %w", s.interpret(err))
	}
	now, err := s.Now(ctx)
	if err != nil {
		return fail(err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT d.id, c.url, d.delivered_at IS NOT NULL, COALESCE(d.delivered_at, d.gave_up_at) AS at
		FROM deliveries d JOIN channels c ON c.id = d.channel_id
		WHERE d.delivered_at >= ?1 OR d.gave_up_at >= ?1
		ORDER BY at, d.id`, formatTime(since))
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var out []store.DeliveryEvent
	for rows.Next() {
		var (
			e       store.DeliveryEvent
			url, at string
		)
		if err := rows.Scan(&e.ID, &url, &e.Sent, &at); err != nil {
			return fail(err)
		}
		if e.At, err = parseTime(at); err != nil {
			return fail(err)
		}
		e.ChannelURL = url
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return out, now, nil
}
