package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/stacksense/heartbeat/pkg/store"
)

// MaxAlertmanagerBodyBytes is the largest Alertmanager payload accepted
// (413 beyond): room for a few thousand alerts; set max_alerts in the
// receiver to stay under it.
const MaxAlertmanagerBodyBytes = 8 << 20

// MaxUnknownServers bounds the unknown_servers list of a receiver answer.
const MaxUnknownServers = 20

// alertmanagerKeyPrefix namespaces Alertmanager fingerprints among the
// external keys, so a key a script chose never meets one.
const alertmanagerKeyPrefix = "alertmanager:"

// AlertmanagerPayload is the body Alertmanager's webhook_config sends
// (version 4, https://prometheus.io/docs/alerting/latest/configuration/#webhook_config).
// Fields the receiver does not use are kept so that the type documents
// the format; unknown ones are ignored, as Alertmanager may add more.
type AlertmanagerPayload struct {
	Version           string              `json:"version"`
	GroupKey          string              `json:"groupKey"`
	TruncatedAlerts   int                 `json:"truncatedAlerts"`
	Status            string              `json:"status"`
	Receiver          string              `json:"receiver"`
	GroupLabels       map[string]string   `json:"groupLabels"`
	CommonLabels      map[string]string   `json:"commonLabels"`
	CommonAnnotations map[string]string   `json:"commonAnnotations"`
	ExternalURL       string              `json:"externalURL"`
	Alerts            []AlertmanagerAlert `json:"alerts"`
}

// AlertmanagerAlert is one alert of a payload.
type AlertmanagerAlert struct {
	// Status is "firing" or "resolved".
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	EndsAt       string            `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// AlertmanagerResponse is the receiver's 200 answer: what it did with the
// payload's alerts. Alerts for servers it cannot match are counted and
// named, never an error, so one unknown instance does not make
// Alertmanager retry the whole group forever.
type AlertmanagerResponse struct {
	// Alerts is how many alerts the payload carried.
	Alerts int `json:"alerts"`
	// Raised counts new active alerts; AlreadyActive firing alerts whose
	// fingerprint was already active on the server (Alertmanager repeats
	// a group every repeat_interval, and HA replicas each send it).
	Raised        int `json:"raised"`
	AlreadyActive int `json:"already_active"`
	// Resolved counts alerts resolved; NotActive resolved notifications
	// that found no active alert (already resolved, or never raised here).
	Resolved  int `json:"resolved"`
	NotActive int `json:"not_active"`
	// Ignored counts alerts whose status is neither firing nor resolved.
	Ignored int `json:"ignored"`
	// UnknownServerAlerts counts alerts that matched no server, and
	// UnknownServers names what they pointed at (distinct, at most
	// MaxUnknownServers, each cut to 100 characters).
	UnknownServerAlerts int      `json:"unknown_server_alerts"`
	UnknownServers      []string `json:"unknown_servers"`
}

// alertmanager handles POST /api/alertmanager.
func (a *API) alertmanager(w http.ResponseWriter, r *http.Request) {
	var p AlertmanagerPayload
	if err := readJSONBody(w, r, MaxAlertmanagerBodyBytes, &p, false); err != nil {
		var re *requestError
		errors.As(err, &re)
		writeError(w, re.code, re.msg)
		return
	}
	if p.Version != "4" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(`version must be "4" (Alertmanager's webhook format), got %q`, clip(p.Version, 20)))
		return
	}
	ctx, cancel := a.storeContext(r)
	defer cancel()
	// One read of the servers for the whole payload, not one per alert.
	servers, err := a.store.Servers(ctx)
	if err != nil {
		a.storeFailed(w, r, "read servers", err)
		return
	}
	m := newServerMatcher(servers)
	resp := AlertmanagerResponse{Alerts: len(p.Alerts), UnknownServers: []string{}}
	unknown := map[string]bool{}
	// The last notification of a (server, key) in the payload wins, so
	// the store never sees one key both raised and resolved.
	type entry struct {
		spec   store.AlertSpec
		firing bool
	}
	latest := map[store.AlertKey]entry{}
	var order []store.AlertKey
	for _, al := range p.Alerts {
		firing := al.Status == "firing"
		if !firing && al.Status != "resolved" {
			resp.Ignored++
			continue
		}
		matched, ref := m.match(al.Labels)
		if len(matched) == 0 {
			resp.UnknownServerAlerts++
			ref = clip(ref, 100)
			if !unknown[ref] && len(resp.UnknownServers) < MaxUnknownServers {
				resp.UnknownServers = append(resp.UnknownServers, ref)
			}
			unknown[ref] = true
			continue
		}
		key := alertmanagerKeyPrefix + fingerprint(al)
		for _, sv := range matched {
			k := store.AlertKey{ServerID: sv.ID, Key: key}
			if _, seen := latest[k]; !seen {
				order = append(order, k)
			}
			latest[k] = entry{firing: firing, spec: store.AlertSpec{
				ServerID: sv.ID, Kind: store.KindAlert, Severity: alertmanagerSeverity(al.Labels["severity"]),
				Message: alertmanagerMessage(al), Source: store.AlertSourceAlertmanager, ExternalKey: key,
			}}
		}
	}
	var raise []store.AlertSpec
	var resolve []store.AlertKey
	for _, k := range order {
		if e := latest[k]; e.firing {
			raise = append(raise, e.spec)
		} else {
			resolve = append(resolve, k)
		}
	}
	if len(raise) > 0 || len(resolve) > 0 {
		res, err := a.store.ApplyKeyedAlerts(ctx, raise, resolve)
		if err != nil {
			a.storeFailed(w, r, "apply Alertmanager alerts", err)
			return
		}
		resp.Raised, resp.AlreadyActive = res.Raised, len(raise)-res.Raised
		resp.Resolved, resp.NotActive = res.Resolved, len(resolve)-res.Resolved
	}
	c := a.metrics.externalAlerts
	src := store.AlertSourceAlertmanager
	c.WithLabelValues(src, "raised").Add(float64(resp.Raised))
	c.WithLabelValues(src, "already_active").Add(float64(resp.AlreadyActive))
	c.WithLabelValues(src, "resolved").Add(float64(resp.Resolved))
	c.WithLabelValues(src, "not_active").Add(float64(resp.NotActive))
	c.WithLabelValues(src, "ignored").Add(float64(resp.Ignored))
	c.WithLabelValues(src, "unknown_server").Add(float64(resp.UnknownServerAlerts))
	if resp.UnknownServerAlerts > 0 {
		// One line per payload, however many alerts it carried.
		a.log.Info("alertmanager: alerts for unknown servers", "receiver", clip(p.Receiver, 100),
			"alerts", resp.UnknownServerAlerts, "servers", resp.UnknownServers)
	}
	writeJSON(w, http.StatusOK, resp)
}

