package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stacksense/heartbeat/pkg/store"
)

const channelColumns = `c.id, c.name, c.url, c.secret, c.kinds, c.all_servers, c.remind_ms, c.created_at,
	COALESCE((SELECT array_agg(s.id ORDER BY s.name) FROM channel_servers cs JOIN servers s ON s.id = cs.server_id WHERE cs.channel_id = c.id), '{}'),
	COALESCE((SELECT array_agg(s.name ORDER BY s.name) FROM channel_servers cs JOIN servers s ON s.id = cs.server_id WHERE cs.channel_id = c.id), '{}')`

func scanChannel(row pgx.Row) (store.Channel, error) {
	var (
		c      store.Channel
		kinds  string
		remind int64
	)
	if err := row.Scan(&c.ID, &c.Name, &c.URL, &c.Secret, &kinds, &c.AllServers, &remind, &c.CreatedAt, &c.ServerIDs, &c.ServerNames); err != nil {
		return store.Channel{}, err
	}
	c.Kinds = store.ParseKinds(kinds)
	c.Remind = time.Duration(remind) * time.Millisecond
	c.CreatedAt = c.CreatedAt.UTC()
	return c, nil
}

// AddChannel stores a channel and its servers in one transaction. Its
// high-water mark starts at the newest flip, so it is told only of what
// happens from now on.
func (s *Store) AddChannel(ctx context.Context, spec store.ChannelSpec) (store.Channel, error) {
	if err := spec.Validate(); err != nil {
		return store.Channel{}, err
	}
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO channels (name, url, secret, kinds, all_servers, remind_ms, last_enqueued_flip_id)
			VALUES ($1, $2, $3, $4, $5, $6, (SELECT COALESCE(max(id), 0) FROM flips)) RETURNING id`,
			spec.Name, spec.URL, spec.Secret, spec.KindsText(), spec.AllServers, spec.Remind.Milliseconds()).Scan(&id); err != nil {
			return err
		}
		if len(spec.ServerIDs) == 0 {
			return nil
		}
		tag, err := tx.Exec(ctx, `INSERT INTO channel_servers (channel_id, server_id)
			SELECT $1, s.id FROM servers s WHERE s.id = ANY($2::bigint[]) ON CONFLICT DO NOTHING`, id, spec.ServerIDs)
		if err != nil {
			return err
		}
		if int(tag.RowsAffected()) != len(uniqueIDs(spec.ServerIDs)) {
			return fmt.Errorf("a server: %w", store.ErrNotFound)
		}
		return nil
	})
	if err = s.interpret(err); errors.Is(err, store.ErrConflict) {
		return store.Channel{}, fmt.Errorf("add channel %q: name %w", spec.Name, err)
	}
	if err != nil {
		return store.Channel{}, fmt.Errorf("add channel %q: %w", spec.Name, err)
	}
	return s.channel(ctx, `c.id = $1`, id)
}

func uniqueIDs(ids []int64) map[int64]bool {
	m := make(map[int64]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func (s *Store) channel(ctx context.Context, where string, arg any) (store.Channel, error) {
	c, err := scanChannel(s.pool.QueryRow(ctx, `SELECT `+channelColumns+` FROM channels c WHERE `+where, arg))
	if err != nil {
		return store.Channel{}, fmt.Errorf("channel %v: %w", arg, s.interpret(err))
	}
	return c, nil
}

// Channels lists the channels by name.
func (s *Store) Channels(ctx context.Context) ([]store.Channel, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+channelColumns+` FROM channels c ORDER BY c.name`)
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", s.interpret(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Channel, error) { return scanChannel(r) })
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", s.interpret(err))
	}
	return out, nil
}

// ChannelByName returns one channel by its exact name.
func (s *Store) ChannelByName(ctx context.Context, name string) (store.Channel, error) {
	c, err := scanChannel(s.pool.QueryRow(ctx, `SELECT `+channelColumns+` FROM channels c WHERE c.name = $1`, name))
	if err != nil {
		return store.Channel{}, fmt.Errorf("channel %q: %w", name, s.interpret(err))
	}
	return c, nil
}

// RemoveChannel deletes a channel; its deliveries go by cascade.
func (s *Store) RemoveChannel(ctx context.Context, id int64) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM channels WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("remove channel %d: %w", id, s.interpret(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("remove channel %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// deliveryKindSQL is the delivery kind of flip f (” for none); the SQLite
// engine spells the same rule.
const deliveryKindSQL = `CASE WHEN f.server_id IS NULL THEN 'cutoff'
	WHEN f.to_state = 'MAINTENANCE' THEN 'maintenance'
	WHEN f.to_state = 'OFFLINE' THEN 'down'
	WHEN f.from_state = 'OFFLINE' THEN 'up'
	WHEN f.from_state = 'MAINTENANCE' THEN 'maintenance'
	WHEN f.to_state = 'WARNING' OR f.from_state = 'WARNING' THEN 'warning'
	ELSE '' END`

// heldSQL is true when flip f is held back for flapping: it is one of at
// least $N flips of its server within $W milliseconds, and the state before
// it lasted less than $S milliseconds. The SQLite engine spells the same
// rule.
func heldSQL(n, w, settle string) string {
	return `(f.server_id IS NOT NULL
		AND (SELECT count(*) FROM flips g WHERE g.server_id = f.server_id AND g.id <= f.id
			AND g.at > f.at - ` + w + `::bigint * interval '1 millisecond') >= ` + n + `
		AND EXISTS (SELECT 1 FROM flips p WHERE p.server_id = f.server_id AND p.id < f.id
			AND p.at > f.at - ` + settle + `::bigint * interval '1 millisecond'))`
}

// markLag is how far behind the store's clock a channel's high-water mark
// stays. Flip ids come from a sequence when a row is inserted but become
// visible at commit, so a flip with a lower id may appear after one with a
// higher id; an evaluator's transaction is bounded by statement_timeout
// (30 s by default), so every flip recorded by a transaction that started
// more than markLag ago is visible. The flips of the last markLag are
// looked at again by each enqueue and skipped by the unique key.
const markLag = 2 * time.Minute

// enqueueFlipsSQL queues every notifiable flip past each channel's mark
// that the channel wants and flapping does not hold back, and advances the
// marks. $1: the clock (NULL: now()); $2 the mark's lag; $3-$5 the
// flapping rule.
var enqueueFlipsSQL = `
WITH clock AS (SELECT COALESCE($1::timestamptz, now()) AS t),
cand AS (
	SELECT c.id AS channel_id, f.id AS flip_id, f.at, k.kind
	FROM channels c
	JOIN flips f ON f.id > c.last_enqueued_flip_id AND f.notify
	CROSS JOIN LATERAL (SELECT ` + deliveryKindSQL + ` AS kind) k
	WHERE k.kind <> ''
		AND (',' || c.kinds || ',') LIKE ('%,' || CASE WHEN k.kind = 'cutoff' THEN 'down' ELSE k.kind END || ',%')
		AND (c.all_servers OR (f.server_id IS NOT NULL AND EXISTS
			(SELECT 1 FROM channel_servers cs WHERE cs.channel_id = c.id AND cs.server_id = f.server_id)))
		AND NOT ` + heldSQL("$3", "$4", "$5") + `
),
ins AS (
	INSERT INTO deliveries (flip_id, channel_id, reminder, kind, due_at, created_at, next_attempt_at)
	SELECT cand.flip_id, cand.channel_id, 0, cand.kind, cand.at, clock.t, clock.t FROM cand, clock
	ORDER BY cand.flip_id, cand.channel_id
	ON CONFLICT (flip_id, channel_id, reminder) DO NOTHING
	RETURNING 1
),
mark AS (
	UPDATE channels SET last_enqueued_flip_id = m.id
	FROM (SELECT COALESCE(max(id), 0) AS id FROM flips WHERE recorded_at < now() - $2::bigint * interval '1 millisecond') m
	WHERE last_enqueued_flip_id < m.id
	RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM mark)`

// enqueueRemindersSQL queues the next reminder of every down-flip that is
// still its server's latest flip, with the server still OFFLINE, whose
// last down or reminder delivery to a channel with a remind interval fell
// due at least that interval ago. It starts from the OFFLINE servers, so
// it reads only their latest flips' deliveries.
const enqueueRemindersSQL = `
WITH clock AS (SELECT COALESCE($1::timestamptz, now()) AS t),
due AS (
	SELECT d.flip_id, d.channel_id, max(d.reminder) + 1 AS n
	FROM server_states ss
	JOIN flips f ON f.id = (SELECT max(l.id) FROM flips l WHERE l.server_id = ss.server_id) AND f.to_state = 'OFFLINE'
	JOIN deliveries d ON d.flip_id = f.id AND d.kind IN ('down', 'reminder')
	JOIN channels c ON c.id = d.channel_id AND c.remind_ms > 0
	CROSS JOIN clock
	WHERE ss.state = 'OFFLINE'
	GROUP BY d.flip_id, d.channel_id, c.remind_ms, clock.t
	HAVING max(d.due_at) + c.remind_ms * interval '1 millisecond' <= clock.t
),
ins AS (
	INSERT INTO deliveries (flip_id, channel_id, reminder, kind, due_at, created_at, next_attempt_at)
	SELECT due.flip_id, due.channel_id, due.n, 'reminder', clock.t, clock.t, clock.t FROM due, clock
	ORDER BY due.flip_id, due.channel_id
	ON CONFLICT (flip_id, channel_id, reminder) DO NOTHING
	RETURNING 1
)
SELECT count(*) FROM ins`

// enqueueSettledSQL queues the settled state of a flapping server: its
// latest flip, if flapping held it back and it has held for the settle
// time ($4), for every channel added before it was recorded that wants it.
// It reads only the flips of the last store.SettledWithin ($5).
var enqueueSettledSQL = `
WITH clock AS (SELECT COALESCE($1::timestamptz, now()) AS t),
latest AS (
	SELECT f.id, f.server_id, f.at, f.recorded_at, ` + deliveryKindSQL + ` AS kind
	FROM flips f, clock
	WHERE f.at > clock.t - $5::bigint * interval '1 millisecond'
		AND f.at <= clock.t - $4::bigint * interval '1 millisecond'
		AND f.notify
		AND NOT EXISTS (SELECT 1 FROM flips n WHERE n.server_id = f.server_id AND n.id > f.id)
		AND ` + heldSQL("$2", "$3", "$4") + `
),
ins AS (
	INSERT INTO deliveries (flip_id, channel_id, reminder, kind, due_at, created_at, next_attempt_at)
	SELECT l.id, c.id, 0, l.kind, l.at, clock.t, clock.t
	FROM latest l
	JOIN channels c ON l.recorded_at >= c.created_at
	CROSS JOIN clock
	WHERE l.kind <> ''
		AND (',' || c.kinds || ',') LIKE ('%,' || l.kind || ',%')
		AND (c.all_servers OR EXISTS
			(SELECT 1 FROM channel_servers cs WHERE cs.channel_id = c.id AND cs.server_id = l.server_id))
	ORDER BY l.id, c.id
	ON CONFLICT (flip_id, channel_id, reminder) DO NOTHING
	RETURNING 1
)
SELECT count(*) FROM ins`

// EnqueueDeliveries queues new flips, settled states and due reminders.
func (s *Store) EnqueueDeliveries(ctx context.Context, p store.EnqueueParams) (store.Enqueued, error) {
	var out store.Enqueued
	now := optTime(p.Now)
	var marks int64
	changes, window, settle := store.FlapRule(p)
	err := withoutJIT(ctx, s, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, enqueueFlipsSQL, now, markLag.Milliseconds(),
			changes, window.Milliseconds(), settle.Milliseconds()).Scan(&out.Flips, &marks); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, enqueueSettledSQL, now, changes, window.Milliseconds(), settle.Milliseconds(),
			store.SettledWithin.Milliseconds()).Scan(&out.Settled); err != nil {
			return err
		}
		return tx.QueryRow(ctx, enqueueRemindersSQL, now).Scan(&out.Reminders)
	})
	if err != nil {
		return store.Enqueued{}, fmt.Errorf("enqueue deliveries: %w", s.interpret(err))
	}
	return out, nil
}

// withoutJIT runs fn in a transaction with JIT compilation off. The
// planner cannot know how many flips lie past a channel's mark, so it
// estimates the enqueue and claim statements as costly enough to compile,
// and compiling took 1.4 s of a 1.7 s enqueue of 1,000 flips (measured with
// EXPLAIN ANALYZE) for statements that run in milliseconds.
func withoutJIT(ctx context.Context, s *Store, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
			return err
		}
		return fn(tx)
	})
}

// optTime is an explicit time for a COALESCE($n, now()) parameter: nil
// (SQL NULL) for the zero time.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// claimSQL claims due deliveries in one statement: FOR UPDATE SKIP LOCKED
// lets concurrent claimers pass over each other's rows instead of waiting,
// and a row another claimer updated meanwhile is re-checked against the
// WHERE clause (its claim now holds), so it is never claimed twice.
const claimSQL = `
WITH clock AS (SELECT COALESCE($1::timestamptz, now()) AS t),
picked AS (
	SELECT d.id FROM deliveries d, clock
	WHERE d.delivered_at IS NULL AND d.gave_up_at IS NULL AND d.next_attempt_at <= clock.t
		AND (d.claim_expires_at IS NULL OR d.claim_expires_at <= clock.t)
		AND ($5::bigint = 0 OR d.channel_id = $5::bigint)
	ORDER BY d.next_attempt_at, d.id
	LIMIT $3
	FOR UPDATE OF d SKIP LOCKED
),
claimed AS (
	UPDATE deliveries d SET claimed_by = $2, claim_expires_at = clock.t + $4::bigint * interval '1 millisecond'
	FROM picked, clock WHERE d.id = picked.id
	RETURNING d.id, d.flip_id, d.channel_id, d.kind, d.reminder, d.due_at, d.attempts, d.created_at, d.next_attempt_at
)
SELECT cl.id, c.id, c.name, c.url, c.secret, cl.kind, cl.reminder, f.id, COALESCE(f.server_id, 0),
	COALESCE(s.name, ''), COALESCE(s.host, f.host), f.from_state, f.to_state, f.reason, cl.due_at, cl.attempts, cl.created_at,
	CASE WHEN cl.kind = 'up' THEN (SELECT p.at FROM flips p
			WHERE p.server_id = f.server_id AND p.id < f.id AND p.to_state = 'OFFLINE'
			ORDER BY p.at DESC, p.id DESC LIMIT 1)
		WHEN cl.kind = 'reminder' THEN f.at END
FROM claimed cl
JOIN channels c ON c.id = cl.channel_id
JOIN flips f ON f.id = cl.flip_id
LEFT JOIN servers s ON s.id = f.server_id
ORDER BY cl.next_attempt_at, cl.id`

// ClaimDeliveries claims due deliveries.
func (s *Store) ClaimDeliveries(ctx context.Context, p store.ClaimParams) ([]store.Delivery, error) {
	limit, ttl := store.ClaimLimits(p)
	var out []store.Delivery
	err := withoutJIT(ctx, s, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, claimSQL, optTime(p.Now), p.Claimer, limit, ttl.Milliseconds(), p.ChannelID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanDelivery)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", s.interpret(err))
	}
	return out, nil
}

func scanDelivery(r pgx.CollectableRow) (store.Delivery, error) {
	var (
		d         store.Delivery
		downSince *time.Time
	)
	err := r.Scan(&d.ID, &d.ChannelID, &d.ChannelName, &d.ChannelURL, &d.ChannelSecret, &d.Kind, &d.Reminder,
		&d.FlipID, &d.ServerID, &d.ServerName, &d.Host, &d.From, &d.To, &d.Reason, &d.At, &d.Attempts, &d.CreatedAt, &downSince)
	d.At, d.CreatedAt = d.At.UTC(), d.CreatedAt.UTC()
	if downSince != nil && d.At.After(*downSince) {
		d.DownFor = d.At.Sub(*downSince)
	}
	return d, err
}

// outcomesSQL records a batch of outcomes in one statement. A sent
// delivery is delivered whoever holds its claim now (the receiver has it;
// sending it again would only make a duplicate); a failure or a release
// counts only while the claim is still this claimer's.
const outcomesSQL = `
WITH clock AS (SELECT COALESCE($6::timestamptz, now()) AS t),
o AS (SELECT * FROM unnest($2::bigint[], $3::bool[], $4::bool[], $5::text[]) AS o(id, sent, unsent, err))
UPDATE deliveries d SET
	claimed_by = NULL, claim_expires_at = NULL,
	attempts = d.attempts + CASE WHEN o.unsent THEN 0 ELSE 1 END,
	last_attempt_at = CASE WHEN o.unsent THEN d.last_attempt_at ELSE clock.t END,
	last_error = CASE WHEN o.sent THEN '' WHEN o.unsent THEN d.last_error ELSE o.err END,
	delivered_at = CASE WHEN o.sent THEN clock.t END,
	gave_up_at = CASE WHEN NOT o.sent AND NOT o.unsent AND clock.t >= d.created_at + $7::bigint * interval '1 millisecond' THEN clock.t END,
	next_attempt_at = CASE WHEN o.sent OR o.unsent THEN d.next_attempt_at
		ELSE clock.t + LEAST($8::bigint * power(2, LEAST(d.attempts, 30)), $9::bigint) * interval '1 millisecond' END
FROM o, clock
WHERE d.id = o.id AND d.delivered_at IS NULL AND d.gave_up_at IS NULL AND (o.sent OR d.claimed_by = $1)
RETURNING o.sent, o.unsent, d.gave_up_at IS NOT NULL`

// RecordDeliveryOutcomes records a batch of outcomes.
func (s *Store) RecordDeliveryOutcomes(ctx context.Context, p store.OutcomeParams) (store.OutcomeResult, error) {
	var res store.OutcomeResult
	if len(p.Outcomes) == 0 {
		return res, nil
	}
	ids := make([]int64, len(p.Outcomes))
	sent := make([]bool, len(p.Outcomes))
	unsent := make([]bool, len(p.Outcomes))
	errs := make([]string, len(p.Outcomes))
	for i, o := range p.Outcomes {
		ids[i], sent[i], unsent[i], errs[i] = o.ID, o.Sent, o.Unsent && !o.Sent, store.TrimDeliveryError(o.Error)
	}
	rows, err := s.pool.Query(ctx, outcomesSQL, p.Claimer, ids, sent, unsent, errs, optTime(p.At),
		store.DeliveryGiveUpAfter.Milliseconds(), store.DeliveryRetryBase.Milliseconds(), store.DeliveryRetryMax.Milliseconds())
	if err != nil {
		return res, fmt.Errorf("record delivery outcomes: %w", s.interpret(err))
	}
	defer rows.Close()
	for rows.Next() {
		var wasSent, wasUnsent, gaveUp bool
		if err := rows.Scan(&wasSent, &wasUnsent, &gaveUp); err != nil {
			return res, fmt.Errorf("record delivery outcomes: %w", s.interpret(err))
		}
		res.Count(wasSent, wasUnsent, gaveUp)
	}
	if err := rows.Err(); err != nil {
		return store.OutcomeResult{}, fmt.Errorf("record delivery outcomes: %w", s.interpret(err))
	}
	return res, nil
}

// DeliveryStats reads the backlog and the channels whose latest attempt
// failed.
func (s *Store) DeliveryStats(ctx context.Context) (store.DeliveryStats, error) {
	var st store.DeliveryStats
	var oldest *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT now(), count(*), min(created_at) FROM deliveries
		WHERE delivered_at IS NULL AND gave_up_at IS NULL`).Scan(&st.Now, &st.Backlog, &oldest); err != nil {
		return st, fmt.Errorf("read delivery stats: %w", s.interpret(err))
	}
	st.Now = st.Now.UTC()
	st.OldestPending = utcPtr(oldest)
	rows, err := s.pool.Query(ctx, `
		WITH last AS (
			SELECT channel_id, last_error, last_attempt_at, delivered_at,
				row_number() OVER (PARTITION BY channel_id ORDER BY last_attempt_at DESC, id DESC) AS rn
			FROM deliveries WHERE last_attempt_at IS NOT NULL
		)
		SELECT c.id, c.name, l.last_error, l.last_attempt_at,
			(SELECT count(*) FROM deliveries p WHERE p.channel_id = c.id AND p.delivered_at IS NULL AND p.gave_up_at IS NULL AND p.attempts > 0),
			(SELECT count(*) FROM deliveries g WHERE g.channel_id = c.id AND g.gave_up_at >= now() - $1::bigint * interval '1 millisecond')
		FROM last l JOIN channels c ON c.id = l.channel_id
		WHERE l.rn = 1 AND l.delivered_at IS NULL
		ORDER BY c.name`, store.DeliveryGiveUpAfter.Milliseconds())
	if err != nil {
		return st, fmt.Errorf("read delivery stats: %w", s.interpret(err))
	}
	st.Failing, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ChannelFailure, error) {
		var f store.ChannelFailure
		err := r.Scan(&f.ChannelID, &f.ChannelName, &f.LastError, &f.LastAttempt, &f.Pending, &f.GaveUp)
		f.LastAttempt = f.LastAttempt.UTC()
		return f, err
	})
	if err != nil {
		return st, fmt.Errorf("read delivery stats: %w", s.interpret(err))
	}
	return st, nil
}

// DeliveryEvents lists deliveries delivered or given up at or after since.
func (s *Store) DeliveryEvents(ctx context.Context, since time.Time) ([]store.DeliveryEvent, time.Time, error) {
	var now time.Time
	if err := s.pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return nil, time.Time{}, fmt.Errorf("read delivery events: %w", s.interpret(err))
	}
	rows, err := s.pool.Query(ctx, `SELECT d.id, c.url, d.delivered_at IS NOT NULL, COALESCE(d.delivered_at, d.gave_up_at) AS at
		FROM deliveries d JOIN channels c ON c.id = d.channel_id
		WHERE d.delivered_at >= $1 OR d.gave_up_at >= $1
		ORDER BY at, d.id`, since)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read delivery events: %w", s.interpret(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.DeliveryEvent, error) {
		var (
			e   store.DeliveryEvent
			url string
		)
		err := r.Scan(&e.ID, &url, &e.Sent, &e.At)
		e.ChannelURL, e.At = url, e.At.UTC()
		return e, err
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read delivery events: %w", s.interpret(err))
	}
	return out, now.UTC(), nil
}
