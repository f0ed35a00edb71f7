// Package postgres is the production Store: several probe hosts and API
// servers share one database, and its clock is the one truth for heartbeat
// ages.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/stacksense/heartbeat/migrations"
	"github.com/stacksense/heartbeat/pkg/redact"
	"github.com/stacksense/heartbeat/pkg/store"
)

// Options tune how the store connects.
type Options struct {
	// ConnectTimeout bounds reaching the server; 0 means 5 s.
	ConnectTimeout time.Duration
	// MaxConns caps the pool; 0 means pgxpool's default.
	MaxConns int32
	// StatementTimeout is the session's statement_timeout: the server
	// cancels any statement running longer. 0 means the URL's
	// statement_timeout parameter if it has one, else
	// DefaultStatementTimeout; negative means none. Migrations run
	// without it.
	StatementTimeout time.Duration
	// LockTimeout is the session's lock_timeout: a statement waiting
	// longer for a lock (a table locked by someone else) fails instead of
	// hanging a Nagios check forever. 0 means the URL's lock_timeout
	// parameter if it has one, else DefaultLockTimeout; negative means
	// none. Migrations run without it.
	LockTimeout time.Duration
}

// Defaults for Options. A status read takes milliseconds, a 100,000-row
// probe batch about a second; these leave room for a loaded host while
// still ending a wait nobody is coming back from.
const (
	DefaultStatementTimeout = 30 * time.Second
	DefaultLockTimeout      = 10 * time.Second
)

// Store is the Postgres implementation of store.Store.
type Store struct {
	pool *pgxpool.Pool
	// cfg is the pool's configuration, kept so migrations can open their
	// own connections without the statement and lock timeouts.
	cfg *pgxpool.Config
	// name identifies the store in errors with the password redacted.
	name string
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url and checks that its schema is
// current. A schema that is behind returns a working Store together with an
// error wrapping store.ErrSchemaBehind, so `heartbeat migrate` can proceed
// while every other command stops.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx echoes the URL, password included, in parse errors.
		return nil, fmt.Errorf("open postgres store: malformed connection string %s", redact.ConnString(url))
	}
	cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	// Sent in the startup packet, so every pooled session has them
	// without a round trip. An operator may set either in the URL
	// (…?lock_timeout=30s), as for any Postgres setting.
	setTimeout(cfg.ConnConfig.RuntimeParams, "statement_timeout", opts.StatementTimeout, DefaultStatementTimeout)
	setTimeout(cfg.ConnConfig.RuntimeParams, "lock_timeout", opts.LockTimeout, DefaultLockTimeout)
	name := redact.ConnString(url)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store %s: %w", name, err)
	}
	pctx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, store.Unavailable("cannot reach postgres store %s: %s", name, connectError(err, opts.ConnectTimeout))
	}
	s := &Store{pool: pool, cfg: cfg, name: name}
	pending, err := s.Pending(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if pending > 0 {
		return s, fmt.Errorf("postgres store %s: %d migration(s) pending; run `heartbeat migrate`: %w", name, pending, store.ErrSchemaBehind)
	}
	return s, nil
}

// setTimeout sets a session timeout parameter: d if set (negative: 0,
// which Postgres reads as "no limit"), else what the URL said, else def.
func setTimeout(params map[string]string, name string, d, def time.Duration) {
	if d == 0 {
		if _, inURL := params[name]; inURL {
			return
		}
		d = def
	}
	params[name] = strconv.FormatInt(max(d.Milliseconds(), 0), 10)
}

// setting describes a session timeout for a message: "10s" for the
// milliseconds this package sets, the URL's text otherwise.
func (s *Store) setting(name string) string {
	v := s.cfg.ConnConfig.RuntimeParams[name]
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return (time.Duration(ms) * time.Millisecond).String()
	}
	return v
}

// connectError reduces pgx's connect error to its cause: the full text
// repeats host, user and database for every address tried, over several
// lines, and the caller already names the store.
func connectError(err error, timeout time.Duration) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.Error()
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Err.Error()
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

