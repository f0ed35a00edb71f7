package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/store"
)

// report reads the fleet and judges it, as `status` does.
func (a *API) report(r *http.Request) (report.Report, error) {
	ctx, cancel := a.storeContext(r)
	defer cancel()
	snap, err := a.store.Status(ctx)
	if err != nil {
		return report.Report{}, err
	}
	flips, err := a.store.Flips(ctx, store.FlipQuery{Since: snap.Now.Add(-24 * time.Hour)})
	if err != nil {
		return report.Report{}, err
	}
	if flips == nil {
		flips = []store.Flip{}
	}
	return report.BuildWithHistory(snap, a.opts.StaleAfter, flips), nil
}

// servers handles GET /api/servers: the JSON of `status --json`.
func (a *API) servers(w http.ResponseWriter, r *http.Request) {
	rep, err := a.report(r)
	if err != nil {
		a.storeFailed(w, r, "read status", err)
		return
	}
	writeJSON(w, http.StatusOK, rep.Servers)
}

// server handles GET /api/servers/{id}: one element of that array.
func (a *API) server(w http.ResponseWriter, r *http.Request) {
	id, err := ParseServerID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := a.storeContext(r)
	defer cancel()
	// One server's rows, not the fleet's: the cost does not grow with it.
	st, now, err := a.store.ServerStatus(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no server with that id")
		return
	}
	if err != nil {
		a.storeFailed(w, r, "read status", err)
		return
	}
	flips, err := a.store.Flips(ctx, store.FlipQuery{ServerID: id, Since: now.Add(-24 * time.Hour)})
	if err != nil {
		a.storeFailed(w, r, "read status", err)
		return
	}
	if flips == nil {
		flips = []store.Flip{}
	}
	rep := report.BuildWithHistory(store.Snapshot{Now: now, Servers: []store.ServerStatus{st}}, a.opts.StaleAfter, flips)
	writeJSON(w, http.StatusOK, rep.Servers[0])
}

// storeFailed answers 503 for a store that did not answer, and logs why.
// Any store failure is reported as unavailability: none is caused by the
// client, and a retry later is the right reaction.
func (a *API) storeFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.log.Warn(what+" failed", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusServiceUnavailable, "store unavailable; retry later")
}
