// Package sqlite is the zero-setup Store: one file on local disk, pure Go
// (modernc.org/sqlite, no cgo), migrated on first use.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"golang.org/x/sys/unix"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/stacksense/heartbeat/migrations"
	"github.com/stacksense/heartbeat/pkg/store"
)

// nowSQL is the store's clock as SQL: UTC, millisecond RFC 3339, so stored
// timestamps sort as text.
const nowSQL = `strftime('%Y-%m-%dT%H:%M:%fZ','now')`

// Store is the SQLite implementation of store.Store.
type Store struct {
	db   *sql.DB
	path string
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path, creating its
// directory with mode 0700, and applies pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create store directory: %w", err)
		}
	}
	// busy_timeout lets concurrent commands (two cron lines, an admin)
	// queue on the write lock instead of failing with SQLITE_BUSY; WAL lets
	// readers proceed while a probe writes; _txlock=immediate takes the
	// write lock at BEGIN so read-then-write transactions cannot deadlock.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	dsn := fileURI(path) + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s := &Store{db: db, path: path}
	// Opening is serialised with other processes' opens and migrations by
	// the migration lock: two processes creating the same fresh file at
	// once race on its conversion to WAL, and SQLite answers one of them
	// SQLITE_BUSY at once, without waiting out busy_timeout. Where the
	// lock file cannot be created (a read-only directory) nobody can be
	// creating or migrating the file, so opening goes on without it.
	unlock, err := s.lockFile(ctx, ".migrate.lock")
	switch {
	case err == nil:
		defer unlock()
	case errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EROFS):
		unlock = nil
	default:
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		if !readOnlyOpenError(err) {
			return nil, unavailable(path, s.interpret(err))
		}
		// A read-only directory: SQLite cannot create the -shm file a
		// WAL reader needs. Opened immutable it reads the file alone, so
		// `status` still answers; every write then fails naming the
		// cause. (A -wal left by a crashed writer is not read: it could
		// only be replayed by someone who can write here.)
		ro, err := sql.Open("sqlite", fileURI(path)+"?mode=ro&immutable=1")
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		if err := ro.PingContext(ctx); err != nil {
			ro.Close()
			return nil, unavailable(path, s.interpret(err))
		}
		s.db = ro
	}
	// The usual case, a migrated store, is decided by a read, so a
	// read-only file or directory still serves `status`.
	pending, err := s.pending(ctx)
	if err != nil {
		s.db.Close()
		return nil, err
	}
	if pending > 0 {
		if unlock == nil {
			s.db.Close()
			return nil, fmt.Errorf("sqlite %s: %d migration(s) pending and the directory is not writable: run `heartbeat migrate` as a user who can write it: %w", path, pending, store.ErrSchemaBehind)
		}
		if _, err := s.migrateLocked(ctx); err != nil {
			s.db.Close()
			return nil, err
		}
	}
	return s, nil
}

// fileURI turns a file path into an SQLite URI filename. SQLite reads '?'
// as the start of the query and '#' as a fragment, and decodes %HH, so a
// path holding any of them (a test's temp dir "TestX#01", a directory an
// admin named) would otherwise open a different, truncated file.
func fileURI(path string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(path)
}

func (s *Store) provider() (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectSQLite3, s.db, migrations.SQLite())
	if err != nil {
		return nil, fmt.Errorf("migrate sqlite %s: %w", s.path, err)
	}
	return p, nil
}