func (s *Store) provider() (*goose.Provider, *sql.DB, error) {
	// A session-level advisory lock serialises concurrent `migrate` runs
	// (two probe hosts upgraded at once) instead of letting them race.
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, nil, err
	}
	// Its own connections, without statement_timeout and lock_timeout: a
	// migration may rewrite a large table, and must wait for the readers
	// it locks out rather than fail half-way through an upgrade.
	cc := s.cfg.ConnConfig.Copy()
	cc.RuntimeParams["statement_timeout"] = "0"
	cc.RuntimeParams["lock_timeout"] = "0"
	return s.newProvider(stdlib.OpenDB(*cc), goose.WithSessionLocker(locker))
}

// checker is a provider that reads versions over the store's own pool:
// the check every command makes at open needs neither a second
// connection (a TLS handshake and a backend start) nor the lock.
func (s *Store) checker() (*goose.Provider, *sql.DB, error) {
	return s.newProvider(stdlib.OpenDBFromPool(s.pool))
}

func (s *Store) newProvider(db *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, *sql.DB, error) {
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.Postgres(), opts...)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return p, db, nil
}

// Pending reports how many migrations the database lacks.
func (s *Store) Pending(ctx context.Context) (int, error) {
	p, db, err := s.checker()
	if err != nil {
		return 0, fmt.Errorf("check schema of %s: %w", s.name, err)
	}
	defer db.Close()
	// A database nobody has migrated has no version table yet, and goose
	// reports that as an error rather than as version 0.
	var table *string
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('goose_db_version')::text`).Scan(&table); err != nil {
		return 0, fmt.Errorf("check schema of %s: %w", s.name, err)
	}
	if table == nil {
		return len(p.ListSources()), nil
	}
	// GetVersions does not take the lock, so a plain status check never
	// waits behind a running migration.
	cur, target, err := p.GetVersions(ctx)
	if err != nil {
		return 0, fmt.Errorf("check schema of %s: %w", s.name, err)
	}
	if cur > target {
		return 0, fmt.Errorf("schema of %s is version %d, newer than this binary (%d): upgrade heartbeat", s.name, cur, target)
	}
	n := 0
	for _, src := range p.ListSources() {
		if src.Version > cur {
			n++
		}
	}
	return n, nil
}

// Migrate applies pending migrations under an advisory lock and returns how
// many it applied.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	p, db, err := s.provider()
	if err != nil {
		return 0, fmt.Errorf("migrate %s: %w", s.name, err)
	}
	defer db.Close()
	res, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate %s: %w", s.name, err)
	}
	return len(res), nil
}

// MigrateDownTo rolls the schema back to version (0: empty) under the
// migration lock. It is for tests of the down migrations; no command
// calls it.
func (s *Store) MigrateDownTo(ctx context.Context, version int64) error {
	p, db, err := s.provider()
	if err != nil {
		return fmt.Errorf("migrate %s: %w", s.name, err)
	}
	defer db.Close()
	if _, err := p.DownTo(ctx, version); err != nil {
		return fmt.Errorf("migrate %s down to %d: %w", s.name, version, err)
	}
	return nil
}

// closeWait bounds Close. pgx cleans up a connection broken by a timeout
// by sending a cancel request on a new connection and waiting up to 15 s
// for the server; a server that stopped answering would hold every
// command's exit that long.
const closeWait = time.Second

// Close closes the pool, waiting at most closeWait for connections a hung
// server does not let go; the process exit ends those.
func (s *Store) Close() error {
	done := make(chan struct{})
	go func() {
		s.pool.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeWait):
	}
	return nil
}

// Now returns the store's clock.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var now time.Time
	if err := s.pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("read store clock: %w", s.interpret(err))
	}
	return now.UTC(), nil
}

const serverColumns = `id, name, host, port, ssh_user, key_path, host_key, host_key_is_ca, seen_host_key, mode, enabled, stale_after_ms, COALESCE(tokenless_from, ''), created_at`

func scanServer(row pgx.Row) (store.Server, error) {
	var (
		sv          store.Server
		staleMillis int64
		tokenless   string
	)
	if err := row.Scan(&sv.ID, &sv.Name, &sv.Host, &sv.Port, &sv.User, &sv.KeyPath,
		&sv.HostKey, &sv.HostKeyIsCA, &sv.SeenHostKey, &sv.Mode, &sv.Enabled, &staleMillis, &tokenless, &sv.CreatedAt); err != nil {
		return store.Server{}, err
	}
	sv.TokenlessFrom = store.ParseStoredTokenless(tokenless)
	sv.CreatedAt = sv.CreatedAt.UTC()
	sv.StaleAfter = time.Duration(staleMillis) * time.Millisecond
	return sv, nil
}

// AddServer registers a server.
func (s *Store) AddServer(ctx context.Context, spec store.ServerSpec) (store.Server, error) {
	if err := spec.Validate(); err != nil {
		return store.Server{}, err
	}
	spec = spec.Normalized()
	sv, err := scanServer(s.pool.QueryRow(ctx, `INSERT INTO servers (name, host, port, ssh_user, key_path, mode, stale_after_ms)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+serverColumns,
		spec.Name, spec.Host, spec.Port, spec.User, spec.KeyPath, spec.Mode, store.StaleAfterMillis(spec.StaleAfter)))
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
	sv, err := scanServer(s.pool.QueryRow(ctx, `SELECT `+serverColumns+` FROM servers WHERE id = $1`, id))
	if err != nil {
		return store.Server{}, fmt.Errorf("server %d: %w", id, s.interpret(err))
	}
	return sv, nil
}

