package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

// metrics holds the API's own registry: fleet gauges read from the store
// at scrape time, HTTP and push counters kept in process.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	pushes   *prometheus.CounterVec
	// tokenless counts pushes accepted without a token: when it stops
	// growing, the source system's agents are gone and the allowance can
	// be switched off.
	tokenless prometheus.Counter
	batch     prometheus.Histogram
	write     prometheus.Histogram
	// externalAlerts counts what POST /api/alerts and /api/alertmanager
	// did, by source (api, alertmanager) and outcome.
	externalAlerts *prometheus.CounterVec
}

func newMetrics(a *API) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "heartbeat_http_requests_total",
			Help: "HTTP requests served, by handler, method and status code.",
		}, []string{"handler", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "heartbeat_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by handler.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"handler"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "heartbeat_pushes_total",
			Help: "Pushed heartbeats by outcome: ok, unauthorized, or error (the store failed).",
		}, []string{"outcome"}),
		tokenless: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "heartbeat_tokenless_pushes_total",
			Help: "Pushes accepted without a token, from an address the server allows (servers set --allow-tokenless-from); also counted in heartbeat_pushes_total.",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "heartbeat_push_batch_size",
			Help:    "Pushes written per store transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		write: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "heartbeat_push_batch_write_seconds",
			Help:    "Time to verify and record one batch of pushes in the store.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
	}
	m.externalAlerts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "heartbeat_external_alerts_total",
		Help: "Alerts received from other systems, by source (api, alertmanager) and outcome: raised, already_active, resolved, not_active, unknown_server (Alertmanager alerts that matched no server), ignored (neither firing nor resolved).",
	}, []string{"source", "outcome"})
	// Every Alertmanager series exists from the start at 0, so a rule on
	// unknown_server has something to match before the first one.
	for _, outcome := range []string{"raised", "already_active", "resolved", "not_active", "unknown_server", "ignored"} {
		m.externalAlerts.WithLabelValues(store.AlertSourceAlertmanager, outcome)
	}
	m.registry.MustRegister(m.requests, m.latency, m.pushes, m.tokenless, m.batch, m.write, m.externalAlerts,
		&fleetCollector{a: a}, newFlipCounter(a), &deliveryCollector{a: a}, newNotifyCounter(a), &flapCollector{a: a},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// instrument counts and times requests to one named handler.
func (m *metrics) instrument(name string, h http.Handler) http.Handler {
	labels := prometheus.Labels{"handler": name}
	return promhttp.InstrumentHandlerDuration(m.latency.MustCurryWith(labels),
		promhttp.InstrumentHandlerCounter(m.requests.MustCurryWith(labels), h))
}

func (m *metrics) observeBatch(n int, took time.Duration, out []store.PushOutcome, err error) {
	m.batch.Observe(float64(n))
	m.write.Observe(took.Seconds())
	if err != nil {
		m.pushes.WithLabelValues("error").Add(float64(n))
		return
	}
	ok, tokenless := 0, 0
	for _, o := range out {
		if o.OK {
			ok++
			if o.Tokenless {
				tokenless++
			}
		}
	}
	m.pushes.WithLabelValues("ok").Add(float64(ok))
	m.tokenless.Add(float64(tokenless))
	m.pushes.WithLabelValues("unauthorized").Add(float64(n - ok))
}

// fleetCollector reads the fleet and the last probe run from the store at
// every scrape, so the figures are as fresh as the scrape and no state is
// kept between scrapes.
type fleetCollector struct{ a *API }

var (
	descStoreUp = prometheus.NewDesc("heartbeat_store_up",
		"1 if the store answered this scrape, 0 if not (the fleet metrics are then absent).", nil, nil)
	descServerStatus = prometheus.NewDesc("heartbeat_server_status",
		"1 for the server's current status, 0 for the other four (ONLINE, WARNING, OFFLINE, MAINTENANCE, DISABLED): every series always present, so a state change creates none.", []string{"id", "server", "status"}, nil)
	descServerLatency = prometheus.NewDesc("heartbeat_server_probe_latency_seconds",
		"SSH handshake latency of the server's last successful probe; absent if it never answered a probe.", []string{"id", "server"}, nil)
	descServerFailures = prometheus.NewDesc("heartbeat_server_consecutive_failures",
		"Failed SSH probes of the server since its last success; absent if never probed.", []string{"id", "server"}, nil)
	descServerLastFailure = prometheus.NewDesc("heartbeat_server_last_failure",
		"1 with the failure class of the server's last SSH probe while that probe failed; absent after a success.", []string{"id", "server", "class"}, nil)
	descServerAge = prometheus.NewDesc("heartbeat_server_heartbeat_age_seconds",
		"Seconds since the server's last heartbeat, by the store's clock; absent if it never sent one.", []string{"id", "server"}, nil)
	descServers = prometheus.NewDesc("heartbeat_servers",
		"Servers by status.", []string{"status"}, nil)
	descRunDuration = prometheus.NewDesc("heartbeat_probe_run_duration_seconds",
		"Duration of the last finished probe-ssh run.", nil, nil)
	descRunFinished = prometheus.NewDesc("heartbeat_probe_run_finished_timestamp_seconds",
		"When the last probe-ssh run finished (Unix time).", nil, nil)
	descRunResults = prometheus.NewDesc("heartbeat_probe_run_results",
		"Outcomes of the last finished probe-ssh run: ok, or the failure class.", []string{"outcome"}, nil)
	descRunDeadline = prometheus.NewDesc("heartbeat_probe_run_deadline_hit",
		"1 if the last finished probe-ssh run hit its deadline.", nil, nil)
	descRunWarning = prometheus.NewDesc("heartbeat_probe_run_warning",
		"1 if `status --verbose` and the page warn about the last probe run for this reason (probe-overdue, host-cut-off), else 0.",
		[]string{"kind"}, nil)
	descProbePhase = prometheus.NewDesc("heartbeat_server_probe_duration_seconds",
		"Duration of each phase (dial, banner, kex, auth, exec) of the server's last SSH probe; 0 for a phase not reached.",
		[]string{"id", "server", "phase"}, nil)
)

// warningKinds are the run-header warnings /metrics reports, each always
// present (0 or 1) so an alert rule can match on it.
var warningKinds = []report.WarningKind{report.ProbeOverdue, report.HostCutOff, report.RunAborted}

// Describe implements prometheus.Collector.
func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStoreUp, descServerStatus, descServerAge, descServers,
		descServerLatency, descServerFailures, descServerLastFailure,
		descRunDuration, descRunFinished, descRunResults, descRunDeadline, descRunWarning, descProbePhase} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.a.opts.StoreTimeout)
	defer cancel()
	// The rows stream out of the store and only what is exported is
	// kept: without per-server series, nothing but the counts.
	col := &report.Collector{StaleAfter: c.a.opts.StaleAfter}
	if c.a.opts.NoPerServerMetrics {
		col.Keep = func(*report.ServerStatus) bool { return false }
	}
	now, _, err := col.Collect(ctx, c.a.store, false)
	var run, aborted *store.Run
	if err == nil {
		run, err = c.a.store.LastFinishedRun(ctx)
	}
	if err == nil {
		run, err = report.LoadHeaderRun(ctx, c.a.store, run)
	}
	if err == nil {
		aborted, err = c.a.store.LastAbortedRun(ctx)
	}
	if err != nil {
		c.a.log.Warn("metrics: store did not answer", "err", err)
		ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, 1)
	rep := col.Report(now, nil)
	for _, s := range rep.Servers {
		id := strconv.FormatInt(s.ID, 10)
		for _, st := range []status.State{status.Online, status.Warning, status.Offline, status.Maintenance, status.Disabled} {
			v := 0.0
			if s.Status == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descServerStatus, prometheus.GaugeValue, v, id, s.Name, string(st))
		}
		if s.LastProbe != nil {
			ch <- prometheus.MustNewConstMetric(descServerFailures, prometheus.GaugeValue, float64(s.ConsecutiveFailures), id, s.Name)
			if s.LastErrorClass != "" {
				ch <- prometheus.MustNewConstMetric(descServerLastFailure, prometheus.GaugeValue, 1, id, s.Name, s.LastErrorClass)
			}
		}
		if s.LatencyMS > 0 {
			ch <- prometheus.MustNewConstMetric(descServerLatency, prometheus.GaugeValue, s.LatencyMS/1000, id, s.Name)
		}
		if s.LastHeartbeat != nil {
			ch <- prometheus.MustNewConstMetric(descServerAge, prometheus.GaugeValue,
				status.Age(rep.Now, *s.LastHeartbeat).Seconds(), id, s.Name)
		}
		if p := s.PhasesMS; p != nil {
			for _, ph := range []struct {
				name string
				ms   float64
			}{{"dial", p.Dial}, {"banner", p.Banner}, {"kex", p.Kex}, {"auth", p.Auth}, {"exec", p.Exec}} {
				ch <- prometheus.MustNewConstMetric(descProbePhase, prometheus.GaugeValue, ph.ms/1000, id, s.Name, ph.name)
			}
		}
	}
	for _, sc := range []struct {
		state status.State
		n     int
	}{
		{status.Online, rep.Counts.Online}, {status.Warning, rep.Counts.Warning},
		{status.Offline, rep.Counts.Offline}, {status.Maintenance, rep.Counts.Maintenance}, {status.Disabled, rep.Counts.Disabled},
	} {
		ch <- prometheus.MustNewConstMetric(descServers, prometheus.GaugeValue, float64(sc.n), string(sc.state))
	}
	header := report.NewRunHeader(rep.Now, run, aborted)
	for _, kind := range warningKinds {
		v := 0.0
		for _, w := range header.Warnings {
			if w.Kind == kind {
				v = 1
			}
		}
		ch <- prometheus.MustNewConstMetric(descRunWarning, prometheus.GaugeValue, v, string(kind))
	}
	if run == nil || run.FinishedAt == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descRunDuration, prometheus.GaugeValue, run.FinishedAt.Sub(run.StartedAt).Seconds())
	ch <- prometheus.MustNewConstMetric(descRunFinished, prometheus.GaugeValue, float64(run.FinishedAt.UnixMilli())/1000)
	ch <- prometheus.MustNewConstMetric(descRunResults, prometheus.GaugeValue, float64(run.Succeeded), "ok")
	for class, n := range run.FailedByClass {
		ch <- prometheus.MustNewConstMetric(descRunResults, prometheus.GaugeValue, float64(n), class)
	}
	deadline := 0.0
	if run.DeadlineHit {
		deadline = 1
	}
	ch <- prometheus.MustNewConstMetric(descRunDeadline, prometheus.GaugeValue, deadline)
}
