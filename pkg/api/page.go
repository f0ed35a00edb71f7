package api

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/stacksense/heartbeat/pkg/history"
	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

// pageTemplates are parsed once; html/template escapes every value, so
// server names, alert messages and errors cannot inject markup. It leaves
// control characters alone, so stored strings also go through
// output.Escape (pageRow, pageAlert).
var pageTemplates = template.Must(template.New("").ParseFS(templateFiles, "templates/*.html"))

// Page limits: a page for people, not a dump of a 100,000-server fleet
// (the API has everything). Rows are worst first, so what is cut is ONLINE.
const (
	maxPageRows   = 500
	maxPageAlerts = 50
)

// pageRow is one server on the status page.
type pageRow struct {
	ID           int64
	Name         string
	Status       status.State
	Class        string // CSS class: online, warning, offline, disabled
	Age          string // "12s ago", "never"
	Seen         string // the last heartbeat, RFC 3339, for the tooltip
	Source       string
	AgentVersion string
	Alerts       int
	ErrorClass   string
	Error        string
	// SeenFrom is what each probe location saw, while several run
	// ("seen from fra; nyc: refused").
	SeenFrom string
	// Uptime24h is the last day's uptime ("99.93%", "" when unknown);
	// Bar is the daily uptime of the last BarDays days.
	Uptime24h string
	Bar       []barSegment
}

// BarDays is how many days the page's uptime bar covers.
const BarDays = 90

// barSegment is a run of consecutive days in the same uptime band, drawn
// as one rect of the row's SVG bar (viewBox units: one per day), so a
// server that was up all quarter costs one element, not ninety.
type barSegment struct {
	X, Width int
	Band     string // up, dip (≥ 99%), down (< 99%), none (not monitored)
	Title    string // "2026-11-01 – 2026-11-20: 100%" for the tooltip
}

// pageChange is one recent state change on the page.
type pageChange struct {
	At, Server, From, To, Reason, Class string
}

type pageAlert struct {
	Server   string
	Kind     string
	Severity string
	Message  string
	Age      string
}

type pageData struct {
	Now            string
	Refresh        int
	Counts         status.Counts
	Total          int
	Rows           []pageRow
	Hidden         int
	Alerts         []pageAlert
	MoreAlerts     int
	Changes        []pageChange
	BarDays        int
	LastRun        string
	Warnings       []report.Warning
	StaleAfter     string
	CanLogout      bool
	LoginError     string
	RequireSession bool
}

// statusPage handles GET /: the fleet for people, refreshing itself.
func (a *API) statusPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := a.storeContext(r)
	defer cancel()
	snap, err := a.store.Status(ctx)
	if err != nil {
		a.storeFailed(w, r, "status page", err)
		return
	}
	alerts, err := a.store.Alerts(ctx, false)
	if err != nil {
		a.storeFailed(w, r, "status page", err)
		return
	}
	run, err := a.store.LastFinishedRun(ctx)
	if err != nil {
		a.storeFailed(w, r, "status page", err)
		return
	}
	if run, err = report.LoadHeaderRun(ctx, a.store, run); err != nil {
		a.storeFailed(w, r, "status page", err)
		return
	}
	aborted, err := a.store.LastAbortedRun(ctx)
	if err != nil {
		a.storeFailed(w, r, "status page", err)
		return
	}
	v, err := report.LoadVantage(ctx, a.store)
	if err != nil {
		a.storeFailed(w, r, "status page", err)
		return
	}
	rep := report.BuildFrom(snap, a.opts.StaleAfter, nil, v)
	shown := rep.Servers[:min(len(rep.Servers), maxPageRows)]
	// The history of the rows shown only: at 100,000 servers, 90 days of
	// the whole fleet's flips were read on every refresh to draw 500 bars.
	ids := make([]int64, len(shown))
	for i, s := range shown {
		ids[i] = s.ID
	}
	since := snap.Now.Add(-BarDays * 24 * time.Hour)
	var flips []store.Flip
	if len(ids) > 0 {
		if flips, err = a.store.Flips(ctx, store.FlipQuery{Since: since, ServerIDs: ids}); err != nil {
			a.storeFailed(w, r, "status page", err)
			return
		}
	}
	recent, err := a.store.Flips(ctx, store.FlipQuery{Since: since, Newest: maxPageChanges})
	if err != nil {
		a.storeFailed(w, r, "status page", err)
		return
	}
	byServer := history.ByServer(flips)
	stored := make(map[int64]string, len(snap.Servers))
	for _, sv := range snap.Servers {
		stored[sv.ID] = sv.State
	}
	data := pageData{
		Now: rep.Now.Format("2006-01-02 15:04:05Z"), Refresh: RefreshSeconds, Counts: rep.Counts,
		Total: len(rep.Servers), Hidden: len(rep.Servers) - len(shown), StaleAfter: staleAfterText(a.opts.StaleAfter),
		CanLogout: a.opts.ReadToken != "", BarDays: BarDays,
	}
	for _, s := range shown {
		s.AddHistory(byServer[s.ID], stored[s.ID], rep.Now)
		row := newPageRow(rep.Now, s)
		spans := history.Spans(byServer[s.ID], stored[s.ID], rep.Now.Add(-BarDays*24*time.Hour), rep.Now)
		row.Bar = uptimeBar(history.Daily(spans, rep.Now, BarDays))
		data.Rows = append(data.Rows, row)
	}
	for i := len(recent) - 1; i >= 0; i-- {
		f := recent[i]
		name, to := output.Escape(f.ServerName), f.To
		if f.ServerID == 0 {
			name = "monitoring host"
		}
		from := f.From
		if from == "" {
			from = "new"
		}
		data.Changes = append(data.Changes, pageChange{At: f.At.Format("2006-01-02 15:04:05Z"), Server: name, From: from, To: to,
			Reason: output.Escape(f.Reason), Class: strings.ToLower(to)})
	}
	for i, al := range alerts {
		if i == maxPageAlerts {
			data.MoreAlerts = len(alerts) - i
			break
		}
		data.Alerts = append(data.Alerts, pageAlert{
			Server: output.Escape(al.ServerName), Kind: al.Kind, Severity: al.Severity, Message: output.Escape(al.Message),
			Age: status.FormatAge(status.Age(rep.Now, al.CreatedAt)) + " ago",
		})
	}
	header := report.NewRunHeader(rep.Now, run, aborted)
	data.LastRun, data.Warnings = header.Summary, header.Warnings
	a.render(w, http.StatusOK, "status.html", data)
}

