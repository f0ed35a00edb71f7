package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/stacksense/heartbeat/pkg/store"
)

// PushResponse is the answer to an accepted push, field for field the
// source system's.
type PushResponse struct {
	Status            string `json:"status"`
	ServerID          int64  `json:"server_id"`
	ServerName        string `json:"server_name"`
	HeartbeatReceived bool   `json:"heartbeat_received"`
	// Timestamp is when the heartbeat was stored, by the store's clock,
	// RFC 3339 UTC.
	Timestamp time.Time `json:"timestamp"`
}

// PushRequest is the optional JSON body of a push. Unknown fields are
// ignored, so agents that send more still work.
type PushRequest struct {
	AgentVersion string `json:"agent_version"`
}

// unauthorized is the one answer for a missing token, a wrong token and an
// unknown server alike, so a client cannot probe which ids exist.
const unauthorized = "missing or invalid token"

// requestError is a client mistake with the status code that names it.
type requestError struct {
	code int
	msg  string
}

func (e *requestError) Error() string { return e.msg }

// ParseServerID reads the {server_id} path segment: a positive decimal
// integer, digits only (no sign, no spaces).
func ParseServerID(s string) (int64, error) {
	if s == "" || len(s) > 19 {
		return 0, fmt.Errorf("server id %q is not a positive integer", s)
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("server id %q is not a positive integer", s)
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("server id %q is not a positive integer", s)
	}
	return id, nil
}

