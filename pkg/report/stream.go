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

	r       Report
	started bool
	// evaluated is each kept row's recorded state
	// (store.ServerStatus.State), which the uptime spans start from.
	evaluated []string
}

// Add judges one streamed row; it has the signature Store.EachStatus
// calls.
func (c *Collector) Add(now time.Time, s store.ServerStatus) error {
	if !c.started {
		c.r.Now, c.started = now, true
	}
	row := Server(now, s, c.StaleAfter)
	c.r.Counts.Add(row.Status)
	if c.Keep == nil || c.Keep(row) {
		c.r.Servers = append(c.r.Servers, row)
		c.evaluated = append(c.evaluated, s.State)
	}
	return nil
}

// Started reports whether any row arrived, that is whether Now is known.
func (c *Collector) Started() bool { return c.started }

// Now is the store's clock the rows were judged at (zero before any row).
func (c *Collector) Now() time.Time { return c.r.Now }

// Report returns the kept rows worst first then by name, with the counts
// of every row. now is used when no row arrived (an empty fleet). When
// flips24h is not nil (every flip since 24 hours before the report's
// Now, oldest first, as BuildWithHistory takes), each kept row gets its
// 24-hour uptime.
func (c *Collector) Report(now time.Time, flips24h []store.Flip) Report {
	r := c.r
	if !c.started {
		r.Now = now
	}
	if r.Servers == nil {
		r.Servers = []ServerStatus{}
	}
	if flips24h != nil {
		byServer := history.ByServer(flips24h)
		for i := range r.Servers {
			spans := history.Spans(byServer[r.Servers[i].ID], c.evaluated[i], r.Now.Add(-24*time.Hour), r.Now)
			if pct, ok := history.Uptime(spans); ok {
				r.Servers[i].Uptime24h = &pct
			}
		}
	}
	sort.Sort(byRank(r.Servers))
	return r
}

// byRank orders rows as Build does: worst first, then by name (names are
// unique, so the order is total and needs no stable sort).
type byRank []ServerStatus

func (b byRank) Len() int      { return len(b) }
func (b byRank) Swap(i, j int) { b[i], b[j] = b[j], b[i] }
func (b byRank) Less(i, j int) bool {
	return Before(b[i].Status, b[i].Name, b[j].Status, b[j].Name)
}

// Before reports whether a row (state a, name an) sorts before another
// (b, bn) in a report: worst state first, then by name. Paging cursors
// compare with it.
func Before(a status.State, an string, b status.State, bn string) bool {
	if a.Rank() != b.Rank() {
		return a.Rank() < b.Rank()
	}
	return an < bn
}