func newPageRow(now time.Time, s report.ServerStatus) pageRow {
	row := pageRow{
		ID: s.ID, Name: output.Escape(s.Name), Status: s.Status, Class: strings.ToLower(string(s.Status)),
		Age: "never", Source: output.Escape(s.Source), AgentVersion: output.Escape(s.AgentVersion), Alerts: s.ActiveAlerts,
		ErrorClass: output.Escape(s.LastErrorClass), Error: output.Escape(s.LastError),
		SeenFrom: s.SeenFrom, // escaped by report.SeenFrom
	}
	if s.LastHeartbeat != nil {
		row.Age = status.FormatAge(status.Age(now, *s.LastHeartbeat)) + " ago"
		row.Seen = s.LastHeartbeat.UTC().Format(time.RFC3339)
	}
	if s.Uptime24h != nil {
		row.Uptime24h = output.Percent(*s.Uptime24h)
	}
	return row
}

// maxPageChanges is how many recent state changes the page lists.
const maxPageChanges = 20

// uptimeBar merges consecutive days of the same band into segments.
func uptimeBar(days []history.Day) []barSegment {
	var out []barSegment
	for i, d := range days {
		band, text := "none", "not monitored"
		if d.OK {
			text = output.Percent(d.Uptime)
			switch {
			case d.Uptime >= 100:
				band = "up"
			case d.Uptime >= 99:
				band = "dip"
			default:
				band = "down"
			}
		}
		day := d.Date.Format("2006-01-02")
		// Days merge only when their text agrees too, so a tooltip never
		// hides a different figure.
		if n := len(out); n > 0 && out[n-1].Band == band && strings.HasSuffix(out[n-1].Title, ": "+text) {
			out[n-1].Width++
			from, _, _ := strings.Cut(out[n-1].Title, " ")
			out[n-1].Title = from + " – " + day + ": " + text
			continue
		}
		out = append(out, barSegment{X: i, Width: 1, Band: band, Title: day + ": " + text})
	}
	return out
}

// render executes a template into a buffer first, so a template error
// becomes a clean 500 instead of half a page.
func (a *API) render(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := a.page.ExecuteTemplate(&buf, name, data); err != nil {
		a.log.Warn("render page failed", "template", name, "err", err)
		writeError(w, http.StatusInternalServerError, "cannot render page")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// No script runs on these pages: forbid it outright.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// login handles GET /login (the form) and POST /login (check the read
// token, set the session cookie, go to /).
func (a *API) login(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if a.opts.ReadToken == "" {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		a.render(w, http.StatusOK, "login.html", pageData{})
	case http.MethodPost:
		if a.opts.ReadToken == "" {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		if err := r.ParseForm(); err != nil {
			a.render(w, http.StatusBadRequest, "login.html", pageData{LoginError: "The form could not be read."})
			return
		}
		if !equalSecret(r.PostForm.Get("token"), a.opts.ReadToken) {
			a.render(w, http.StatusUnauthorized, "login.html", pageData{LoginError: "That token is not the read token."})
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name: sessionCookie, Value: a.session, Path: "/", MaxAge: 30 * 24 * 3600,
			HttpOnly: true, Secure: a.opts.SecureCookie, SameSite: http.SameSiteStrictMode,
		})
		http.Redirect(w, r, "/", http.StatusSeeOther)
	default:
		methodNotAllowed(w, "GET, HEAD, POST")
	}
}

// logout handles POST /logout: it clears the session cookie.
func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: a.opts.SecureCookie, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// staleAfterText says which freshness window the page's verdicts use.
func staleAfterText(override time.Duration) string {
	if override > 0 {
		return status.FormatAge(override)
	}
	return "its stale-after (60s unless set per server)"
}