// pending reports how many migrations the file lacks, without writing.
func (s *Store) pending(ctx context.Context) (int, error) {
	p, err := s.provider()
	if err != nil {
		return 0, err
	}
	// goose reports a missing version table as an error, not version 0.
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'goose_db_version'`).Scan(&n); err != nil {
		return 0, s.interpret(fmt.Errorf("check schema: %w", err))
	}
	if n == 0 {
		return len(p.ListSources()), nil
	}
	cur, target, err := p.GetVersions(ctx)
	if err != nil {
		return 0, s.interpret(fmt.Errorf("check schema: %w", err))
	}
	if cur > target {
		return 0, fmt.Errorf("sqlite %s: schema version %d is newer than this binary (%d): upgrade heartbeat", s.path, cur, target)
	}
	return int(target - cur), nil
}

// Migrate applies pending migrations and returns how many it applied.
//
// It holds an exclusive flock on a file beside the database while goose
// runs: goose checks the version and then applies each file in its own
// transaction, so two processes opening a fresh file at once (two cron
// jobs on a new host) would both apply version 1, and all but one fail
// with "table servers already exists". The kernel releases the lock when
// the process dies, so a killed migration never blocks the next.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	unlock, err := s.lockFile(ctx, ".migrate.lock")
	if err != nil {
		return 0, fmt.Errorf("migrate sqlite %s: %w", s.path, err)
	}
	defer unlock()
	return s.migrateLocked(ctx)
}

// migrateLocked is Migrate for a caller that holds the migration lock.
func (s *Store) migrateLocked(ctx context.Context) (int, error) {
	p, err := s.provider()
	if err != nil {
		return 0, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return 0, s.interpret(fmt.Errorf("migrate: %w", err))
	}
	return len(res), nil
}

// MigrateDownTo rolls the schema back to version (0: empty). It is for
// tests of the down migrations; no command calls it.
func (s *Store) MigrateDownTo(ctx context.Context, version int64) error {
	unlock, err := s.lockFile(ctx, ".migrate.lock")
	if err != nil {
		return fmt.Errorf("migrate sqlite %s: %w", s.path, err)
	}
	defer unlock()
	p, err := s.provider()
	if err != nil {
		return err
	}
	if _, err := p.DownTo(ctx, version); err != nil {
		return s.interpret(fmt.Errorf("migrate down to %d: %w", version, err))
	}
	return nil
}

// lockFile takes an exclusive flock on the database path plus suffix,
// waiting for it until ctx ends, and returns the release. flock(2) cannot
// be interrupted by a context, so it polls: the holder is an open or a
// migration, which takes milliseconds, but one stopped mid-way (SIGSTOP, a
// hung disk) must not hang every later command.
func (s *Store) lockFile(ctx context.Context, suffix string) (func(), error) {
	path := s.path + suffix
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	const poll = 10 * time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s, held by another heartbeat process: %w", path, context.Cause(ctx))
		case <-time.After(poll):
		}
	}
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Now returns the store's clock.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var now string
	if err := s.db.QueryRowContext(ctx, `SELECT `+nowSQL).Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("read store clock: %w", s.interpret(err))
	}
	return parseTime(now)
}

const serverColumns = `id, name, host, port, ssh_user, key_path, host_key, host_key_is_ca, seen_host_key, mode, enabled, stale_after_ms, COALESCE(tokenless_from, ''), created_at`

func scanServer(row interface{ Scan(...any) error }) (store.Server, error) {
	var (
		sv                 store.Server
		tokenless, created string
		staleMillis        int64
	)
	if err := row.Scan(&sv.ID, &sv.Name, &sv.Host, &sv.Port, &sv.User, &sv.KeyPath,
		&sv.HostKey, &sv.HostKeyIsCA, &sv.SeenHostKey, &sv.Mode, &sv.Enabled, &staleMillis, &tokenless, &created); err != nil {
		return store.Server{}, err
	}
	sv.StaleAfter = time.Duration(staleMillis) * time.Millisecond
	sv.TokenlessFrom = store.ParseStoredTokenless(tokenless)
	t, err := parseTime(created)
	if err != nil {
		return store.Server{}, err
	}
	sv.CreatedAt = t
	return sv, nil
}

// AddServer registers a server.
func (s *Store) AddServer(ctx context.Context, spec store.ServerSpec) (store.Server, error) {
	if err := spec.Validate(); err != nil {
		return store.Server{}, err
	}
	spec = spec.Normalized()
	row := s.db.QueryRowContext(ctx, `INSERT INTO servers (name, host, port, ssh_user, key_path, mode, stale_after_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING `+serverColumns,
		spec.Name, spec.Host, spec.Port, spec.User, spec.KeyPath, spec.Mode, store.StaleAfterMillis(spec.StaleAfter))
	sv, err := scanServer(row)
	if err = s.interpret(err); errors.Is(err, store.ErrConflict) {
		return store.Server{}, fmt.Errorf("add server %q: name %w", spec.Name, err)
	}
	if err != nil {
		return store.Server{}, fmt.Errorf("add server %q: %w", spec.Name, err)
	}
	return sv, nil
}

// Server returns one server by id.
func (s *Store) Server(ctx context.Context, id int64) (store.Server, error) {
	sv, err := scanServer(s.db.QueryRowContext(ctx, `SELECT `+serverColumns+` FROM servers WHERE id = ?`, id))
	if err != nil {
		return store.Server{}, fmt.Errorf("server %d: %w", id, s.interpret(err))
	}
	return sv, nil
}

// ServerByName returns one server by name.
func (s *Store) ServerByName(ctx context.Context, name string) (store.Server, error) {
	sv, err := scanServer(s.db.QueryRowContext(ctx, `SELECT `+serverColumns+` FROM servers WHERE name = ?`, name))
	if err != nil {
		return store.Server{}, fmt.Errorf("server %q: %w", name, s.interpret(err))
	}
	return sv, nil
}

// Servers lists all servers ordered by name.
func (s *Store) Servers(ctx context.Context) ([]store.Server, error) {
	return s.servers(ctx, s.db)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) servers(ctx context.Context, q querier) ([]store.Server, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+serverColumns+` FROM servers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", s.interpret(err))
	}
	defer rows.Close()
	var out []store.Server
	for rows.Next() {
		sv, err := scanServer(rows)
		if err != nil {
			return nil, fmt.Errorf("list servers: %w", s.interpret(err))
		}
		out = append(out, sv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list servers: %w", s.interpret(err))
	}
	return out, nil
}

// RemoveServer deletes a server; its heartbeat and alerts go with it by
// foreign-key cascade.
func (s *Store) RemoveServer(ctx context.Context, id int64) error {
	return s.execOne(ctx, fmt.Sprintf("remove server %d", id), `DELETE FROM servers WHERE id = ?`, id)
}

// SetServerEnabled enables or disables a server.
func (s *Store) SetServerEnabled(ctx context.Context, id int64, enabled bool) error {
	return s.execOne(ctx, fmt.Sprintf("update server %d", id), `UPDATE servers SET enabled = ? WHERE id = ?`, enabled, id)
}

// UpdateServer replaces a server's address and credentials.
func (s *Store) UpdateServer(ctx context.Context, id int64, spec store.ServerSpec) (store.Server, error) {
	if err := spec.Validate(); err != nil {
		return store.Server{}, fmt.Errorf("update server %d: %w", id, err)
	}
	spec = spec.Normalized()
	// A zero stale-after keeps the server's own.
	sv, err := scanServer(s.db.QueryRowContext(ctx, `UPDATE servers SET host = ?, port = ?, ssh_user = ?, key_path = ?,
			stale_after_ms = COALESCE(NULLIF(?, 0), stale_after_ms)
		WHERE id = ? RETURNING `+serverColumns,
		spec.Host, spec.Port, spec.User, spec.KeyPath, spec.StaleAfter.Milliseconds(), id))
	if err != nil {
		return store.Server{}, fmt.Errorf("update server %d: %w", id, s.interpret(err))
	}
	return sv, nil
}

// SetServerMode sets how a server's heartbeat arrives.
func (s *Store) SetServerMode(ctx context.Context, id int64, mode string) error {
	if err := store.ValidateMode(mode); err != nil {
		return fmt.Errorf("server %d: %w", id, err)
	}
	return s.execOne(ctx, fmt.Sprintf("update server %d", id), `UPDATE servers SET mode = ? WHERE id = ?`, mode, id)
}

// execOne runs a statement that must touch exactly one row.
func (s *Store) execOne(ctx context.Context, what, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, s.interpret(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, s.interpret(err))
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

// ImportServers upserts servers by name in one transaction.
func (s *Store) ImportServers(ctx context.Context, specs []store.ServerSpec) (store.ImportResult, error) {
	var res store.ImportResult
	if err := store.ValidateImport(specs); err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	fail := func(err error) (store.ImportResult, error) {
		return store.ImportResult{}, fmt.Errorf("import: %w", s.interpret(err))
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	existing, err := s.servers(ctx, tx)
	if err != nil {
		return fail(err)
	}
	byName := make(map[string]store.Server, len(existing))
	for _, sv := range existing {
		byName[sv.Name] = sv
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO servers (name, host, port, ssh_user, key_path, mode, stale_after_ms) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fail(err)
	}
	defer ins.Close()
	upd, err := tx.PrepareContext(ctx, `UPDATE servers SET host = ?, port = ?, ssh_user = ?, key_path = ? WHERE id = ?`)
	if err != nil {
		return fail(err)
	}
	defer upd.Close()
	for _, spec := range specs {
		spec = spec.Normalized()
		sv, ok := byName[spec.Name]
		switch {
		case !ok:
			if _, err := ins.ExecContext(ctx, spec.Name, spec.Host, spec.Port, spec.User, spec.KeyPath, spec.Mode, store.StaleAfterMillis(spec.StaleAfter)); err != nil {
				return fail(fmt.Errorf("server %q: %w", spec.Name, err))
			}
			res.Added++
		case sv.Same(spec):
			res.Unchanged++
		default:
			if _, err := upd.ExecContext(ctx, spec.Host, spec.Port, spec.User, spec.KeyPath, sv.ID); err != nil {
				return fail(fmt.Errorf("server %q: %w", spec.Name, err))
			}
			res.Updated++
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(fmt.Errorf("commit: %w", err))
	}
	return res, nil
}

const alertColumns = `a.id, a.server_id, s.name, a.kind, a.severity, a.message, a.source, COALESCE(a.external_key, ''), a.created_at, a.resolved_at`

func scanAlert(row interface{ Scan(...any) error }) (store.Alert, error) {
	var (
		a        store.Alert
		created  string
		resolved sql.NullString
	)
	if err := row.Scan(&a.ID, &a.ServerID, &a.ServerName, &a.Kind, &a.Severity, &a.Message, &a.Source, &a.ExternalKey, &created, &resolved); err != nil {
		return store.Alert{}, err
	}
	var err error
	if a.CreatedAt, err = parseTime(created); err != nil {
		return store.Alert{}, err
	}
	if a.ResolvedAt, err = parseNullTime(resolved); err != nil {
		return store.Alert{}, err
	}
	return a, nil
}

// nullKey stores an empty external key as NULL: keyless alerts stay out
// of the unique index on active keys.
func nullKey(k string) any {
	if k == "" {
		return nil
	}
	return k
}

// onActiveKey is the conflict target of the partial unique index
// alerts_active_external_key (migration 00009).
const onActiveKey = `ON CONFLICT (server_id, external_key) WHERE resolved_at IS NULL AND external_key IS NOT NULL DO NOTHING`

// RaiseAlert records an active alert, or returns the active one with the
// same external key.
func (s *Store) RaiseAlert(ctx context.Context, spec store.AlertSpec) (store.Alert, error) {
	if err := spec.Validate(); err != nil {
		return store.Alert{}, err
	}
	fail := func(err error) (store.Alert, error) {
		return store.Alert{}, fmt.Errorf("raise alert: server %d: %w", spec.ServerID, s.interpret(err))
	}
	// One transaction, so the alert the INSERT skipped is still active
	// when it is read back (SQLite has one writer at a time).
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	// "WHERE id = ?" also keeps SQLite from reading ON CONFLICT as a join
	// constraint of the SELECT.
	var id int64
	existing := false
	err = tx.QueryRowContext(ctx, `INSERT INTO alerts (server_id, kind, severity, message, source, external_key)
		SELECT id, ?, ?, ?, ?, ? FROM servers WHERE id = ? `+onActiveKey+` RETURNING id`,
		spec.Kind, spec.Severity, spec.Message, spec.Source, nullKey(spec.ExternalKey), spec.ServerID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) && spec.ExternalKey != "" {
		existing = true
		err = tx.QueryRowContext(ctx, `SELECT id FROM alerts WHERE server_id = ? AND external_key = ? AND resolved_at IS NULL`,
			spec.ServerID, spec.ExternalKey).Scan(&id)
	}
	if err != nil {
		return fail(err)
	}
	a, err := scanAlert(tx.QueryRowContext(ctx, `SELECT `+alertColumns+`
		FROM alerts a JOIN servers s ON s.id = a.server_id WHERE a.id = ?`, id))
	if err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	a.Existing = existing
	return a, nil
}

func (s *Store) alert(ctx context.Context, id int64) (store.Alert, error) {
	a, err := scanAlert(s.db.QueryRowContext(ctx, `SELECT `+alertColumns+`
		FROM alerts a JOIN servers s ON s.id = a.server_id WHERE a.id = ?`, id))
	if err != nil {
		return store.Alert{}, fmt.Errorf("alert %d: %w", id, s.interpret(err))
	}
	return a, nil
}

// ResolveAlert marks an alert resolved.
func (s *Store) ResolveAlert(ctx context.Context, id int64) (store.Alert, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE alerts SET resolved_at = `+nowSQL+` WHERE id = ? AND resolved_at IS NULL`, id)
	if err != nil {
		return store.Alert{}, fmt.Errorf("resolve alert %d: %w", id, s.interpret(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return store.Alert{}, fmt.Errorf("resolve alert %d: %w", id, s.interpret(err))
	}
	a, err := s.alert(ctx, id)
	if err != nil {
		return store.Alert{}, err
	}
	if n == 0 {
		return a, fmt.Errorf("resolve alert %d: already resolved: %w", id, store.ErrConflict)
	}
	return a, nil
}

// ResolveAlertByKey resolves a server's active alert by external key.
func (s *Store) ResolveAlertByKey(ctx context.Context, serverID int64, key string) (store.Alert, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `UPDATE alerts SET resolved_at = `+nowSQL+`
		WHERE server_id = ? AND external_key = ? AND resolved_at IS NULL RETURNING id`, serverID, key).Scan(&id)
	if err == nil {
		return s.alert(ctx, id)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return store.Alert{}, fmt.Errorf("resolve alert %q of server %d: %w", key, serverID, s.interpret(err))
	}
	a, err := scanAlert(s.db.QueryRowContext(ctx, `SELECT `+alertColumns+` FROM alerts a JOIN servers s ON s.id = a.server_id
		WHERE a.server_id = ? AND a.external_key = ? ORDER BY a.resolved_at IS NOT NULL, a.resolved_at DESC, a.id DESC LIMIT 1`, serverID, key))
	if err != nil {
		return store.Alert{}, fmt.Errorf("resolve alert %q of server %d: %w", key, serverID, s.interpret(err))
	}
	return a, fmt.Errorf("resolve alert %q of server %d: already resolved: %w", key, serverID, store.ErrConflict)
}

// keyedRaise is one raise as ApplyKeyedAlerts hands it to json_each.
type keyedRaise struct {
	ServerID int64  `json:"s"`
	Kind     string `json:"k"`
	Severity string `json:"v"`
	Message  string `json:"m"`
	Source   string `json:"o"`
	Key      string `json:"x"`
}

// ApplyKeyedAlerts resolves, then raises, alerts by key: two set-based
// statements over a JSON array each (json_each), in one transaction.
func (s *Store) ApplyKeyedAlerts(ctx context.Context, raise []store.AlertSpec, resolve []store.AlertKey) (store.KeyedAlertsResult, error) {
	var res store.KeyedAlertsResult
	raises := make([]keyedRaise, len(raise))
	for i, r := range raise {
		if r.ExternalKey == "" {
			return res, fmt.Errorf("raise alert on server %d: no external key: %w", r.ServerID, store.ErrInvalid)
		}
		if err := r.Validate(); err != nil {
			return res, fmt.Errorf("raise alert on server %d: %w", r.ServerID, err)
		}
		raises[i] = keyedRaise{r.ServerID, r.Kind, r.Severity, r.Message, r.Source, r.ExternalKey}
	}
	resolves := make([][2]any, len(resolve))
	for i, k := range resolve {
		resolves[i] = [2]any{k.ServerID, k.Key}
	}
	raiseJSON, err := json.Marshal(raises)
	if err != nil {
		return res, err
	}
	resolveJSON, err := json.Marshal(resolves)
	if err != nil {
		return res, err
	}
	fail := func(err error) (store.KeyedAlertsResult, error) {
		return store.KeyedAlertsResult{}, fmt.Errorf("apply %d raised and %d resolved alerts: %w", len(raise), len(resolve), s.interpret(err))
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	r, err := tx.ExecContext(ctx, `UPDATE alerts SET resolved_at = `+nowSQL+`
		WHERE resolved_at IS NULL AND external_key IS NOT NULL AND (server_id, external_key) IN (
			SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))`, string(resolveJSON))
	if err != nil {
		return fail(err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return fail(err)
	}
	res.Resolved = int(n)
	r, err = tx.ExecContext(ctx, `INSERT INTO alerts (server_id, kind, severity, message, source, external_key)
		SELECT s.id, json_extract(j.value, '$.k'), json_extract(j.value, '$.v'), json_extract(j.value, '$.m'),
			json_extract(j.value, '$.o'), json_extract(j.value, '$.x')
		FROM json_each(?) AS j JOIN servers s ON s.id = json_extract(j.value, '$.s')
		WHERE true `+onActiveKey, string(raiseJSON))
	if err != nil {
		return fail(err)
	}
	if n, err = r.RowsAffected(); err != nil {
		return fail(err)
	}
	res.Raised = int(n)
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return res, nil
}

// Alerts lists active alerts, or all when all is set, newest first.
func (s *Store) Alerts(ctx context.Context, all bool) ([]store.Alert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+alertColumns+`
		FROM alerts a JOIN servers s ON s.id = a.server_id
		WHERE ? OR a.resolved_at IS NULL ORDER BY a.created_at DESC, a.id DESC`, all)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", s.interpret(err))
	}
	defer rows.Close()
	var out []store.Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("list alerts: %w", s.interpret(err))
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list alerts: %w", s.interpret(err))
	}
	return out, nil
}

// Status reads the fleet in one query.
func (s *Store) Status(ctx context.Context) (store.Snapshot, error) {
	var snap store.Snapshot
	now, err := s.eachStatus(ctx, "ORDER BY s.name", func(_ time.Time, st store.ServerStatus) error {
		snap.Servers = append(snap.Servers, st)
		return nil
	})
	if err != nil {
		return store.Snapshot{}, err
	}
	snap.Now = now
	return snap, nil
}

// EachStatus implements store.Store.
func (s *Store) EachStatus(ctx context.Context, fn func(now time.Time, st store.ServerStatus) error) error {
	_, err := s.eachStatus(ctx, "", fn)
	return err
}

// eachStatus runs the fleet's status query with the given ORDER BY
// clause, hands every row to fn and returns the clock it read.
func (s *Store) eachStatus(ctx context.Context, orderBy string, fn func(now time.Time, st store.ServerStatus) error) (time.Time, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return time.Time{}, fmt.Errorf("read status: %w", s.interpret(err))
	}
	defer tx.Rollback()
	// The clock is read in the same transaction as the rows, so ages are
	// measured against one consistent instant.
	var nowText string
	if err := tx.QueryRowContext(ctx, `SELECT `+nowSQL).Scan(&nowText); err != nil {
		return time.Time{}, fmt.Errorf("read status: %w", s.interpret(err))
	}
	now, err := parseTime(nowText)
	if err != nil {
		return time.Time{}, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+statusColumns+`,
			(SELECT count(*) FROM alerts a WHERE a.server_id = s.id AND a.resolved_at IS NULL)
		FROM servers s LEFT JOIN heartbeats h ON h.server_id = s.id
		LEFT JOIN server_states st ON st.server_id = s.id
		LEFT JOIN `+activeWindowsSQL+` mw ON mw.server_id = s.id AND mw.rn = 1
		`+orderBy)
	if err != nil {
		return time.Time{}, fmt.Errorf("read status: %w", s.interpret(err))
	}
	defer rows.Close()
	for rows.Next() {
		st, err := scanStatus(rows)
		if err != nil {
			return time.Time{}, fmt.Errorf("read status: %w", s.interpret(err))
		}
		if err := fn(now, st); err != nil {
			return time.Time{}, err
		}
	}
	if err := rows.Err(); err != nil {
		return time.Time{}, fmt.Errorf("read status: %w", s.interpret(err))
	}
	return now, nil
}

// formatTime is the stored form of an explicit time: the same text nowSQL
// produces, so that stored times keep sorting as text.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

func parseNullTime(s sql.NullString) (*time.Time, error) {
	if !s.Valid {
		return nil, nil
	}
	t, err := parseTime(s.String)
	if err != nil {
		return nil, err
	}
	return &t, nil
}
