package api

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stacksense/heartbeat/pkg/store"
)

// flipCounter counts state changes by transition as a Prometheus counter.
// Flips are recorded by whichever evaluator notices first (a probe run on
// another host, this process, `heartbeat evaluate`), so a counter in any
// one evaluator would miss most of them; instead every scrape reads the
// flips recorded since the last one (by id) and adds them up. The first
// scrape only sets the mark, so the counter covers this process's life,
// as counters do.
type flipCounter struct {
	a       *API
	counter *prometheus.CounterVec

	mu      sync.Mutex
	started time.Time // store clock at the first scrape
	lastID  int64
}

func newFlipCounter(a *API) *flipCounter {
	return &flipCounter{a: a, counter: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "heartbeat_state_changes_total",
		Help: "State changes (flips) recorded in the store since this serve-api started, by transition (from, to); from is \"new\" for a server's first state; to CUT-OFF and RECONNECTED are fleet events.",
	}, []string{"from", "to"})}
}

// Describe implements prometheus.Collector.
func (c *flipCounter) Describe(ch chan<- *prometheus.Desc) { c.counter.Describe(ch) }

// Collect implements prometheus.Collector: it catches up with the store,
// then reports the counts. A store that does not answer leaves the counts
// as they were (heartbeat_store_up says why).
func (c *flipCounter) Collect(ch chan<- prometheus.Metric) {
	c.catchUp()
	c.counter.Collect(ch)
}

func (c *flipCounter) catchUp() {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.a.opts.StoreTimeout)
	defer cancel()
	first := c.started.IsZero()
	if first {
		now, err := c.a.store.Now(ctx)
		if err != nil {
			return
		}
		c.started = now
	}
	// A down-flip is stamped when the server went stale, which can be a
	// while before it was recorded: look back a day from the start.
	flips, err := c.a.store.Flips(ctx, store.FlipQuery{Since: c.started.Add(-24 * time.Hour), AfterID: c.lastID})
	if err != nil {
		return
	}
	for _, f := range flips {
		if f.ID > c.lastID {
			c.lastID = f.ID
		}
		if first {
			continue
		}
		from := f.From
		if from == "" {
			from = "new"
		}
		c.counter.WithLabelValues(from, f.To).Inc()
	}
}
