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
	var (
		st                store.ServerStatus
		now, created      string
		lastHB, lastProbe sql.NullString
		latencyMicros     int64
		phases            [store.PhaseColumns]int64
	)
	// The clock is read by the same statement as the row, so the age is
	// measured against one consistent instant.
	err := s.db.QueryRowContext(ctx, `SELECT `+nowSQL+`, s.id, s.name, s.host, s.port, s.ssh_user, s.key_path,
			s.host_key, s.seen_host_key, s.mode, s.enabled, s.created_at,
			h.last_heartbeat, COALESCE(h.source, ''), COALESCE(h.agent_version, ''), h.last_probe,
			COALESCE(h.last_error_class, ''), COALESCE(h.last_error, ''),
			COALESCE(h.latency_us, 0), COALESCE(h.consecutive_failures, 0),
			COALESCE(h.phase_dial_us, 0), COALESCE(h.phase_banner_us, 0), COALESCE(h.phase_kex_us, 0),
			COALESCE(h.phase_auth_us, 0), COALESCE(h.phase_exec_us, 0),
			(SELECT count(*) FROM alerts a WHERE a.server_id = s.id AND a.resolved_at IS NULL)
		FROM servers s LEFT JOIN heartbeats h ON h.server_id = s.id
		WHERE s.id = ?`, id).Scan(&now, &st.ID, &st.Name, &st.Host, &st.Port, &st.User, &st.KeyPath,
		&st.HostKey, &st.SeenHostKey, &st.Mode, &st.Enabled, &created,
		&lastHB, &st.Source, &st.AgentVersion, &lastProbe,
		&st.LastErrorClass, &st.LastError, &latencyMicros, &st.ConsecutiveFailures,
		&phases[0], &phases[1], &phases[2], &phases[3], &phases[4], &st.ActiveAlerts)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ServerStatus{}, time.Time{}, fmt.Errorf("read status of server %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.ServerStatus{}, time.Time{}, fmt.Errorf("read status of server %d: %w", id, err)
	}
	at, err := parseTime(now)
	if err != nil {
		return store.ServerStatus{}, time.Time{}, err
	}
	if st.CreatedAt, err = parseTime(created); err != nil {
		return store.ServerStatus{}, time.Time{}, err
	}
	if st.LastHeartbeat, err = parseNullTime(lastHB); err != nil {
		return store.ServerStatus{}, time.Time{}, err
	}
	if st.LastProbe, err = parseNullTime(lastProbe); err != nil {
		return store.ServerStatus{}, time.Time{}, err
	}
	st.Latency = time.Duration(latencyMicros) * time.Microsecond
	st.Phases = store.PhasesFromMicros(phases)
	return st, at, nil
}
