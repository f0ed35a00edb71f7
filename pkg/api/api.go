// Package api is heartbeat's HTTP side: servers push heartbeats with their
// own token (POST /api/heartbeat/{id}/; without one only from an address
// the server allows, for the source system's agent), people and machines
// read status (GET /api/servers, the page at /, /metrics), other systems
// raise and resolve alerts with the alerts token (POST /api/alerts, and
// Alertmanager's webhook at POST /api/alertmanager), and load balancers
// ask /healthz.
//
// Pushes are coalesced: handlers hand their heartbeat to a few writer
// goroutines, which each collect what arrives within about a millisecond
// and record it with one store.RecordPushes call. A handler answers only
// once its batch is committed, so a 200 always means a stored heartbeat.
package api

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/store"
)

// Defaults for Options fields left zero.
const (
	DefaultBatchMax     = 256
	DefaultBatchWait    = time.Millisecond
	DefaultWriters      = 4
	DefaultStoreTimeout = 5 * time.Second
	// DefaultHealthWindow is how long a failed push write keeps /healthz
	// at 503 when no write has succeeded since.
	DefaultHealthWindow = time.Minute
	// MaxBodyBytes is the largest push body accepted (413 beyond).
	MaxBodyBytes = 64 << 10
	// MaxAgentVersion is the longest agent_version accepted, in bytes.
	MaxAgentVersion = 64
	// RefreshSeconds is how often the status page reloads itself.
	RefreshSeconds = 15
	// sessionCookie holds a page session derived from the read token.
	sessionCookie = "heartbeat_session"
)

// Options configure the API. The zero value serves an open read side with
// the default batching.
type Options struct {
	// ReadToken, if set, is required (Bearer header, or the session cookie
	// the login form sets) by GET /api/servers*, /metrics and the page.
	// Never log it.
	ReadToken string
	// AlertsToken, if set, is required (Bearer header) by POST /api/alerts
	// and POST /api/alertmanager, which other systems use to raise and
	// resolve alerts. Unset, both answer 403. It is not a server's push
	// token and should differ from ReadToken. Never log it.
	AlertsToken string
	// StaleAfter, when positive, overrides every server's own freshness
	// window; 0 uses each server's (store.Server.StaleAfter).
	StaleAfter time.Duration
	// Logger receives one debug line per request and warnings for
	// failures; nil discards.
	Logger *slog.Logger
	// BatchMax caps the pushes written in one store call.
	BatchMax int
	// BatchWait is how long a writer waits for more pushes after the
	// first one of a batch.
	BatchWait time.Duration
	// Writers is how many batches may be in flight to the store at once.
	Writers int
	// StoreTimeout bounds every store call the API makes.
	StoreTimeout time.Duration
	// NoPerServerMetrics drops every per-server series from /metrics
	// (status, age, latency, failures, phases), keeping the fleet totals:
	// for fleets too big for one series set per server.
	NoPerServerMetrics bool
	// SecureCookie marks the session cookie Secure (set when serving TLS).
	SecureCookie bool
	// HealthWindow is how long a failed push write keeps /healthz at 503
	// while no write has succeeded since; 0 means DefaultHealthWindow.
	HealthWindow time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (see ParseTrustedProxies); none by default, so the TCP
	// peer is the client. The client's address matters only for pushes
	// without a token, which a server may allow from its own address.
	TrustedProxies []netip.Prefix
}

// API serves heartbeat's HTTP endpoints. Create it with New, serve it as an
// http.Handler, and Close it after the HTTP server has shut down.
type API struct {
	store   store.Store
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler
	batcher *batcher
	metrics *metrics
	page    *template.Template
	// session is the cookie value that proves a login: an HMAC of a fixed
	// label keyed by the read token, so the cookie is not the token, it
	// survives restarts, and changing the token logs everyone out.
	session string
}

