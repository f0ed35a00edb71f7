package api

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stacksense/heartbeat/pkg/status"
)

// deliveryCollector reads the notification queue at every scrape: what
// waits, for how long, and which channels fail. Drains run in every probe
// run and evaluator, on any host, so the queue in the store is the one
// place that knows.
type deliveryCollector struct{ a *API }

var (
	descNotifyBacklog = prometheus.NewDesc("heartbeat_notification_backlog",
		"Notifications queued and neither delivered nor given up (retries included).", nil, nil)
	descNotifyOldest = prometheus.NewDesc("heartbeat_notification_oldest_pending_age_seconds",
		"Age of the oldest notification still waiting, by the store's clock; 0 when none waits. Growing: nothing drains, or a channel keeps failing.", nil, nil)
	descNotifyFailing = prometheus.NewDesc("heartbeat_notification_channel_failing",
		"1 for each channel whose latest delivery attempt failed, with the messages it is retrying and gave up on in the last 24 h.", []string{"channel"}, nil)
	descNotifyPending = prometheus.NewDesc("heartbeat_notification_channel_retrying",
		"Messages a failing channel is retrying.", []string{"channel"}, nil)
	descNotifyGaveUp = prometheus.NewDesc("heartbeat_notification_channel_gave_up",
		"Messages a failing channel gave up on in the last 24 h.", []string{"channel"}, nil)
)

// Describe implements prometheus.Collector.
func (c *deliveryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNotifyBacklog, descNotifyOldest, descNotifyFailing, descNotifyPending, descNotifyGaveUp} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A store that does not answer
// leaves these out (heartbeat_store_up says why).
func (c *deliveryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.a.opts.StoreTimeout)
	defer cancel()
	st, err := c.a.store.DeliveryStats(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descNotifyBacklog, prometheus.GaugeValue, float64(st.Backlog))
	age := 0.0
	if st.OldestPending != nil {
		age = status.Age(st.Now, *st.OldestPending).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(descNotifyOldest, prometheus.GaugeValue, age)
	for _, f := range st.Failing {
		ch <- prometheus.MustNewConstMetric(descNotifyFailing, prometheus.GaugeValue, 1, f.ChannelName)
		ch <- prometheus.MustNewConstMetric(descNotifyPending, prometheus.GaugeValue, float64(f.Pending), f.ChannelName)
		ch <- prometheus.MustNewConstMetric(descNotifyGaveUp, prometheus.GaugeValue, float64(f.GaveUp), f.ChannelName)
	}
}
