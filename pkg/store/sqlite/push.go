package sqlite

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

// SetServerToken stores the hash of a server's API token.
func (s *Store) SetServerToken(ctx context.Context, serverID int64, tokenHash []byte) (bool, error) {
	fail := func(err error) (bool, error) {
		return false, fmt.Errorf("set token of server %d: %w", serverID, s.interpret(err))
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	var had bool
	if err := tx.QueryRowContext(ctx, `SELECT api_token_hash IS NOT NULL FROM servers WHERE id = ?`, serverID).Scan(&had); err != nil {
		return fail(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE servers SET api_token_hash = ? WHERE id = ?`, tokenHash, serverID); err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(fmt.Errorf("commit: %w", err))
	}
	return had, nil
}

// SetServerTokenless sets or clears a server's token-less allowance.
func (s *Store) SetServerTokenless(ctx context.Context, serverID int64, from []netip.Prefix) error {
	from, err := store.CheckTokenless(serverID, from)
	if err != nil {
		return err
	}
	return s.execOne(ctx, fmt.Sprintf("set token-less pushes of server %d", serverID),
		`UPDATE servers SET tokenless_from = ? WHERE id = ?`, store.TokenlessColumn(from), serverID)
}

// RecordPushes verifies a batch of pushes and records the valid ones in one
// write transaction (SQLite has a single writer anyway; one transaction
// per batch is one fsync per batch instead of per push).
func (s *Store) RecordPushes(ctx context.Context, pushes []store.Push) ([]store.PushOutcome, error) {
	out := make([]store.PushOutcome, len(pushes))
	if len(pushes) == 0 {
		return out, nil
	}
	fail := func(err error) ([]store.PushOutcome, error) {
		return nil, fmt.Errorf("record %d pushes: %w", len(pushes), s.interpret(err))
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	var nowText string
	if err := tx.QueryRowContext(ctx, `SELECT `+nowSQL).Scan(&nowText); err != nil {
		return fail(err)
	}
	now, err := parseTime(nowText)
	if err != nil {
		return fail(err)
	}
	// One query for the whole batch: the ids travel as one JSON array
	// parameter, so the batch size never meets SQLite's variable limit.
	ids := store.PushServerIDs(pushes)
	var list strings.Builder
	list.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			list.WriteByte(',')
		}
		list.WriteString(strconv.FormatInt(id, 10))
	}
	list.WriteByte(']')
	rows, err := tx.QueryContext(ctx, `SELECT id, name, api_token_hash, COALESCE(tokenless_from, '') FROM servers WHERE id IN (SELECT value FROM json_each(?))`, list.String())
	if err != nil {
		return fail(err)
	}
	auths := make(map[int64]store.PushAuth, len(ids))
	names := make(map[int64]string, len(ids))
	for rows.Next() {
		var (
			id        int64
			name      string
			hash      []byte
			tokenless string
		)
		if err := rows.Scan(&id, &name, &hash, &tokenless); err != nil {
			rows.Close()
			return fail(err)
		}
		auths[id] = store.PushAuth{TokenHash: hash, TokenlessFrom: store.ParseStoredTokenless(tokenless)}
		names[id] = name
	}
	if err := rows.Close(); err != nil {
		return fail(err)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	record, verdicts := store.VerifiedPushes(pushes, auths)
	if len(record) == 0 {
		return out, nil
	}
	up, err := tx.PrepareContext(ctx, `INSERT INTO heartbeats (server_id, last_heartbeat, source, agent_version)
		VALUES (?, ?, 'api', ?)
		ON CONFLICT (server_id) DO UPDATE SET
			last_heartbeat = excluded.last_heartbeat,
			source = excluded.source,
			agent_version = excluded.agent_version`)
	if err != nil {
		return fail(err)
	}
	defer up.Close()
	written := make(map[int64]time.Time, len(record))
	for _, p := range record {
		at, atText := now, nowText
		if !p.At.IsZero() {
			atText = formatTime(p.At)
			if at, err = parseTime(atText); err != nil {
				return fail(err)
			}
		}
		if _, err := up.ExecContext(ctx, p.ServerID, atText, p.AgentVersion); err != nil {
			return fail(fmt.Errorf("server %d: %w", p.ServerID, err))
		}
		written[p.ServerID] = at
	}
	if err := tx.Commit(); err != nil {
		return fail(fmt.Errorf("commit: %w", err))
	}
	for i, p := range pushes {
		if verdicts[i].OK {
			out[i] = verdicts[i]
			out[i].ServerName, out[i].At = names[p.ServerID], written[p.ServerID]
		}
	}
	return out, nil
}
