package report

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

// Collector builds a Report from rows streamed out of the store
// (Store.EachStatus) without holding the snapshot: each row is judged as
// it arrives and counted, and only the rows Keep accepts are kept. At
// 100,000 servers the snapshot, the report and its JSON held at once
// cost about 370 MiB; a collector keeps one compact copy, or, for
// `status` without --all, only the rows that are not ONLINE.
type Collector struct {
	// StaleAfter overrides every server's own window when positive.
	StaleAfter time.Duration
	// Keep, when set, says which judged rows the report lists; every
	// row is counted either way. nil keeps all.
	Keep func(*ServerStatus) bool
	// Vantage judges stale servers by the probe locations' votes; the
	// zero value is the source system's rule.
	Vantage Vantage

	now     time.Time
	counts  status.Counts
	started bool
	// Kept rows sit in fixed-size chunks: appending 100,000 rows to one
	// slice copied them about five times over as it grew (a third of the
	// CPU of `status --json`), and sorting the rows themselves moves
	// 300-byte structs; Report sorts indexes and copies each row once.
	chunks [][]keptRow
	n      int
}

// keptRow is a judged row and its recorded state
// (store.ServerStatus.State), which the uptime spans start from.
type keptRow struct {
	row       ServerStatus
	evaluated string
}

const chunkRows = 4096

// Add judges one streamed row; it has the signature Store.EachStatus
// calls. The row is judged straight into its place in the current chunk
// and given back if Keep says no: copying 300-byte rows from one
// temporary to the next was most of Add's time.
func (c *Collector) Add(now time.Time, s store.ServerStatus) error {
	if !c.started {
		c.now, c.started = now, true
	}
	if c.n%chunkRows == 0 && len(c.chunks) == c.n/chunkRows {
		c.chunks = append(c.chunks, make([]keptRow, 0, chunkRows))
	}
	chunk := &c.chunks[len(c.chunks)-1]
	*chunk = append(*chunk, keptRow{})
	kr := &(*chunk)[len(*chunk)-1]
	kr.row, kr.evaluated = Judge(now, s, c.StaleAfter, c.Vantage), s.State
	c.counts.Add(kr.row.Status)
	if c.Keep != nil && !c.Keep(&kr.row) {
		*kr = keptRow{} // holds nothing of the dropped row
		*chunk = (*chunk)[:len(*chunk)-1]
		return nil
	}
	c.n++
	return nil
}

