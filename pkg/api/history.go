package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/stacksense/heartbeat/pkg/history"
	"github.com/stacksense/heartbeat/pkg/store"
)

// historyJSON is GET /api/servers/{id}/history: the server's spans and
// flips since ?since= (default 7d), and its uptime over 24h, 7d and 30d.
// Documented in the README ("history API"); fields are only ever added.
type historyJSON struct {
	ServerID int64               `json:"server_id"`
	Name     string              `json:"name"`
	Now      time.Time           `json:"now"`
	Since    time.Time           `json:"since"`
	Spans    []historySpanJSON   `json:"spans"`
	Flips    []historyFlipJSON   `json:"flips"`
	Uptime   map[string]*float64 `json:"uptime"`
}

type historySpanJSON struct {
	State   string    `json:"state"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Seconds float64   `json:"seconds"`
	Reason  string    `json:"reason"`
	Current bool      `json:"current"`
}

type historyFlipJSON struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
}

// serverHistory handles GET /api/servers/{id}/history?since=7d.
func (a *API) serverHistory(w http.ResponseWriter, r *http.Request) {
	id, err := ParseServerID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := a.storeContext(r)
	defer cancel()
	st, now, err := a.store.ServerStatus(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no server with that id")
		return
	}
	if err != nil {
		a.storeFailed(w, r, "read history", err)
		return
	}
	sinceArg := r.URL.Query().Get("since")
	if sinceArg == "" {
		sinceArg = "7d"
	}
	since, err := history.ParseSince(sinceArg, now)
	if err != nil {
		writeError(w, http.StatusBadRequest, "since "+err.Error())
		return
	}
	// One read covers the requested window and the 30-day uptime.
	from := now.Add(-30 * 24 * time.Hour)
	if since.Before(from) {
		from = since
	}
	flips, err := a.store.Flips(ctx, store.FlipQuery{ServerID: id, Since: from})
	if err != nil {
		a.storeFailed(w, r, "read history", err)
		return
	}
	all := history.Spans(flips, st.State, from, now)
	out := historyJSON{ServerID: st.ID, Name: st.Name, Now: now, Since: since,
		Spans: []historySpanJSON{}, Flips: []historyFlipJSON{}, Uptime: map[string]*float64{}}
	spans := history.Clip(all, since, now)
	for i, sp := range spans {
		out.Spans = append(out.Spans, historySpanJSON{State: sp.State, From: sp.From, To: sp.To, Seconds: sp.Duration().Seconds(),
			Reason: sp.Reason, Current: i == len(spans)-1})
	}
	for _, f := range flips {
		if !f.At.Before(since) {
			out.Flips = append(out.Flips, historyFlipJSON{ID: f.ID, At: f.At, From: f.From, To: f.To, Reason: f.Reason})
		}
	}
	for _, win := range history.Windows {
		if pct, ok := history.Uptime(history.Clip(all, now.Add(-win.D), now)); ok {
			out.Uptime[win.Name] = &pct
		} else {
			out.Uptime[win.Name] = nil
		}
	}
	writeJSON(w, http.StatusOK, out)
}
