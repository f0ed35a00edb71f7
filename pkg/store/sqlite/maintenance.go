package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

// idList is ids, without repeats, as a JSON array for json_each.
func idList(ids []int64) (string, int) {
	seen := make(map[int64]bool, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	b, _ := json.Marshal(out) // a slice of int64 always encodes
	return string(b), len(out)
}

const windowColumns = `w.id, w.server_id, s.name, w.starts_at, w.ends_at, w.ended_at, w.reason, w.created_by,
	COALESCE(w.schedule_id, 0), COALESCE(ms.name, '')`

const windowFrom = `maintenance_windows w JOIN servers s ON s.id = w.server_id
	LEFT JOIN maintenance_schedules ms ON ms.id = w.schedule_id`

func (s *Store) windows(ctx context.Context, q querier, where string, args ...any) ([]store.MaintenanceWindow, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+windowColumns+` FROM `+windowFrom+` WHERE `+where+`
		ORDER BY w.starts_at, s.name, w.id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.MaintenanceWindow
	for rows.Next() {
		var (
			w            store.MaintenanceWindow
			starts, ends string
			ended        sql.NullString
		)
		if err := rows.Scan(&w.ID, &w.ServerID, &w.ServerName, &starts, &ends, &ended, &w.Reason, &w.By, &w.ScheduleID, &w.ScheduleName); err != nil {
			return nil, err
		}
		if w.StartsAt, err = parseTime(starts); err != nil {
			return nil, err
		}
		if w.EndsAt, err = parseTime(ends); err != nil {
			return nil, err
		}
		if w.EndedAt, err = parseNullTime(ended); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// StartMaintenance opens the windows in one INSERT … SELECT inside a write
// transaction, so an unknown id writes nothing.
func (s *Store) StartMaintenance(ctx context.Context, spec store.MaintenanceSpec) ([]store.MaintenanceWindow, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("start maintenance: %w", err)
	}
	fail := func(err error) ([]store.MaintenanceWindow, error) {
		return nil, fmt.Errorf("start maintenance: %w", s.interpret(err))
	}
	list, n := idList(spec.ServerIDs)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	var (
		nowText string
		before  int64
	)
	if err := tx.QueryRowContext(ctx, `SELECT `+nowSQL+`, COALESCE((SELECT max(id) FROM maintenance_windows), 0)`).Scan(&nowText, &before); err != nil {
		return fail(err)
	}
	now, err := parseTime(nowText)
	if err != nil {
		return fail(err)
	}
	until := spec.Until.UTC()
	if spec.Until.IsZero() {
		until = now.Add(spec.For)
	} else if !until.After(now) {
		return fail(fmt.Errorf("%w: --until %s is not in the future (store clock %s)", store.ErrInvalid,
			until.Format(time.RFC3339), now.Format(time.RFC3339)))
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO maintenance_windows (server_id, starts_at, ends_at, reason, created_by)
		SELECT id, ?, ?, ?, ? FROM servers WHERE ? OR id IN (SELECT value FROM json_each(?))`,
		nowText, formatTime(until), spec.Reason, spec.By, spec.All, list)
	if err != nil {
		return fail(err)
	}
	if got, _ := res.RowsAffected(); !spec.All && int(got) != n {
		return fail(fmt.Errorf("%w: %d of the %d servers named do not exist", store.ErrNotFound, n-int(got), n))
	}
	out, err := s.windows(ctx, tx, `w.id > ?`, before)
	if err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return out, nil
}