// parsePushBody reads a push body: empty, or a JSON object whose optional
// agent_version is a string of printable characters of at most
// MaxAgentVersion bytes. contentType must name JSON when there is a body.
// The returned error is a *requestError carrying 400, 413 or 415.
func parsePushBody(body io.Reader, contentType string) (PushRequest, error) {
	var req PushRequest
	raw, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return req, &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", tooBig.Limit)}
		}
		return req, &requestError{http.StatusBadRequest, "cannot read body: " + err.Error()}
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return req, nil
	}
	if !isJSONType(contentType) {
		return req, &requestError{http.StatusUnsupportedMediaType, "body must be JSON (Content-Type: application/json)"}
	}
	if raw[0] != '{' {
		return req, &requestError{http.StatusBadRequest, `body must be a JSON object such as {"agent_version": "1.0.0"}`}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&req); err != nil {
		return req, &requestError{http.StatusBadRequest, "malformed JSON body: " + jsonProblem(err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, &requestError{http.StatusBadRequest, "malformed JSON body: data after the object"}
	}
	if len(req.AgentVersion) > MaxAgentVersion {
		return req, &requestError{http.StatusBadRequest, fmt.Sprintf("agent_version is longer than %d bytes", MaxAgentVersion)}
	}
	if strings.IndexFunc(req.AgentVersion, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return req, &requestError{http.StatusBadRequest, "agent_version contains control characters"}
	}
	return req, nil
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("%s must be a %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return fmt.Sprintf("syntax error at byte %d", syntaxErr.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return "not a JSON object"
}

// isJSONType accepts application/json and any +json type, with parameters.
func isJSONType(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// heartbeat handles POST /api/heartbeat/{id}/.
func (a *API) heartbeat(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	id, err := ParseServerID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// A request without any Authorization header is what the source
	// system's agent sends: the store accepts it if the server allows
	// token-less pushes from the client's address. Credentials that are
	// present but not a Bearer token are refused here, as before.
	token, hasToken := bearerToken(r)
	if !hasToken && r.Header.Get("Authorization") != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="heartbeat"`)
		writeError(w, http.StatusUnauthorized, unauthorized)
		return
	}
	req, err := parsePushBody(http.MaxBytesReader(w, r.Body, MaxBodyBytes), r.Header.Get("Content-Type"))
	if err != nil {
		var re *requestError
		if errors.As(err, &re) {
			writeError(w, re.code, re.msg)
			return
		}
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p := store.Push{ServerID: id, RemoteAddr: a.clientAddr(r), AgentVersion: req.AgentVersion}
	if hasToken {
		p.TokenHash = store.HashToken(token)
	}
	out, err := a.batcher.submit(r.Context(), p)
	switch {
	case err != nil && r.Context().Err() != nil:
		// The client went away; nobody reads this answer.
		writeError(w, http.StatusServiceUnavailable, "request cancelled")
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "store unavailable; retry later")
		return
	case !out.OK && !hasToken:
		// RFC 6750: no error code when the request carried no credentials.
		w.Header().Set("WWW-Authenticate", `Bearer realm="heartbeat"`)
		writeError(w, http.StatusUnauthorized, unauthorized)
		return
	case !out.OK:
		w.Header().Set("WWW-Authenticate", `Bearer realm="heartbeat", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, unauthorized)
		return
	}
	writeJSON(w, http.StatusOK, PushResponse{
		Status: "ok", ServerID: id, ServerName: out.ServerName, HeartbeatReceived: true, Timestamp: out.At,
	})
}

// errClosed answers pushes that arrive after the writers stopped.
var errClosed = errors.New("push writer stopped")

// pending is one push waiting for its batch to be written.
type pending struct {
	push store.Push
	// done receives exactly one result; buffered so a writer never blocks
	// on a handler whose client has gone.
	done chan pushResult
}

type pushResult struct {
	out store.PushOutcome
	err error
}

// batcher coalesces pushes into store.RecordPushes calls. Each of its
// writers takes the first push waiting, everything already queued behind
// it, and what else arrives within wait (up to max), then writes the batch
// in one call. With several writers one batch fills while another commits,
// so the store sees a few large transactions instead of one per request.
type batcher struct {
	store   store.Store
	in      chan *pending
	quit    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	max     int
	wait    time.Duration
	timeout time.Duration
	log     *slog.Logger
	metrics *metrics
	// writes remembers how the last writes went, for /healthz.
	writes *writeHealth
}

func newBatcher(s store.Store, opts Options, log *slog.Logger, m *metrics) *batcher {
	b := &batcher{
		store: s, in: make(chan *pending, opts.BatchMax*opts.Writers), quit: make(chan struct{}),
		max: opts.BatchMax, wait: opts.BatchWait, timeout: opts.StoreTimeout, log: log, metrics: m,
		writes: &writeHealth{window: opts.HealthWindow, now: time.Now},
	}
	for range opts.Writers {
		b.wg.Add(1)
		go b.run()
	}
	return b
}

// submit queues a push and waits until its batch is committed (or failed).
func (b *batcher) submit(ctx context.Context, p store.Push) (store.PushOutcome, error) {
	req := &pending{push: p, done: make(chan pushResult, 1)}
	select {
	case b.in <- req:
	case <-ctx.Done():
		return store.PushOutcome{}, ctx.Err()
	case <-b.quit:
		return store.PushOutcome{}, errClosed
	}
	select {
	case res := <-req.done:
		return res.out, res.err
	case <-ctx.Done():
		return store.PushOutcome{}, ctx.Err()
	}
}

// close stops the writers after the batch each is writing.
func (b *batcher) close() {
	b.once.Do(func() { close(b.quit) })
	b.wg.Wait()
}

func (b *batcher) run() {
	defer b.wg.Done()
	batch := make([]*pending, 0, b.max)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		batch = batch[:0]
		select {
		case p := <-b.in:
			batch = append(batch, p)
		case <-b.quit:
			return
		}
		// Everything already queued joins at once; then wait a moment for
		// more, unless the batch is full.
	drain:
		for len(batch) < b.max {
			select {
			case p := <-b.in:
				batch = append(batch, p)
			default:
				break drain
			}
		}
		if len(batch) < b.max && b.wait > 0 {
			timer.Reset(b.wait)
		collect:
			for len(batch) < b.max {
				select {
				case p := <-b.in:
					batch = append(batch, p)
				case <-timer.C:
					break collect
				}
			}
			timer.Stop()
		}
		b.write(batch)
	}
}

func (b *batcher) write(batch []*pending) {
	pushes := make([]store.Push, len(batch))
	for i, p := range batch {
		pushes[i] = p.push
	}
	// Not a request's context: the batch belongs to many requests, and one
	// client hanging up must not cancel the others' heartbeats.
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	start := time.Now()
	out, err := b.store.RecordPushes(ctx, pushes)
	b.metrics.observeBatch(len(batch), time.Since(start), out, err)
	b.writes.record(err)
	if err != nil {
		b.log.Warn("recording pushed heartbeats failed", "pushes", len(batch), "err", err)
	}
	for i, p := range batch {
		if err != nil {
			p.done <- pushResult{err: err}
			continue
		}
		p.done <- pushResult{out: out[i]}
	}
}