// serverMatcher finds the servers an Alertmanager alert is about.
type serverMatcher struct {
	byID   map[int64]store.Server
	byName map[string]store.Server
	byHost map[string][]store.Server
}

func newServerMatcher(servers []store.Server) *serverMatcher {
	m := &serverMatcher{byID: map[int64]store.Server{}, byName: map[string]store.Server{}, byHost: map[string][]store.Server{}}
	for _, sv := range servers {
		m.byID[sv.ID] = sv
		m.byName[sv.Name] = sv
		h := canonicalHost(sv.Host)
		m.byHost[h] = append(m.byHost[h], sv)
	}
	return m
}

// match returns the servers an alert's labels name, and what they named
// (for the unknown list). The server label (an id or a name) decides
// alone when present; else the host of the instance label is matched
// against server names, then against server hosts, where it matches
// every server on that host.
func (m *serverMatcher) match(labels map[string]string) ([]store.Server, string) {
	if ref := labels["server"]; ref != "" {
		if id, err := ParseServerID(ref); err == nil {
			if sv, ok := m.byID[id]; ok {
				return []store.Server{sv}, ref
			}
			return nil, "server=" + ref
		}
		if sv, ok := m.byName[ref]; ok {
			return []store.Server{sv}, ref
		}
		return nil, "server=" + ref
	}
	inst := labels["instance"]
	if inst == "" {
		return nil, "(no server or instance label)"
	}
	host := InstanceHost(inst)
	if sv, ok := m.byName[host]; ok {
		return []store.Server{sv}, host
	}
	if svs := m.byHost[canonicalHost(host)]; len(svs) > 0 {
		return svs, host
	}
	return nil, "instance=" + inst
}

// InstanceHost is the host part of a Prometheus instance label:
// "db1:9100" → "db1", "[2001:db8::1]:9100" → "2001:db8::1", a bare IPv6
// address or a name without a port as it is, and a URL (blackbox probes)
// its host.
func InstanceHost(instance string) string {
	instance = strings.TrimSpace(instance)
	if strings.Contains(instance, "://") {
		if u, err := url.Parse(instance); err == nil && u.Hostname() != "" {
			return u.Hostname()
		}
	}
	if h, _, err := net.SplitHostPort(instance); err == nil {
		return h
	}
	if strings.HasPrefix(instance, "[") && strings.HasSuffix(instance, "]") {
		return instance[1 : len(instance)-1]
	}
	return instance
}

// canonicalHost makes equal hosts compare equal: DNS names case-folded
// without a trailing dot, IP addresses in their canonical text.
func canonicalHost(h string) string {
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.String()
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// alertmanagerSeverity maps the severity label to ours; anything else,
// or none, is a warning.
func alertmanagerSeverity(label string) string {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "critical":
		return store.SeverityCritical
	case "info":
		return store.SeverityInfo
	default:
		return store.SeverityWarning
	}
}

// alertmanagerMessage is "alertname: summary" (or the description when
// there is no summary), made one printable line that fits an alert.
func alertmanagerMessage(al AlertmanagerAlert) string {
	name := oneLine(al.Labels["alertname"])
	text := oneLine(al.Annotations["summary"])
	if text == "" {
		text = oneLine(al.Annotations["description"])
	}
	msg := text
	switch {
	case name != "" && text != "":
		msg = name + ": " + text
	case name != "":
		msg = name
	case text == "":
		msg = "alert from Alertmanager"
	}
	return clip(msg, store.MaxAlertMessageLen)
}

// oneLine turns control characters (annotations are often multi-line
// templates) into spaces and collapses runs of white space.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// clip cuts s to at most max characters, marking the cut with "…".
func clip(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// fingerprint is the alert's own fingerprint, or, if a sender left it
// out, a hash of its sorted labels (what identifies an alert in
// Alertmanager too).
func fingerprint(al AlertmanagerAlert) string {
	if fp := strings.TrimSpace(al.Fingerprint); fp != "" && utf8.RuneCountInString(fp) <= 128 && oneLine(fp) == fp {
		return fp
	}
	names := make([]string, 0, len(al.Labels))
	for k := range al.Labels {
		names = append(names, k)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, k := range names {
		fmt.Fprintf(h, "%s\x00%s\x00", k, al.Labels[k])
	}
	return "labels-" + hex.EncodeToString(h.Sum(nil))[:16]
}
