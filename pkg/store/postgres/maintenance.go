package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stacksense/heartbeat/pkg/store"
)

// distinctIDs drops repeated ids, so a server named twice is one window.
func distinctIDs(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

const windowColumns = `w.id, w.server_id, s.name, w.starts_at, w.ends_at, w.ended_at, w.reason, w.created_by,
	COALESCE(w.schedule_id, 0), COALESCE(ms.name, '')`

const windowFrom = `maintenance_windows w JOIN servers s ON s.id = w.server_id
	LEFT JOIN maintenance_schedules ms ON ms.id = w.schedule_id`

func scanWindows(rows pgx.Rows) ([]store.MaintenanceWindow, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.MaintenanceWindow, error) {
		var w store.MaintenanceWindow
		err := r.Scan(&w.ID, &w.ServerID, &w.ServerName, &w.StartsAt, &w.EndsAt, &w.EndedAt, &w.Reason, &w.By, &w.ScheduleID, &w.ScheduleName)
		w.StartsAt, w.EndsAt, w.EndedAt = w.StartsAt.UTC(), w.EndsAt.UTC(), utcPtr(w.EndedAt)
		return w, err
	})
}

// StartMaintenance opens the windows in one INSERT … SELECT; the
// transaction only makes "an unknown id writes nothing" hold.
func (s *Store) StartMaintenance(ctx context.Context, spec store.MaintenanceSpec) ([]store.MaintenanceWindow, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("start maintenance: %w", err)
	}
	ids := distinctIDs(spec.ServerIDs)
	var until *time.Time
	if !spec.Until.IsZero() {
		u := spec.Until.UTC()
		until = &u
	}
	var out []store.MaintenanceWindow
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `WITH ins AS (
				INSERT INTO maintenance_windows (server_id, starts_at, ends_at, reason, created_by)
				SELECT s.id, now(), COALESCE($3::timestamptz, now() + $4 * interval '1 millisecond'), $5, $6
				FROM servers s
				WHERE ($1 OR s.id = ANY($2)) AND COALESCE($3::timestamptz, now() + interval '1 minute') > now()
				RETURNING *)
			SELECT `+windowColumns+` FROM ins w JOIN servers s ON s.id = w.server_id
				LEFT JOIN maintenance_schedules ms ON ms.id = w.schedule_id
			ORDER BY s.name`,
			spec.All, ids, until, spec.For.Milliseconds(), spec.Reason, spec.By)
		if err != nil {
			return err
		}
		if out, err = scanWindows(rows); err != nil {
			return err
		}
		if until != nil && len(out) == 0 {
			var now time.Time
			if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
				return err
			}
			if !until.After(now) {
				return fmt.Errorf("%w: --until %s is not in the future (store clock %s)", store.ErrInvalid,
					until.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
			}
		}
		if !spec.All && len(out) != len(ids) {
			return fmt.Errorf("%w: %d of the %d servers named do not exist", store.ErrNotFound, len(ids)-len(out), len(ids))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("start maintenance: %w", s.interpret(err))
	}
	return out, nil
}

// EndMaintenance ends active windows now.
func (s *Store) EndMaintenance(ctx context.Context, serverIDs []int64, all bool) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE maintenance_windows SET ended_at = now()
		WHERE ($1 OR server_id = ANY($2)) AND starts_at <= now() AND now() < COALESCE(ended_at, ends_at)`,
		all, distinctIDs(serverIDs))
	if err != nil {
		return 0, fmt.Errorf("end maintenance: %w", s.interpret(err))
	}
	return int(tag.RowsAffected()), nil
}

// MaintenanceWindows lists windows.
func (s *Store) MaintenanceWindows(ctx context.Context, activeOnly bool) ([]store.MaintenanceWindow, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+windowColumns+` FROM `+windowFrom+`
		WHERE NOT $1 OR COALESCE(w.ended_at, w.ends_at) > now()
		ORDER BY w.starts_at, s.name, w.id`, activeOnly)
	if err != nil {
		return nil, fmt.Errorf("read maintenance windows: %w", s.interpret(err))
	}
	out, err := scanWindows(rows)
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
	ids := distinctIDs(spec.ServerIDs)
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO maintenance_schedules (name, cron, duration_ms, all_servers, reason, created_by)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			spec.Name, spec.Cron, spec.Duration.Milliseconds(), spec.All, spec.Reason, spec.By).Scan(&id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO maintenance_schedule_servers (schedule_id, server_id)
			SELECT $1, s.id FROM servers s WHERE s.id = ANY($2)`, id, ids)
		if err != nil {
			return err
		}
		if int(tag.RowsAffected()) != len(ids) {
			return fmt.Errorf("%w: %d of the %d servers named do not exist", store.ErrNotFound, len(ids)-int(tag.RowsAffected()), len(ids))
		}
		return nil
	})
	if err != nil {
		return store.MaintenanceSchedule{}, fmt.Errorf("add schedule %q: %w", spec.Name, s.interpret(err))
	}
	list, err := s.schedules(ctx, id)
	if err != nil || len(list) != 1 {
		return store.MaintenanceSchedule{}, fmt.Errorf("add schedule %q: read it back: %w", spec.Name, err)
	}
	return list[0], nil
}

