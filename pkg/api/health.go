package api

import (
	"net/http"
	"sync"
	"time"
)

// Health is the answer of GET /healthz.
type Health struct {
	// Status is "ok", or "failing" with Error saying why.
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// healthz handles GET /healthz: 200 when the store answers a read and
// pushes are being stored; 503 when the store does not answer, or when the
// last push write failed within the health window and none has succeeded
// since. A store that reads but cannot write (a read-only file or
// database, a full disk) loses every push, so a load balancer must hear
// about it.
func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := a.storeContext(r)
	defer cancel()
	if _, err := a.store.Now(ctx); err != nil {
		a.storeFailed(w, r, "health check", err)
		return
	}
	if err := a.batcher.writes.failing(); err != "" {
		writeJSON(w, http.StatusServiceUnavailable, Health{Status: "failing", Error: "recent writes failing: " + err})
		return
	}
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
}

// writeHealth remembers the outcome of the push writes: when the last one
// failed, why, and when one last succeeded.
type writeHealth struct {
	window time.Duration
	now    func() time.Time

	mu       sync.Mutex
	failedAt time.Time
	reason   string
	okAt     time.Time
}

// record notes one batch write's outcome.
func (h *writeHealth) record(err error) {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.failedAt, h.reason = now, err.Error()
		return
	}
	h.okAt = now
}

// failing returns why writes are failing, or "" when they are not: the
// last write failed, within the window, and none succeeded after it. The
// window lets health recover when pushes stop arriving, since only a new
// write could otherwise prove the store writable again.
func (h *writeHealth) failing() string {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failedAt.IsZero() || !h.okAt.Before(h.failedAt) || now.Sub(h.failedAt) > h.window {
		return ""
	}
	return h.reason
}
