package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/stacksense/heartbeat/pkg/store"
)

// ServerStatus reads one server with its heartbeat and active alert count.
// Every lookup is by primary key (and the partial index alerts_active), so
// it costs the same at 10 servers as at 100,000, where Status reads them
// all.
func (s *Store) ServerStatus(ctx context.Context, id int64) (store.ServerStatus, time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT now(), `+statusColumns+`,
			(SELECT count(*) FROM alerts a WHERE a.server_id = s.id AND a.resolved_at IS NULL), `+locationsColumn+`
		FROM servers s
		LEFT JOIN heartbeats h ON h.server_id = s.id
		LEFT JOIN server_states st ON st.server_id = s.id
		LEFT JOIN LATERAL (SELECT COALESCE(w.ended_at, w.ends_at) AS until, w.reason FROM maintenance_windows w
			WHERE w.server_id = s.id AND w.starts_at <= now() AND now() < COALESCE(w.ended_at, w.ends_at)
			ORDER BY w.starts_at DESC, w.id DESC LIMIT 1) mw ON true
		WHERE s.id = $1`, id)
	if err != nil {
		return store.ServerStatus{}, time.Time{}, fmt.Errorf("read status of server %d: %w", id, s.interpret(err))
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return store.ServerStatus{}, time.Time{}, fmt.Errorf("read status of server %d: %w", id, s.interpret(err))
		}
		return store.ServerStatus{}, time.Time{}, fmt.Errorf("read status of server %d: %w", id, store.ErrNotFound)
	}
	now, st, err := newStatusScanner().scan(rows)
	if err != nil {
		return store.ServerStatus{}, time.Time{}, fmt.Errorf("read status of server %d: %w", id, s.interpret(err))
	}
	return st, now, nil
}

// statusColumns are a status row's server, heartbeat and evaluated-state
// columns (aliases s, h and st) and the active maintenance window (alias
// mw: until, reason; see activeWindowsSQL). A query selects now() before
// them and the server's active alert count after them, as statusScanner
// reads. The server's credentials and keys are not among them (see
// store.ServerStatus).
const statusColumns = `s.id, s.name, s.host, s.port, s.mode, s.enabled, s.stale_after_ms,
	COALESCE(st.state, ''), st.since,
	h.last_heartbeat, COALESCE(h.source, ''), COALESCE(h.agent_version, ''), h.last_probe,
	COALESCE(h.last_error_class, ''), COALESCE(h.last_error, ''),
	COALESCE(h.latency_us, 0), COALESCE(h.consecutive_failures, 0),
	COALESCE(h.phase_dial_us, 0), COALESCE(h.phase_banner_us, 0), COALESCE(h.phase_kex_us, 0),
	COALESCE(h.phase_auth_us, 0), COALESCE(h.phase_exec_us, 0),
	mw.until, COALESCE(mw.reason, '')`

// activeWindowsSQL is each server's active maintenance window at now()
// (the latest-starting one if several overlap), for a join as mw.
const activeWindowsSQL = `(SELECT DISTINCT ON (w.server_id) w.server_id, COALESCE(w.ended_at, w.ends_at) AS until, w.reason
	FROM maintenance_windows w
	WHERE COALESCE(w.ended_at, w.ends_at) > now() AND w.starts_at <= now()
	ORDER BY w.server_id, w.starts_at DESC, w.id DESC)`

// locationsColumn is the last column of a status row: the server's
// per-location results as JSON (see decodeLocations), read only while
// more than one location has finished a run within
// store.LocationWindow (an InitPlan, run once per query); with one
// location it is NULL and costs nothing per row.
var locationsColumn = `CASE WHEN (SELECT count(DISTINCT location) FROM probe_runs
		WHERE finished_at >= now() - ` + strconv.FormatInt(store.LocationWindow.Microseconds(), 10) + ` * interval '1 microsecond') >= 2 THEN
	(SELECT json_agg(json_build_array(lr.location,
		(extract(epoch FROM lr.last_ok) * 1000000)::bigint, (extract(epoch FROM lr.last_probe) * 1000000)::bigint,
		lr.error_class, lr.error) ORDER BY lr.location)
	FROM location_results lr WHERE lr.server_id = s.id) END`

// decodeLocations reads locationsColumn.
func decodeLocations(raw []byte) ([]store.LocationResult, error) {
	if raw == nil {
		return nil, nil
	}
	var rows [][5]json.RawMessage
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, fmt.Errorf("location results: %w", err)
	}
	out := make([]store.LocationResult, len(rows))
	for i, r := range rows {
		var (
			okMicros    *int64
			probeMicros int64
		)
		for _, f := range []struct {
			raw json.RawMessage
			to  any
		}{{r[0], &out[i].Location}, {r[1], &okMicros}, {r[2], &probeMicros}, {r[3], &out[i].ErrorClass}, {r[4], &out[i].Error}} {
			if err := json.Unmarshal(f.raw, f.to); err != nil {
				return nil, fmt.Errorf("location results: %w", err)
			}
		}
		if okMicros != nil {
			t := time.UnixMicro(*okMicros).UTC()
			out[i].LastOK = &t
		}
		out[i].LastProbe = time.UnixMicro(probeMicros).UTC()
	}
	return out, nil
}

// statusScanner reads status rows (the store's clock, statusColumns, the
// active alert count and locationsColumn; every time in UTC) into one set
// of destinations made once per query: scanning each row into fresh
// locals moved them all to the heap, a kilobyte of garbage per row, two
// thirds of what `status --json` allocated at 100,000 servers.
type statusScanner struct {
	now           time.Time
	st            store.ServerStatus
	latencyMicros int64
	staleMillis   int64
	phases        [store.PhaseColumns]int64
	locations     []byte
	// The nullable times scan into values, not into the row's pointers:
	// pgx allocated those by reflection, a tenth of `status --json`.
	stateSince, lastHeartbeat, lastProbe, maintenanceUntil pgtype.Timestamptz
	dest                                                   []any
	// repeated[i], when set, is where the text of column i goes, read
	// raw and interned: a fleet's modes, states, sources and error texts
	// repeat, and a string apiece was a fifth of the scan.
	repeated []*string
	interned map[string]string
	times    []time.Time
}

func newStatusScanner() *statusScanner {
	c := &statusScanner{}
	st := &c.st
	// nil: a column read raw and interned (see repeated).
	c.dest = []any{&c.now, &st.ID, &st.Name, &st.Host, &st.Port, nil, &st.Enabled, &c.staleMillis,
		nil, &c.stateSince,
		&c.lastHeartbeat, nil, nil, &c.lastProbe,
		nil, nil, &c.latencyMicros, &st.ConsecutiveFailures,
		&c.phases[0], &c.phases[1], &c.phases[2], &c.phases[3], &c.phases[4],
		&c.maintenanceUntil, nil, &st.ActiveAlerts, &c.locations}
	c.repeated = []*string{5: &st.Mode, 8: &st.State,
		11: &st.Source, 12: &st.AgentVersion, 14: &st.LastErrorClass, 15: &st.LastError, 24: &st.MaintenanceReason}
	c.interned = make(map[string]string)
	return c
}

// maxInterned bounds the strings a scanner keeps for reuse: enough for
// every mode, state, source and error a fleet repeats, not a copy of
// every distinct error text.
const maxInterned = 4096

// intern returns b as a string, the same one each time it repeats.
func (c *statusScanner) intern(b []byte) string {
	if s, ok := c.interned[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if len(c.interned) < maxInterned {
		c.interned[s] = s
	}
	return s
}

// timeSlab is how many of a query's times share one allocation.
const timeSlab = 1024

// utcOrNil is t in UTC, or nil for NULL. The times of a query's rows are
// cut from slabs, one allocation per timeSlab instead of one per time (a
// row has up to four); a slab is never grown, so no pointer into it moves.
func (c *statusScanner) utcOrNil(t pgtype.Timestamptz) *time.Time {
	if !t.Valid {
		return nil
	}
	if len(c.times) == cap(c.times) {
		c.times = make([]time.Time, 0, timeSlab)
	}
	c.times = append(c.times, t.Time.UTC())
	return &c.times[len(c.times)-1]
}

// scan reads the row and returns a copy that shares nothing with the
// next row's.
func (c *statusScanner) scan(row pgx.Rows) (time.Time, store.ServerStatus, error) {
	c.st, c.locations = store.ServerStatus{}, nil
	if err := row.Scan(c.dest...); err != nil {
		return time.Time{}, store.ServerStatus{}, err
	}
	raw := row.RawValues()
	for i, dst := range c.repeated {
		if dst != nil {
			*dst = c.intern(raw[i])
		}
	}
	st := c.st
	var err error
	if st.Locations, err = decodeLocations(c.locations); err != nil {
		return time.Time{}, store.ServerStatus{}, err
	}
	st.StaleAfter = time.Duration(c.staleMillis) * time.Millisecond
	st.StateSince, st.LastHeartbeat = c.utcOrNil(c.stateSince), c.utcOrNil(c.lastHeartbeat)
	st.LastProbe, st.MaintenanceUntil = c.utcOrNil(c.lastProbe), c.utcOrNil(c.maintenanceUntil)
	st.InMaintenance = st.MaintenanceUntil != nil
	st.Latency = time.Duration(c.latencyMicros) * time.Microsecond
	st.Phases = store.PhasesFromMicros(c.phases)
	return c.now.UTC(), st, nil
}

// phaseColumn is column i (0 dial, 1 banner, 2 kex, 3 auth, 4 exec) of a
// batch's phase timings, as an unnest() argument.
func phaseColumn(phases [][store.PhaseColumns]int64, i int) []int64 {
	out := make([]int64, len(phases))
	for j, p := range phases {
		out[j] = p[i]
	}
	return out
}