// ServerByName returns one server by name.
func (s *Store) ServerByName(ctx context.Context, name string) (store.Server, error) {
	sv, err := scanServer(s.pool.QueryRow(ctx, `SELECT `+serverColumns+` FROM servers WHERE name = $1`, name))
	if err != nil {
		return store.Server{}, fmt.Errorf("server %q: %w", name, s.interpret(err))
	}
	return sv, nil
}

// Servers lists all servers ordered by name.
func (s *Store) Servers(ctx context.Context) ([]store.Server, error) {
	out, err := servers(ctx, s.pool)
	return out, s.interpret(err)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func servers(ctx context.Context, q querier) ([]store.Server, error) {
	rows, err := q.Query(ctx, `SELECT `+serverColumns+` FROM servers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Server, error) { return scanServer(r) })
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	return out, nil
}

// RemoveServer deletes a server; its heartbeat and alerts go with it by
// foreign-key cascade.
func (s *Store) RemoveServer(ctx context.Context, id int64) error {
	return s.execOne(ctx, fmt.Sprintf("remove server %d", id), `DELETE FROM servers WHERE id = $1`, id)
}

// SetServerEnabled enables or disables a server.
func (s *Store) SetServerEnabled(ctx context.Context, id int64, enabled bool) error {
	return s.execOne(ctx, fmt.Sprintf("update server %d", id), `UPDATE servers SET enabled = $1 WHERE id = $2`, enabled, id)
}

// UpdateServer replaces a server's address and credentials.
func (s *Store) UpdateServer(ctx context.Context, id int64, spec store.ServerSpec) (store.Server, error) {
	if err := spec.Validate(); err != nil {
		return store.Server{}, fmt.Errorf("update server %d: %w", id, err)
	}
	spec = spec.Normalized()
	// A zero stale-after keeps the server's own.
	sv, err := scanServer(s.pool.QueryRow(ctx, `UPDATE servers SET host = $1, port = $2, ssh_user = $3, key_path = $4,
			stale_after_ms = COALESCE(NULLIF($6::bigint, 0), stale_after_ms)
		WHERE id = $5 RETURNING `+serverColumns,
		spec.Host, spec.Port, spec.User, spec.KeyPath, id, spec.StaleAfter.Milliseconds()))
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
	return s.execOne(ctx, fmt.Sprintf("update server %d", id), `UPDATE servers SET mode = $1 WHERE id = $2`, mode, id)
}

func (s *Store) execOne(ctx context.Context, what, query string, args ...any) error {
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, s.interpret(err))
	}
	if tag.RowsAffected() == 0 {
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
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Lock the table against a concurrent import so the added/updated
		// counts describe exactly what this transaction did.
		if _, err := tx.Exec(ctx, `LOCK TABLE servers IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		existing, err := servers(ctx, tx)
		if err != nil {
			return err
		}
		byName := make(map[string]store.Server, len(existing))
		for _, sv := range existing {
			byName[sv.Name] = sv
		}
		var batch pgx.Batch
		for _, spec := range specs {
			spec = spec.Normalized()
			sv, ok := byName[spec.Name]
			switch {
			case !ok:
				batch.Queue(`INSERT INTO servers (name, host, port, ssh_user, key_path, mode, stale_after_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
					spec.Name, spec.Host, spec.Port, spec.User, spec.KeyPath, spec.Mode, store.StaleAfterMillis(spec.StaleAfter))
				res.Added++
			case sv.Same(spec):
				res.Unchanged++
			default:
				batch.Queue(`UPDATE servers SET host = $1, port = $2, ssh_user = $3, key_path = $4 WHERE id = $5`,
					spec.Host, spec.Port, spec.User, spec.KeyPath, sv.ID)
				res.Updated++
			}
		}
		if batch.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return store.ImportResult{}, fmt.Errorf("import: %w", s.interpret(err))
	}
	return res, nil
}

const alertColumns = `a.id, a.server_id, s.name, a.kind, a.severity, a.message, a.source, COALESCE(a.external_key, ''), a.created_at, a.resolved_at`

func scanAlert(row pgx.Row) (store.Alert, error) {
	return scanAlertFlag(row)
}

// scanAlertFlag scans alertColumns followed by the extra columns, if any.
func scanAlertFlag(row pgx.Row, extra ...any) (store.Alert, error) {
	var a store.Alert
	dest := append([]any{&a.ID, &a.ServerID, &a.ServerName, &a.Kind, &a.Severity, &a.Message, &a.Source, &a.ExternalKey, &a.CreatedAt, &a.ResolvedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return store.Alert{}, err
	}
	// pgx hands timestamptz back in the process's local zone.
	a.CreatedAt = a.CreatedAt.UTC()
	a.ResolvedAt = utcPtr(a.ResolvedAt)
	return a, nil
}

// nullKey stores an empty external key as NULL: keyless alerts stay out
// of the unique index on active keys.
func nullKey(k string) *string {
	if k == "" {
		return nil
	}
	return &k
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
	// The INSERT skips a key that is active and the second branch reads
	// that alert instead. If the conflicting row was committed after this
	// statement's snapshot, the second branch cannot see it and nothing
	// comes back; a new statement has a new snapshot, so try again before
	// calling the server unknown.
	var err error
	for range 3 {
		var existing bool
		var a store.Alert
		a, err = scanAlertFlag(s.pool.QueryRow(ctx, `WITH a AS (
				INSERT INTO alerts (server_id, kind, severity, message, source, external_key)
				SELECT id, $1, $2, $3, $5, $6 FROM servers WHERE id = $4 `+onActiveKey+` RETURNING *)
			SELECT `+alertColumns+`, false FROM a JOIN servers s ON s.id = a.server_id
			UNION ALL
			SELECT `+alertColumns+`, true FROM alerts a JOIN servers s ON s.id = a.server_id
			WHERE $6::text IS NOT NULL AND a.server_id = $4 AND a.external_key = $6::text AND a.resolved_at IS NULL
				AND NOT EXISTS (SELECT 1 FROM a)`,
			spec.Kind, spec.Severity, spec.Message, spec.ServerID, spec.Source, nullKey(spec.ExternalKey)), &existing)
		if err == nil {
			a.Existing = existing
			return a, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) || spec.ExternalKey == "" {
			break
		}
	}
	return store.Alert{}, fmt.Errorf("raise alert: server %d: %w", spec.ServerID, s.interpret(err))
}

// ResolveAlert marks an alert resolved.
func (s *Store) ResolveAlert(ctx context.Context, id int64) (store.Alert, error) {
	var resolvedNow bool
	a, err := scanAlertFlag(s.pool.QueryRow(ctx, `WITH u AS (
			UPDATE alerts SET resolved_at = now() WHERE id = $1 AND resolved_at IS NULL RETURNING id)
		SELECT `+alertColumns+`, EXISTS (SELECT 1 FROM u)
		FROM alerts a JOIN servers s ON s.id = a.server_id WHERE a.id = $1`, id), &resolvedNow)
	if err != nil {
		return store.Alert{}, fmt.Errorf("resolve alert %d: %w", id, s.interpret(err))
	}
	if !resolvedNow {
		return a, fmt.Errorf("resolve alert %d: already resolved: %w", id, store.ErrConflict)
	}
	// The CTE's outer SELECT sees the row as it was before the UPDATE, so
	// re-read it to return the resolution time.
	a, err = scanAlert(s.pool.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts a JOIN servers s ON s.id = a.server_id WHERE a.id = $1`, id))
	if err != nil {
		return store.Alert{}, fmt.Errorf("read alert %d: %w", id, s.interpret(err))
	}
	return a, nil
}

// ResolveAlertByKey resolves a server's active alert by external key.
func (s *Store) ResolveAlertByKey(ctx context.Context, serverID int64, key string) (store.Alert, error) {
	// RETURNING yields the row as updated, resolution time included.
	a, err := scanAlert(s.pool.QueryRow(ctx, `WITH a AS (
			UPDATE alerts SET resolved_at = now()
			WHERE server_id = $1 AND external_key = $2 AND resolved_at IS NULL RETURNING *)
		SELECT `+alertColumns+` FROM a JOIN servers s ON s.id = a.server_id`, serverID, key))
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.Alert{}, fmt.Errorf("resolve alert %q of server %d: %w", key, serverID, s.interpret(err))
	}
	a, err = scanAlert(s.pool.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts a JOIN servers s ON s.id = a.server_id
		WHERE a.server_id = $1 AND a.external_key = $2 ORDER BY a.resolved_at DESC NULLS FIRST, a.id DESC LIMIT 1`, serverID, key))
	if err != nil {
		return store.Alert{}, fmt.Errorf("resolve alert %q of server %d: %w", key, serverID, s.interpret(err))
	}
	return a, fmt.Errorf("resolve alert %q of server %d: already resolved: %w", key, serverID, store.ErrConflict)
}

// ApplyKeyedAlerts resolves, then raises, alerts by key: two set-based
// statements in one transaction, sent in one round trip.
func (s *Store) ApplyKeyedAlerts(ctx context.Context, raise []store.AlertSpec, resolve []store.AlertKey) (store.KeyedAlertsResult, error) {
	var res store.KeyedAlertsResult
	n := len(raise)
	ids, kinds, sevs, msgs, sources, keys := make([]int64, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, r := range raise {
		if r.ExternalKey == "" {
			return res, fmt.Errorf("raise alert on server %d: no external key: %w", r.ServerID, store.ErrInvalid)
		}
		if err := r.Validate(); err != nil {
			return res, fmt.Errorf("raise alert on server %d: %w", r.ServerID, err)
		}
		ids[i], kinds[i], sevs[i], msgs[i], sources[i], keys[i] = r.ServerID, r.Kind, r.Severity, r.Message, r.Source, r.ExternalKey
	}
	rIDs, rKeys := make([]int64, len(resolve)), make([]string, len(resolve))
	for i, k := range resolve {
		rIDs[i], rKeys[i] = k.ServerID, k.Key
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var b pgx.Batch
		b.Queue(`UPDATE alerts a SET resolved_at = now()
			FROM unnest($1::bigint[], $2::text[]) AS k(server_id, key)
			WHERE a.server_id = k.server_id AND a.external_key = k.key AND a.resolved_at IS NULL`, rIDs, rKeys).
			Exec(func(ct pgconn.CommandTag) error { res.Resolved = int(ct.RowsAffected()); return nil })
		b.Queue(`INSERT INTO alerts (server_id, kind, severity, message, source, external_key)
			SELECT s.id, r.kind, r.severity, r.message, r.source, r.key
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
				AS r(server_id, kind, severity, message, source, key)
			JOIN servers s ON s.id = r.server_id
			-- A fixed insertion order: two receivers applying overlapping
			-- payloads (an HA Alertmanager pair) wait on each other's keys in
			-- the same order instead of deadlocking.
			ORDER BY r.server_id, r.key
			`+onActiveKey, ids, kinds, sevs, msgs, sources, keys).
			Exec(func(ct pgconn.CommandTag) error { res.Raised = int(ct.RowsAffected()); return nil })
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return store.KeyedAlertsResult{}, fmt.Errorf("apply %d raised and %d resolved alerts: %w", len(raise), len(resolve), s.interpret(err))
	}
	return res, nil
}

// Alerts lists active alerts, or all when all is set, newest first.
func (s *Store) Alerts(ctx context.Context, all bool) ([]store.Alert, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+alertColumns+`
		FROM alerts a JOIN servers s ON s.id = a.server_id
		WHERE $1 OR a.resolved_at IS NULL ORDER BY a.created_at DESC, a.id DESC`, all)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", s.interpret(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Alert, error) { return scanAlert(r) })
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", s.interpret(err))
	}
	return out, nil
}

// Status reads the fleet and the store's clock in one query.
func (s *Store) Status(ctx context.Context) (store.Snapshot, error) {
	var snap store.Snapshot
	err := s.eachStatus(ctx, "ORDER BY s.name", func(now time.Time, st store.ServerStatus) error {
		snap.Now = now
		snap.Servers = append(snap.Servers, st)
		return nil
	})
	if err != nil {
		return store.Snapshot{}, err
	}
	if snap.Now.IsZero() {
		// No servers, so no row carried the clock.
		if snap.Now, err = s.Now(ctx); err != nil {
			return store.Snapshot{}, err
		}
	}
	snap.Now = snap.Now.UTC()
	return snap, nil
}

// EachStatus implements store.Store. Ordered by id, not by name as
// Status is: the primary keys give that order, so the planner merges the
// tables on their indexes and the first row leaves at once. By name the
// 100,000-row result was sorted (spilling to disk at the default
// work_mem), and unordered the planner hashed every table first (a tenth
// of a second before the first row, at 100,000 servers).
func (s *Store) EachStatus(ctx context.Context, fn func(now time.Time, st store.ServerStatus) error) error {
	return s.eachStatus(ctx, "ORDER BY s.id", fn)
}

// eachStatus runs the fleet's status query with the given ORDER BY
// clause and hands every row to fn. now() is the transaction's start, so
// every row carries the same clock.
func (s *Store) eachStatus(ctx context.Context, orderBy string, fn func(now time.Time, st store.ServerStatus) error) error {
	rows, err := s.pool.Query(ctx, `SELECT now(), `+statusColumns+`, COALESCE(a.active, 0), `+locationsColumn+`
		FROM servers s
		LEFT JOIN heartbeats h ON h.server_id = s.id
		LEFT JOIN server_states st ON st.server_id = s.id
		LEFT JOIN (SELECT server_id, count(*) AS active FROM alerts WHERE resolved_at IS NULL GROUP BY server_id) a
			ON a.server_id = s.id
		LEFT JOIN `+activeWindowsSQL+` mw ON mw.server_id = s.id
		`+orderBy)
	if err != nil {
		return fmt.Errorf("read status: %w", s.interpret(err))
	}
	defer rows.Close()
	sc := newStatusScanner()
	for rows.Next() {
		now, st, err := sc.scan(rows)
		if err != nil {
			return fmt.Errorf("read status: %w", s.interpret(err))
		}
		if err := fn(now, st); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read status: %w", s.interpret(err))
	}
	return nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
