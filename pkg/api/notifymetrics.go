package api

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stacksense/heartbeat/pkg/history"
	"github.com/stacksense/heartbeat/pkg/notify"
	"github.com/stacksense/heartbeat/pkg/store"
)

// notifyLookback is how far before the last scrape each scrape looks
// again: a drain stamps a delivery with its transaction's start and
// commits a moment later, so an event can appear after a scrape that
// already passed its time. IDs seen within it are not counted twice.
const notifyLookback = 2 * time.Minute

// notifyCounter counts notifications by channel kind and outcome as a
// Prometheus counter. Like flipCounter, it reads the store at each scrape
// (drains run on every probe host, in serve-api and in `heartbeat notify
// drain`, so no one process sees them all) and counts the deliveries that
// ended since the last scrape; the first scrape only sets the mark.
type notifyCounter struct {
	a       *API
	counter *prometheus.CounterVec

	mu   sync.Mutex
	mark time.Time           // store clock of the last scrape; zero before the first
	seen map[int64]time.Time // ids counted, by when they ended, kept for notifyLookback
}

func newNotifyCounter(a *API) *notifyCounter {
	return &notifyCounter{a: a, seen: map[int64]time.Time{}, counter: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "heartbeat_notifications_total",
		Help: "Notifications that ended since this serve-api started, by channel kind (the URL's scheme: webhook, exec, slack, smtp, …) and outcome: sent, or failed (given up after 24 h of retries; retries themselves are heartbeat_notification_channel_retrying).",
	}, []string{"kind", "outcome"})}
}

// Describe implements prometheus.Collector.
func (c *notifyCounter) Describe(ch chan<- *prometheus.Desc) { c.counter.Describe(ch) }

// Collect implements prometheus.Collector. A store that does not answer
// leaves the counts as they were (heartbeat_store_up says why).
func (c *notifyCounter) Collect(ch chan<- prometheus.Metric) {
	c.catchUp()
	c.counter.Collect(ch)
}

func (c *notifyCounter) catchUp() {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.a.opts.StoreTimeout)
	defer cancel()
	first := c.mark.IsZero()
	since := c.mark.Add(-notifyLookback)
	if first {
		now, err := c.a.store.Now(ctx)
		if err != nil {
			return
		}
		since = now.Add(-notifyLookback)
	}
	events, now, err := c.a.store.DeliveryEvents(ctx, since)
	if err != nil {
		return
	}
	for _, e := range events {
		if _, dup := c.seen[e.ID]; dup {
			continue
		}
		c.seen[e.ID] = e.At
		if first {
			continue // ended before this process started counting
		}
		outcome := "sent"
		if !e.Sent {
			outcome = "failed"
		}
		// The kind as `notify list` names it; never the URL, which
		// holds the channel's secrets.
		kind, err := notify.ChannelKind(e.ChannelURL)
		if err != nil {
			kind = "other"
		}
		c.counter.WithLabelValues(kind, outcome).Inc()
	}
	for id, at := range c.seen {
		if at.Before(now.Add(-2 * notifyLookback)) {
			delete(c.seen, id)
		}
	}
	c.mark = now
}

// flapCollector reports how many servers are flapping (the drain's rule,
// pkg/history.Flapping), from the flips of the last flap window.
type flapCollector struct{ a *API }

var descFlapping = prometheus.NewDesc("heartbeat_servers_flapping",
	"Servers flapping now: at least 5 state changes in 15 minutes and not 10 minutes in one state; their notifications are paused until they settle.", nil, nil)

// Describe implements prometheus.Collector.
func (c *flapCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descFlapping }

// Collect implements prometheus.Collector.
func (c *flapCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.a.opts.StoreTimeout)
	defer cancel()
	now, err := c.a.store.Now(ctx)
	if err != nil {
		return
	}
	flips, err := c.a.store.Flips(ctx, store.FlipQuery{Since: now.Add(-store.DefaultFlapWindow)})
	if err != nil {
		return
	}
	n := 0
	for id, fs := range history.ByServer(flips) {
		if id != 0 && history.Flapping(fs, now) {
			n++
		}
	}
	ch <- prometheus.MustNewConstMetric(descFlapping, prometheus.GaugeValue, float64(n))
}