// Schedules lists schedules by name.
func (s *Store) Schedules(ctx context.Context) ([]store.MaintenanceSchedule, error) {
	return s.schedules(ctx, 0)
}

func (s *Store) schedules(ctx context.Context, id int64) ([]store.MaintenanceSchedule, error) {
	rows, err := s.pool.Query(ctx, `SELECT ms.id, ms.name, ms.cron, ms.duration_ms, ms.all_servers, ms.reason, ms.created_by,
			ms.created_at, ms.last_start,
			COALESCE(array_agg(s.id ORDER BY s.name) FILTER (WHERE s.id IS NOT NULL), '{}'),
			COALESCE(array_agg(s.name ORDER BY s.name) FILTER (WHERE s.id IS NOT NULL), '{}')
		FROM maintenance_schedules ms
		LEFT JOIN maintenance_schedule_servers mss ON mss.schedule_id = ms.id
		LEFT JOIN servers s ON s.id = mss.server_id
		WHERE $1 = 0 OR ms.id = $1
		GROUP BY ms.id ORDER BY ms.name`, id)
	if err != nil {
		return nil, fmt.Errorf("read schedules: %w", s.interpret(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.MaintenanceSchedule, error) {
		var (
			m  store.MaintenanceSchedule
			ms int64
		)
		err := r.Scan(&m.ID, &m.Name, &m.Cron, &ms, &m.AllServers, &m.Reason, &m.By, &m.CreatedAt, &m.LastStart, &m.ServerIDs, &m.ServerNames)
		m.Duration = time.Duration(ms) * time.Millisecond
		m.CreatedAt, m.LastStart = m.CreatedAt.UTC(), utcPtr(m.LastStart)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("read schedules: %w", s.interpret(err))
	}
	return out, nil
}

// RemoveSchedule deletes a schedule by name.
func (s *Store) RemoveSchedule(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM maintenance_schedules WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("remove schedule %q: %w", name, s.interpret(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("remove schedule %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// materializeSQL claims one occurrence of a schedule ($1, starting at $2,
// ending at $3) and writes its windows. The claim is an update on the
// condition that last_start is older: a second caller blocks on the row,
// re-checks the condition against the committed row, claims nothing and
// so writes nothing; the unique key on (schedule_id, server_id,
// starts_at) backs that up.
const materializeSQL = `
WITH claim AS (
	UPDATE maintenance_schedules SET last_start = $2
	WHERE id = $1 AND (last_start IS NULL OR last_start < $2)
	RETURNING id, name, all_servers, reason
)
INSERT INTO maintenance_windows (server_id, starts_at, ends_at, reason, created_by, schedule_id)
SELECT s.id, $2, $3, c.reason, 'schedule ' || c.name, c.id
FROM claim c JOIN servers s
	ON c.all_servers OR s.id IN (SELECT server_id FROM maintenance_schedule_servers WHERE schedule_id = c.id)
ON CONFLICT (schedule_id, server_id, starts_at) DO NOTHING`

// MaterializeSchedules writes the windows of occurrences in progress.
// Reading the schedules is one small query per round; a write happens
// only when an occurrence begins.
func (s *Store) MaterializeSchedules(ctx context.Context) (int, error) {
	type due struct {
		id         int64
		start, end time.Time
	}
	rows, err := s.pool.Query(ctx, `SELECT now(), id, cron, duration_ms, last_start FROM maintenance_schedules`)
	if err != nil {
		return 0, fmt.Errorf("materialise maintenance schedules: %w", s.interpret(err))
	}
	var todo []due
	for rows.Next() {
		var (
			now       time.Time
			id, ms    int64
			cron      string
			lastStart *time.Time
		)
		if err := rows.Scan(&now, &id, &cron, &ms, &lastStart); err != nil {
			rows.Close()
			return 0, fmt.Errorf("materialise maintenance schedules: %w", s.interpret(err))
		}
		d := time.Duration(ms) * time.Millisecond
		start, ok := store.CronOccurrence(cron, d, now)
		if ok && (lastStart == nil || lastStart.Before(start)) {
			todo = append(todo, due{id, start, start.Add(d)})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("materialise maintenance schedules: %w", s.interpret(err))
	}
	n := 0
	for _, d := range todo {
		tag, err := s.pool.Exec(ctx, materializeSQL, d.id, d.start, d.end)
		if err != nil && !errors.Is(s.interpret(err), store.ErrNotFound) {
			return n, fmt.Errorf("materialise maintenance schedule %d: %w", d.id, s.interpret(err))
		}
		if err == nil {
			n += int(tag.RowsAffected())
		}
	}
	return n, nil
}
