package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

// ServerStatus reads one server with its heartbeat and active alert count,
// by primary key, so it does not slow down as the fleet grows as Status
// does.
func (s *Store) ServerStatus(ctx context.Context, id int64) (store.ServerStatus, time.Time, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return store.ServerStatus{}, time.Time{}, fmt.Errorf("read status of server %d: %w", id, s.interpret(err))
	}
	defer tx.Rollback()
	// The clock is read in the same transaction as the row, so the age is
	// measured against one consistent instant, as in Status.
	var now string
	if err := tx.QueryRowContext(ctx, `SELECT `+nowSQL).Scan(&now); err != nil {
		return store.ServerStatus{}, time.Time{}, fmt.Errorf("read status of server %d: %w", id, s.interpret(err))
	}
	at, err := parseTime(now)
	if err != nil {
		return store.ServerStatus{}, time.Time{}, err
	}
	st, err := scanStatus(tx.QueryRowContext(ctx, `SELECT `+statusColumns+`,
			(SELECT count(*) FROM alerts a WHERE a.server_id = s.id AND a.resolved_at IS NULL)
		FROM servers s LEFT JOIN heartbeats h ON h.server_id = s.id
		LEFT JOIN server_states st ON st.server_id = s.id
		LEFT JOIN `+activeWindowsSQL+` mw ON mw.server_id = s.id AND mw.rn = 1
		WHERE s.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.ServerStatus{}, time.Time{}, fmt.Errorf("read status of server %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.ServerStatus{}, time.Time{}, fmt.Errorf("read status of server %d: %w", id, s.interpret(err))
	}
	return st, at, nil
}

// statusColumns are a status row's server, heartbeat and evaluated-state
// columns (aliases s, h and st) and the active maintenance window (alias
// mw, see activeWindowsSQL); a query selects the server's active alert
// count after them, as scanStatus reads. The server's credentials and keys
// are not among them (see store.ServerStatus).
const statusColumns = `s.id, s.name, s.host, s.port, s.mode, s.enabled, s.stale_after_ms,
	COALESCE(st.state, ''), st.since,
	h.last_heartbeat, COALESCE(h.source, ''), COALESCE(h.agent_version, ''), h.last_probe,
	COALESCE(h.last_error_class, ''), COALESCE(h.last_error, ''),
	COALESCE(h.latency_us, 0), COALESCE(h.consecutive_failures, 0),
	COALESCE(h.phase_dial_us, 0), COALESCE(h.phase_banner_us, 0), COALESCE(h.phase_kex_us, 0),
	COALESCE(h.phase_auth_us, 0), COALESCE(h.phase_exec_us, 0),
	mw.until, COALESCE(mw.reason, '')`

// activeWindowsSQL is the active maintenance windows at the store's clock,
// numbered per server latest start first; join it as mw with mw.rn = 1.
const activeWindowsSQL = `(SELECT server_id, COALESCE(ended_at, ends_at) AS until, reason,
		row_number() OVER (PARTITION BY server_id ORDER BY starts_at DESC, id DESC) AS rn
	FROM maintenance_windows
	WHERE COALESCE(ended_at, ends_at) > ` + nowSQL + ` AND starts_at <= ` + nowSQL + `)`

// scanStatus reads one status row: statusColumns and the active alert
// count, parsing the stored text times.
func scanStatus(row interface{ Scan(...any) error }) (store.ServerStatus, error) {
	var (
		st                store.ServerStatus
		lastHB, lastProbe sql.NullString
		latencyMicros     int64
		staleMillis       int64
		since             sql.NullString
		maintUntil        sql.NullString
		phases            [store.PhaseColumns]int64
	)
	if err := row.Scan(&st.ID, &st.Name, &st.Host, &st.Port, &st.Mode, &st.Enabled, &staleMillis,
		&st.State, &since,
		&lastHB, &st.Source, &st.AgentVersion, &lastProbe,
		&st.LastErrorClass, &st.LastError, &latencyMicros, &st.ConsecutiveFailures,
		&phases[0], &phases[1], &phases[2], &phases[3], &phases[4],
		&maintUntil, &st.MaintenanceReason, &st.ActiveAlerts); err != nil {
		return store.ServerStatus{}, err
	}
	var err error
	if st.StateSince, err = parseNullTime(since); err != nil {
		return store.ServerStatus{}, err
	}
	st.StaleAfter = time.Duration(staleMillis) * time.Millisecond
	if st.LastHeartbeat, err = parseNullTime(lastHB); err != nil {
		return store.ServerStatus{}, err
	}
	if st.LastProbe, err = parseNullTime(lastProbe); err != nil {
		return store.ServerStatus{}, err
	}
	st.Latency = time.Duration(latencyMicros) * time.Microsecond
	st.Phases = store.PhasesFromMicros(phases)
	if st.MaintenanceUntil, err = parseNullTime(maintUntil); err != nil {
		return store.ServerStatus{}, err
	}
	st.InMaintenance = st.MaintenanceUntil != nil
	return st, nil
}
