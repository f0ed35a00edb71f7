package report

import (
	"sort"
	"time"

	"github.com/stacksense/heartbeat/pkg/history"
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
	Keep func(ServerStatus) bool
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
// calls.
func (c *Collector) Add(now time.Time, s store.ServerStatus) error {
	if !c.started {
		c.now, c.started = now, true
	}
	row := Judge(now, s, c.StaleAfter, c.Vantage)
	c.counts.Add(row.Status)
	if c.Keep == nil || c.Keep(row) {
		if c.n%chunkRows == 0 {
			c.chunks = append(c.chunks, make([]keptRow, 0, chunkRows))
		}
		last := len(c.chunks) - 1
		c.chunks[last] = append(c.chunks[last], keptRow{row, s.State})
		c.n++
	}
	return nil
}

// Started reports whether any row arrived, that is whether Now is known.
func (c *Collector) Started() bool { return c.started }

// Now is the store's clock the rows were judged at (zero before any row).
func (c *Collector) Now() time.Time { return c.now }

// Report returns the kept rows worst first then by name, with the counts
// of every row. now is used when no row arrived (an empty fleet). When
// flips24h is not nil (every flip since 24 hours before the report's
// Now, oldest first, as BuildWithHistory takes), each kept row gets its
// 24-hour uptime. The collector is spent afterwards.
func (c *Collector) Report(now time.Time, flips24h []store.Flip) Report {
	servers := make([]ServerStatus, 0, c.n)
	r, _ := c.Each(now, flips24h, func(row *ServerStatus) error {
		servers = append(servers, *row)
		return nil
	})
	r.Servers = servers
	return r
}

// Each hands fn the kept rows in the order Report lists them, with the
// uptime Report would give them, without a second copy of the rows: what
// `status --json` streams out. The Report it returns has Now and Counts
// and no Servers; an error from fn stops it and is returned. The
// collector is spent afterwards.
func (c *Collector) Each(now time.Time, flips24h []store.Flip, fn func(*ServerStatus) error) (Report, error) {
	r := Report{Now: c.now, Counts: c.counts}
	if !c.started {
		r.Now = now
	}
	at := func(i int32) *keptRow { return &c.chunks[i/chunkRows][i%chunkRows] }
	order := make([]int32, c.n)
	for i := range order {
		order[i] = int32(i)
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := &at(order[i]).row, &at(order[j]).row
		return Before(a.Status, a.Name, b.Status, b.Name)
	})
	var byServer map[int64][]store.Flip
	if flips24h != nil {
		byServer = history.ByServer(flips24h)
	}
	defer func() { c.chunks, c.n = nil, 0 }()
	for _, i := range order {
		kr := at(i)
		if byServer != nil {
			kr.row.AddHistory(byServer[kr.row.ID], kr.evaluated, r.Now)
		}
		if err := fn(&kr.row); err != nil {
			return r, err
		}
	}
	return r, nil
}

// Before reports whether a row (state a, name an) sorts before another
// (b, bn) in a report: worst state first, then by name (names are
// unique, so the order is total). Paging cursors compare with it.
func Before(a status.State, an string, b status.State, bn string) bool {
	if a.Rank() != b.Rank() {
		return a.Rank() < b.Rank()
	}
	return an < bn
}