// EndMaintenance ends active windows now.
func (s *Store) EndMaintenance(ctx context.Context, serverIDs []int64, all bool) (int, error) {
	list, _ := idList(serverIDs)
	res, err := s.db.ExecContext(ctx, `UPDATE maintenance_windows SET ended_at = `+nowSQL+`
		WHERE (?1 OR server_id IN (SELECT value FROM json_each(?2)))
			AND starts_at <= `+nowSQL+` AND `+nowSQL+` < COALESCE(ended_at, ends_at)`, all, list)
	if err != nil {
		return 0, fmt.Errorf("end maintenance: %w", s.interpret(err))
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// MaintenanceWindows lists windows.
func (s *Store) MaintenanceWindows(ctx context.Context, activeOnly bool) ([]store.MaintenanceWindow, error) {
	out, err := s.windows(ctx, s.db, `NOT ? OR COALESCE(w.ended_at, w.ends_at) > `+nowSQL, activeOnly)
	if err != nil {
		return nil, fmt.Errorf("read maintenance windows: %w", s.interpret(err))
	}
	return out, nil
}

// AddSchedule stores a schedule and its server list in one transaction.
func (s *Store) AddSchedule(ctx context.Context, spec store.ScheduleSpec) (store.MaintenanceSchedule, error) {
	if err := spec.Validate(); err != nil {
		return store.MaintenanceSchedule{}, fmt.Errorf("add schedule: %w", err)
	}
	fail := func(err error) (store.MaintenanceSchedule, error) {
		return store.MaintenanceSchedule{}, fmt.Errorf("add schedule %q: %w", spec.Name, s.interpret(err))
	}
	list, n := idList(spec.ServerIDs)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO maintenance_schedules (name, cron, duration_ms, all_servers, reason, created_by)
		VALUES (?, ?, ?, ?, ?, ?)`, spec.Name, spec.Cron, spec.Duration.Milliseconds(), spec.All, spec.Reason, spec.By)
	if err != nil {
		return fail(err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fail(err)
	}
	res, err = tx.ExecContext(ctx, `INSERT INTO maintenance_schedule_servers (schedule_id, server_id)
		SELECT ?, id FROM servers WHERE id IN (SELECT value FROM json_each(?))`, id, list)
	if err != nil {
		return fail(err)
	}
	if got, _ := res.RowsAffected(); int(got) != n {
		return fail(fmt.Errorf("%w: %d of the %d servers named do not exist", store.ErrNotFound, n-int(got), n))
	}
	out, err := s.schedules(ctx, tx, id)
	if err != nil || len(out) != 1 {
		return fail(fmt.Errorf("read it back: %v", err))
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return out[0], nil
}

// Schedules lists schedules by name.
func (s *Store) Schedules(ctx context.Context) ([]store.MaintenanceSchedule, error) {
	out, err := s.schedules(ctx, s.db, 0)
	if err != nil {
		return nil, fmt.Errorf("read schedules: %w", s.interpret(err))
	}
	return out, nil
}

func (s *Store) schedules(ctx context.Context, q querier, id int64) ([]store.MaintenanceSchedule, error) {
	// The server list is folded into one JSON array per schedule, ordered
	// by name, so this stays one query.
	rows, err := q.QueryContext(ctx, `SELECT ms.id, ms.name, ms.cron, ms.duration_ms, ms.all_servers, ms.reason, ms.created_by,
			ms.created_at, ms.last_start,
			(SELECT COALESCE(json_group_array(json_array(x.id, x.name)), '[]') FROM
				(SELECT s.id, s.name FROM maintenance_schedule_servers mss JOIN servers s ON s.id = mss.server_id
				 WHERE mss.schedule_id = ms.id ORDER BY s.name) x)
		FROM maintenance_schedules ms
		WHERE ? = 0 OR ms.id = ?
		ORDER BY ms.name`, id, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.MaintenanceSchedule
	for rows.Next() {
		var (
			m                store.MaintenanceSchedule
			ms               int64
			created, servers string
			last             sql.NullString
		)
		if err := rows.Scan(&m.ID, &m.Name, &m.Cron, &ms, &m.AllServers, &m.Reason, &m.By, &created, &last, &servers); err != nil {
			return nil, err
		}
		m.Duration = time.Duration(ms) * time.Millisecond
		if m.CreatedAt, err = parseTime(created); err != nil {
			return nil, err
		}
		if m.LastStart, err = parseNullTime(last); err != nil {
			return nil, err
		}
		var pairs [][2]json.RawMessage
		if err := json.Unmarshal([]byte(servers), &pairs); err != nil {
			return nil, fmt.Errorf("schedule %q servers: %w", m.Name, err)
		}
		for _, p := range pairs {
			var (
				sid  int64
				name string
			)
			if err := json.Unmarshal(p[0], &sid); err != nil {
				return nil, err
			}
			if err := json.Unmarshal(p[1], &name); err != nil {
				return nil, err
			}
			m.ServerIDs = append(m.ServerIDs, sid)
			m.ServerNames = append(m.ServerNames, name)
		}
		if m.ServerIDs == nil {
			m.ServerIDs, m.ServerNames = []int64{}, []string{}
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// RemoveSchedule deletes a schedule by name.
func (s *Store) RemoveSchedule(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM maintenance_schedules WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("remove schedule %q: %w", name, s.interpret(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("remove schedule %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// MaterializeSchedules writes the windows of occurrences in progress, in
// one write transaction: the claim (last_start advanced on a condition)
// and the windows are written together, and a second caller waits for
// the lock, then finds the occurrence claimed.
func (s *Store) MaterializeSchedules(ctx context.Context) (int, error) {
	fail := func(err error) (int, error) {
		return 0, fmt.Errorf("materialise maintenance schedules: %w", s.interpret(err))
	}
	// A cheap read first, so a round with nothing to do takes no write
	// lock.
	if has, err := s.hasSchedules(ctx); err != nil || !has {
		if err != nil {
			return fail(err)
		}
		return 0, nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	n, err := materialize(ctx, tx)
	if err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return n, nil
}

func (s *Store) hasSchedules(ctx context.Context) (bool, error) {
	var has bool
	err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM maintenance_schedules)`).Scan(&has)
	return has, err
}

// materialize does MaterializeSchedules' work inside tx, which holds the
// write lock.
func materialize(ctx context.Context, tx *sql.Tx) (int, error) {
	type due struct {
		id         int64
		start, end time.Time
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+nowSQL+`, id, cron, duration_ms, last_start FROM maintenance_schedules`)
	if err != nil {
		return 0, err
	}
	var todo []due
	for rows.Next() {
		var (
			nowText, cron string
			id, ms        int64
			last          sql.NullString
		)
		if err := rows.Scan(&nowText, &id, &cron, &ms, &last); err != nil {
			rows.Close()
			return 0, err
		}
		now, err := parseTime(nowText)
		if err != nil {
			rows.Close()
			return 0, err
		}
		d := time.Duration(ms) * time.Millisecond
		start, ok := store.CronOccurrence(cron, d, now)
		if !ok || (last.Valid && strings.Compare(last.String, formatTime(start)) >= 0) {
			continue
		}
		todo = append(todo, due{id, start, start.Add(d)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, d := range todo {
		res, err := tx.ExecContext(ctx, `UPDATE maintenance_schedules SET last_start = ?2
			WHERE id = ?1 AND (last_start IS NULL OR last_start < ?2)`, d.id, formatTime(d.start))
		if err != nil {
			return n, err
		}
		if claimed, _ := res.RowsAffected(); claimed == 0 {
			continue
		}
		res, err = tx.ExecContext(ctx, `INSERT INTO maintenance_windows (server_id, starts_at, ends_at, reason, created_by, schedule_id)
			SELECT s.id, ?2, ?3, ms.reason, 'schedule ' || ms.name, ms.id
			FROM maintenance_schedules ms JOIN servers s
				ON ms.all_servers OR s.id IN (SELECT server_id FROM maintenance_schedule_servers WHERE schedule_id = ms.id)
			WHERE ms.id = ?1
			ON CONFLICT (schedule_id, server_id, starts_at) DO NOTHING`, d.id, formatTime(d.start), formatTime(d.end))
		if err != nil {
			return n, err
		}
		added, _ := res.RowsAffected()
		n += int(added)
	}
	return n, nil
}
