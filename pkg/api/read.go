package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

// serversQuery is what GET /api/servers was asked for: the states to
// list (none: all), the name of the last server of the previous page
// ("": from the start) and the page size (0: no limit).
type serversQuery struct {
	states map[status.State]bool
	after  string
	limit  int
}

// maxServersLimit bounds ?limit=; a client wanting more reads the whole
// array without it.
const maxServersLimit = 100000

// parseServersQuery reads ?status=, ?after= and ?limit=.
func parseServersQuery(q url.Values) (serversQuery, error) {
	var sq serversQuery
	if v := q.Get("status"); v != "" {
		sq.states = map[status.State]bool{}
		for _, word := range strings.Split(v, ",") {
			st := status.State(strings.ToUpper(strings.TrimSpace(word)))
			switch st {
			case status.Online, status.Warning, status.Offline, status.Disabled:
				sq.states[st] = true
			default:
				return serversQuery{}, fmt.Errorf("status: %q is not one of online, warning, offline, disabled", word)
			}
		}
	}
	if q.Has("after") {
		if sq.after = q.Get("after"); sq.after == "" {
			return serversQuery{}, errors.New("after: give the name of the last server of the previous page")
		}
	}
	if v := q.Get("limit"); v != "" || q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxServersLimit {
			return serversQuery{}, fmt.Errorf("limit: %q is not a whole number from 1 to %d", v, maxServersLimit)
		}
		sq.limit = n
	}
	return sq, nil
}

// errUnknownCursor: ?after= names no server (deleted since the previous
// page, or mistyped).
var errUnknownCursor = errors.New("after: no server has that name")

// report reads the fleet and judges it, as `status` does, streaming the
// rows out of the store and keeping only those q asks for; the counts
// cover every server. hasMore says rows follow the page.
func (a *API) report(r *http.Request, q serversQuery) (rep report.Report, hasMore bool, err error) {
	ctx, cancel := a.storeContext(r)
	defer cancel()
	var afterState status.State
	c := &report.Collector{StaleAfter: a.opts.StaleAfter}
	c.Keep = func(row *report.ServerStatus) bool {
		if row.Name == q.after && q.after != "" {
			afterState = row.Status
		}
		return q.states == nil || q.states[row.Status]
	}
	now, flips, err := c.Collect(ctx, a.store, true)
	if err != nil {
		return report.Report{}, false, err
	}
	if q.after != "" && afterState == "" {
		return report.Report{}, false, errUnknownCursor
	}
	rep = c.Report(now, flips)
	if q.after != "" {
		// Rows sort worst first, then by name: the page starts after the
		// cursor's place in that order, judged at this request's clock.
		i := sort.Search(len(rep.Servers), func(i int) bool {
			return report.Before(afterState, q.after, rep.Servers[i].Status, rep.Servers[i].Name)
		})
		rep.Servers = rep.Servers[i:]
	}
	if q.limit > 0 && len(rep.Servers) > q.limit {
		rep.Servers, hasMore = rep.Servers[:q.limit], true
	}
	return rep, hasMore, nil
}

// servers handles GET /api/servers: the JSON of `status --json`, or a
// part of it (?status=, ?limit=, ?after=; README "GET /api/servers"). A
// page that has a next one says where it is in a Link header (rel="next"),
// so the body stays the documented array.
func (a *API) servers(w http.ResponseWriter, r *http.Request) {
	q, err := parseServersQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rep, hasMore, err := a.report(r, q)
	if errors.Is(err, errUnknownCursor) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		a.storeFailed(w, r, "read status", err)
		return
	}
	if hasMore {
		next := r.URL.Query()
		next.Set("after", rep.Servers[len(rep.Servers)-1].Name)
		w.Header().Set("Link", "<"+r.URL.Path+"?"+next.Encode()+`>; rel="next"`)
	}
	writeJSONArray(w, rep.Servers)
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
	rep, err := report.LoadServer(ctx, a.store, id, a.opts.StaleAfter, true)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no server with that id")
		return
	}
	if err != nil {
		a.storeFailed(w, r, "read status", err)
		return
	}
	writeJSON(w, http.StatusOK, rep.Servers[0])
}

// storeFailed answers 503 for a store that did not answer, and logs why.
// Any store failure is reported as unavailability: none is caused by the
// client, and a retry later is the right reaction.
func (a *API) storeFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.log.Warn(what+" failed", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusServiceUnavailable, "store unavailable; retry later")
}