// Collect streams the fleet from s into c, judged with the probe
// locations' votes, and returns the store's clock the rows were judged at
// and, with uptime, every server's flips of the 24 hours before it
// (Store.FlipStates; never nil then). The flips are read on a second
// connection while the rows stream, from the moment the first row fixes
// the clock: that read's snapshot is then later than the rows', so no
// change a row reflects is missed, and the two reads overlap instead of
// adding up.
func (c *Collector) Collect(ctx context.Context, s store.Store, uptime bool) (time.Time, []store.Flip, error) {
	var err error
	if c.Vantage, err = LoadVantage(ctx, s); err != nil {
		return time.Time{}, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type read struct {
		flips []store.Flip
		err   error
	}
	var flips chan read
	readFlips := func(now time.Time) {
		flips = make(chan read, 1) // never blocks: the reader may be abandoned
		go func() {
			f, err := s.FlipStates(ctx, now.Add(-24*time.Hour))
			flips <- read{f, err}
		}()
	}
	err = s.EachStatus(ctx, func(now time.Time, st store.ServerStatus) error {
		if uptime && flips == nil {
			readFlips(now)
		}
		return c.Add(now, st)
	})
	if err != nil {
		return time.Time{}, nil, err
	}
	now := c.now
	if !c.started {
		if now, err = s.Now(ctx); err != nil {
			return time.Time{}, nil, err
		}
	}
	if !uptime {
		return now, nil, nil
	}
	if flips == nil {
		readFlips(now)
	}
	r := <-flips
	if r.err != nil {
		return time.Time{}, nil, r.err
	}
	if r.flips == nil {
		r.flips = []store.Flip{}
	}
	return now, r.flips, nil
}

// LoadServer judges one server as the fleet's report would, from that
// server's rows only (Store.ServerStatus), so its cost does not grow
// with the fleet: `status --server` runs as a check once per server per
// minute. With uptime the row gets its 24-hour uptime. An unknown id is
// store.ErrNotFound.
func LoadServer(ctx context.Context, s store.Store, id int64, staleAfter time.Duration, uptime bool) (Report, error) {
	st, now, err := s.ServerStatus(ctx, id)
	if err != nil {
		return Report{}, err
	}
	var flips []store.Flip
	if uptime {
		if flips, err = s.Flips(ctx, store.FlipQuery{ServerID: id, Since: now.Add(-24 * time.Hour)}); err != nil {
			return Report{}, err
		}
		if flips == nil {
			flips = []store.Flip{}
		}
	}
	v, err := LoadVantage(ctx, s)
	if err != nil {
		return Report{}, err
	}
	return BuildFrom(store.Snapshot{Now: now, Servers: []store.ServerStatus{st}}, staleAfter, flips, v), nil
}

// Report returns the kept rows worst first then by name, with the counts
// of every row. now is used when no row arrived (an empty fleet). When
// flips24h is not nil (every server's flips since 24 hours before the
// report's Now, ordered by server as Store.FlipStates returns them), each
// kept row gets its 24-hour uptime. The collector is spent afterwards.
func (c *Collector) Report(now time.Time, flips24h []store.Flip) Report {
	r, rows := c.Rows(now, flips24h)
	r.Servers = make([]ServerStatus, rows.Len())
	for i := range r.Servers {
		r.Servers[i] = *rows.At(i)
	}
	return r
}

// Rows is the kept rows in the order Report lists them, each filled with
// its uptime when first read, for readers that take them in any order or
// from several goroutines at once (`status --json` encodes them on every
// CPU). The Report it returns has Now and Counts and no Servers. The
// collector is spent afterwards; the rows stay valid.
func (c *Collector) Rows(now time.Time, flips24h []store.Flip) (Report, SortedRows) {
	r := Report{Now: c.now, Counts: c.counts}
	if !c.started {
		r.Now = now
	}
	chunks := c.chunks
	at := func(i int32) *keptRow { return &chunks[i/chunkRows][i%chunkRows] }
	order := make([]int32, c.n)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(i, j int32) int {
		a, b := &at(i).row, &at(j).row
		return compareRows(a.Status, a.Name, b.Status, b.Name)
	})
	c.chunks, c.n = nil, 0
	return r, SortedRows{at: at, order: order, flips: flips24h, now: r.Now}
}

// SortedRows is Collector.Rows' ordered view of the kept rows.
type SortedRows struct {
	at    func(int32) *keptRow
	order []int32
	flips []store.Flip
	now   time.Time
}

// Len is the number of rows.
func (s SortedRows) Len() int { return len(s.order) }

// At returns row i, with its uptime when flips were given. Goroutines
// may call it at once for different rows, not for the same one (it
// fills the row in).
func (s SortedRows) At(i int) *ServerStatus {
	kr := s.at(s.order[i])
	if s.flips != nil {
		kr.row.AddHistory(store.FlipsOf(s.flips, kr.row.ID), kr.evaluated, s.now)
	}
	return &kr.row
}

// Before reports whether a row (state a, name an) sorts before another
// (b, bn) in a report: worst state first, then by name (names are
// unique, so the order is total). Paging cursors compare with it.
func Before(a status.State, an string, b status.State, bn string) bool {
	return compareRows(a, an, b, bn) < 0
}

// compareRows is Before as a three-way comparison, for slices.SortFunc.
func compareRows(a status.State, an string, b status.State, bn string) int {
	if ra, rb := a.Rank(), b.Rank(); ra != rb {
		return cmp.Compare(ra, rb)
	}
	return strings.Compare(an, bn)
}
