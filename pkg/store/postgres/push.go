package postgres

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stacksense/heartbeat/pkg/store"
)

// SetServerToken stores the hash of a server's API token.
func (s *Store) SetServerToken(ctx context.Context, serverID int64, tokenHash []byte) (bool, error) {
	var replaced bool
	// The CTE reads the old value under the row lock the UPDATE takes, so
	// two concurrent rotations each see what the other replaced.
	err := s.pool.QueryRow(ctx, `WITH old AS (
			SELECT id, api_token_hash IS NOT NULL AS had FROM servers WHERE id = $2 FOR UPDATE)
		UPDATE servers s SET api_token_hash = $1 FROM old WHERE s.id = old.id RETURNING old.had`,
		tokenHash, serverID).Scan(&replaced)
	if err != nil {
		return false, fmt.Errorf("set token of server %d: %w", serverID, s.interpret(err))
	}
	return replaced, nil
}

// SetServerTokenless sets or clears a server's token-less allowance.
func (s *Store) SetServerTokenless(ctx context.Context, serverID int64, from []netip.Prefix) error {
	from, err := store.CheckTokenless(serverID, from)
	if err != nil {
		return err
	}
	return s.execOne(ctx, fmt.Sprintf("set token-less pushes of server %d", serverID),
		`UPDATE servers SET tokenless_from = $1 WHERE id = $2`, store.TokenlessColumn(from), serverID)
}

// RecordPushes verifies a batch of pushes and records the valid ones in one
// transaction: one query reads the token hashes of every server named, one
// unnest() upsert writes every heartbeat. The statements are pipelined, so
// the whole transaction costs two round trips however large the batch:
// BEGIN with the read, then the write with COMMIT. That, and one commit
// per batch, is what lets the API outrun one UPDATE per request.
func (s *Store) RecordPushes(ctx context.Context, pushes []store.Push) ([]store.PushOutcome, error) {
	out := make([]store.PushOutcome, len(pushes))
	if len(pushes) == 0 {
		return out, nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("record %d pushes: %w", len(pushes), s.interpret(err))
	}
	// A connection released mid-transaction (after an error) is closed by
	// the pool rather than reused, so no half-done transaction leaks.
	defer conn.Release()
	if err := recordPushes(ctx, conn.Conn(), pushes, out); err != nil {
		if conn.Conn().PgConn().TxStatus() != 'I' {
			if _, rbErr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil {
				conn.Conn().Close(context.WithoutCancel(ctx))
			}
		}
		return nil, fmt.Errorf("record %d pushes: %w", len(pushes), s.interpret(err))
	}
	return out, nil
}

func recordPushes(ctx context.Context, conn *pgx.Conn, pushes []store.Push, out []store.PushOutcome) error {
	var read pgx.Batch
	read.Queue(`BEGIN`)
	read.Queue(`SELECT id, name, api_token_hash, COALESCE(tokenless_from, '') FROM servers WHERE id = ANY($1)`, store.PushServerIDs(pushes))
	br := conn.SendBatch(ctx, &read)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return err
	}
	var (
		auths     = make(map[int64]store.PushAuth, len(pushes))
		names     = make(map[int64]string, len(pushes))
		id        int64
		name      string
		hash      []byte
		tokenless string
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &name, &hash, &tokenless}, func() error {
		auths[id] = store.PushAuth{TokenHash: hash, TokenlessFrom: store.ParseStoredTokenless(tokenless)}
		names[id] = name
		hash = nil
		return nil
	})
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	record, verdicts := store.VerifiedPushes(pushes, auths)
	if len(record) == 0 {
		_, err := conn.Exec(ctx, `COMMIT`)
		return err
	}
	var (
		ids      = make([]int64, len(record))
		versions = make([]string, len(record))
		ats      = make([]*time.Time, len(record)) // nil: the store's clock
	)
	for i, p := range record {
		ids[i], versions[i] = p.ServerID, p.AgentVersion
		if !p.At.IsZero() {
			ats[i] = &p.At
		}
	}
	var write pgx.Batch
	// The JOIN skips a server removed since the read; it then gets no
	// timestamp below and its push is reported as not recorded. Rows are
	// taken in id order so concurrent batches cannot deadlock.
	write.Queue(`INSERT INTO heartbeats AS h (server_id, last_heartbeat, source, agent_version)
		SELECT r.id, COALESCE(r.at, now()), 'api', r.ver
		FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS r(id, ver, at)
		JOIN servers s ON s.id = r.id
		ORDER BY r.id
		ON CONFLICT (server_id) DO UPDATE SET
			last_heartbeat = excluded.last_heartbeat,
			source = excluded.source,
			agent_version = excluded.agent_version
		RETURNING h.server_id, h.last_heartbeat`, ids, versions, ats)
	write.Queue(`COMMIT`)
	bw := conn.SendBatch(ctx, &write)
	rows, err = bw.Query()
	if err != nil {
		bw.Close()
		return err
	}
	var at time.Time
	written := make(map[int64]time.Time, len(ids))
	_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error {
		written[id] = at.UTC()
		return nil
	})
	if err != nil {
		bw.Close()
		return err
	}
	// Only a successful COMMIT makes the heartbeats durable; nothing is
	// reported OK before it.
	if _, err := bw.Exec(); err != nil {
		bw.Close()
		return err
	}
	if err := bw.Close(); err != nil {
		return err
	}
	for i, p := range pushes {
		if t, recorded := written[p.ServerID]; verdicts[i].OK && recorded {
			out[i] = verdicts[i]
			out[i].ServerName, out[i].At = names[p.ServerID], t
		}
	}
	return nil
}