// New builds the API over s and starts its push writers.
func New(s store.Store, opts Options) *API {
	if opts.BatchMax <= 0 {
		opts.BatchMax = DefaultBatchMax
	}
	if opts.BatchWait < 0 {
		opts.BatchWait = 0
	} else if opts.BatchWait == 0 {
		opts.BatchWait = DefaultBatchWait
	}
	if opts.Writers <= 0 {
		opts.Writers = DefaultWriters
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = DefaultStoreTimeout
	}
	if opts.HealthWindow <= 0 {
		opts.HealthWindow = DefaultHealthWindow
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &API{store: s, opts: opts, log: log, mux: http.NewServeMux(), page: pageTemplates}
	if opts.ReadToken != "" {
		mac := hmac.New(sha256.New, []byte(opts.ReadToken))
		mac.Write([]byte("heartbeat page session v1"))
		a.session = hex.EncodeToString(mac.Sum(nil))
	}
	a.metrics = newMetrics(a)
	a.batcher = newBatcher(s, opts, log, a.metrics)
	a.routes()
	a.handler = a.mux
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// Close stops the push writers. Call it after http.Server.Shutdown has
// returned, when no handler can still be waiting on them.
func (a *API) Close() { a.batcher.close() }

// Registry is the API's Prometheus registry (not the global one), served
// at /metrics.
func (a *API) Registry() *prometheus.Registry { return a.metrics.registry }

func (a *API) routes() {
	// Patterns carry no method: the handlers answer other methods with a
	// JSON 405 and an Allow header, which ServeMux's own 405 would not.
	a.handle("/api/heartbeat/{id}", "heartbeat", http.HandlerFunc(a.heartbeat))
	a.handle("/api/heartbeat/{id}/{$}", "heartbeat", http.HandlerFunc(a.heartbeat))
	a.handle("/api/servers", "servers", a.readOnly(a.requireRead(http.HandlerFunc(a.servers), false)))
	a.handle("/api/servers/{id}", "server", a.readOnly(a.requireRead(http.HandlerFunc(a.server), false)))
	a.handle("/api/servers/{id}/history", "history", a.readOnly(a.requireRead(http.HandlerFunc(a.serverHistory), false)))
	a.handle("/api/alerts", "alerts", a.requireAlerts(http.HandlerFunc(a.alerts)))
	a.handle("/api/alertmanager", "alertmanager", a.requireAlerts(http.HandlerFunc(a.alertmanager)))
	a.handle("/healthz", "healthz", a.readOnly(http.HandlerFunc(a.healthz)))
	a.handle("/metrics", "metrics", a.readOnly(a.requireRead(a.metrics.handler(), false)))
	a.handle("/login", "login", http.HandlerFunc(a.login))
	a.handle("/logout", "logout", http.HandlerFunc(a.logout))
	a.handle("/{$}", "page", a.readOnly(a.requireRead(http.HandlerFunc(a.statusPage), true)))
	a.handle("/", "notfound", http.HandlerFunc(a.notFound))
}

// handle registers h with the request log and HTTP metrics around it.
func (a *API) handle(pattern, name string, h http.Handler) {
	a.mux.Handle(pattern, a.metrics.instrument(name, a.logRequests(h)))
}

// statusWriter remembers the status code for the request log.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests writes one debug line per request and a warning for every
// 5xx. Headers are never logged: Authorization carries tokens.
func (a *API) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		level := slog.LevelDebug
		if sw.code >= 500 {
			level = slog.LevelWarn
		}
		if !a.log.Enabled(r.Context(), level) {
			// The hot path: no record is built for a line nobody sees.
			return
		}
		a.log.Log(r.Context(), level, "request",
			"method", r.Method, "path", r.URL.Path, "status", sw.code,
			"duration", time.Since(start).Round(time.Microsecond), "remote", r.RemoteAddr)
	})
}

// readOnly answers anything but GET and HEAD with 405.
func (a *API) readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// requireRead enforces the read token. The page sends people to the login
// form; the API and metrics answer 401.
func (a *API) requireRead(h http.Handler, page bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.readAllowed(r) {
			h.ServeHTTP(w, r)
			return
		}
		if page {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="heartbeat"`)
		writeError(w, http.StatusUnauthorized, "missing or invalid read token")
	})
}

// readAllowed reports whether r may read: no read token is configured, or
// r carries it as a Bearer token, or carries the session cookie.
func (a *API) readAllowed(r *http.Request) bool {
	if a.opts.ReadToken == "" {
		return true
	}
	if tok, ok := bearerToken(r); ok {
		return equalSecret(tok, a.opts.ReadToken)
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		return equalSecret(c.Value, a.session)
	}
	return false
}

// equalSecret compares two secrets in constant time; hashing first makes
// the lengths equal, so not even the length leaks.
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// bearerToken extracts the token of an "Authorization: Bearer TOKEN"
// header; the scheme is case-insensitive (RFC 9110).
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// errorBody is every error answer: {"error": "..."}.
type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	// The status is already sent; a failed write means the client left.
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONArray answers 200 with rows as writeJSON would encode them,
// one element at a time through a buffer: 100,000 rows never sit in
// memory as one encoded copy.
func writeJSONArray[T any](w http.ResponseWriter, rows []T) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteByte('[')
	var buf []byte
	for i := range rows {
		if i > 0 {
			bw.WriteByte(',')
		}
		if ap, ok := any(&rows[i]).(output.JSONAppender); ok {
			buf = ap.AppendJSON(buf[:0])
			bw.Write(buf)
			continue
		}
		b, err := json.Marshal(&rows[i])
		if err != nil {
			// The status is already sent: end the body short, which a
			// client reads as broken JSON rather than a partial list.
			return
		}
		bw.Write(b)
	}
	bw.WriteString("]\n")
	// A failed write means the client left.
	_ = bw.Flush()
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "method not allowed; use "+allow)
}

func (a *API) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
}

// storeContext bounds a store call made on behalf of a request.
func (a *API) storeContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), a.opts.StoreTimeout)
}
