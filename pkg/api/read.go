package api

import (
	"net/http"

	"github.com/stacksense/heartbeat/pkg/output"
)

// report reads the fleet and judges it, as `status` does.
func (a *API) report(r *http.Request) (output.Report, error) {
	ctx, cancel := a.storeContext(r)
	defer cancel()
	snap, err := a.store.Status(ctx)
	if err != nil {
		return output.Report{}, err
	}
	return output.BuildReport(snap, a.opts.StaleAfter), nil
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
	rep, err := a.report(r)
	if err != nil {
		a.storeFailed(w, r, "read status", err)
		return
	}
	for _, s := range rep.Servers {
		if s.ID == id {
			writeJSON(w, http.StatusOK, s)
			return
		}
	}
	writeError(w, http.StatusNotFound, "no server with that id")
}

// storeFailed answers 503 for a store that did not answer, and logs why.
// Any store failure is reported as unavailability: none is caused by the
// client, and a retry later is the right reaction.
func (a *API) storeFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.log.Warn(what+" failed", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusServiceUnavailable, "store unavailable; retry later")
}
