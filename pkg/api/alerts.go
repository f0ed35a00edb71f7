package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

// MaxAlertBodyBytes is the largest POST /api/alerts body accepted (413
// beyond); one alert is well under it.
const MaxAlertBodyBytes = 64 << 10

// Alert actions of POST /api/alerts.
const (
	ActionRaise   = "raise"
	ActionResolve = "resolve"
)

// alertsDisabled answers the alert endpoints when no alerts token is set:
// 403, because the endpoint exists but this server refuses all writes to
// it, and the message says how to turn it on.
const alertsDisabled = "the alerts endpoints are disabled: start serve-api with --alerts-token-file FILE or HEARTBEAT_ALERTS_TOKEN to enable them"

// AlertRequest is the body of POST /api/alerts. Unknown fields are
// refused (400), so a misspelt field is not silently dropped.
//
// Raise (action "raise" or absent): server, message, and optionally kind
// (alert|anomaly, default alert), severity (info|warning|critical, default
// warning) and key. A key names the alert in the caller's system: raising
// a key that is already active on that server returns that alert (200)
// instead of a new one (201), and the key resolves it.
//
// Resolve (action "resolve"): id, or server and key.
type AlertRequest struct {
	Action   string    `json:"action,omitempty"`
	ID       int64     `json:"id,omitempty"`
	Server   ServerRef `json:"server,omitzero"`
	Kind     string    `json:"kind,omitempty"`
	Severity string    `json:"severity,omitempty"`
	Message  string    `json:"message,omitempty"`
	Key      string    `json:"key,omitempty"`
}

// ServerRef names a server in a JSON body: its id as a number or a string
// of digits, or its name as a string (names are never all digits).
type ServerRef struct {
	ID   int64
	Name string
}

// IsZero reports whether no server was named.
func (r ServerRef) IsZero() bool { return r.ID == 0 && r.Name == "" }

// UnmarshalJSON accepts 12, "12" or "web1".
func (r *ServerRef) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if id, err := ParseServerID(s); err == nil {
			*r = ServerRef{ID: id}
			return nil
		}
		if strings.TrimSpace(s) == "" {
			return serverRefError("server is empty")
		}
		*r = ServerRef{Name: s}
		return nil
	}
	id, err := ParseServerID(string(b))
	if err != nil {
		return serverRefError("server must be a positive integer id or a name")
	}
	*r = ServerRef{ID: id}
	return nil
}

// serverRefError is ServerRef's complaint, safe to show: it never echoes
// the value.
type serverRefError string

func (e serverRefError) Error() string { return string(e) }

// MarshalJSON writes the id as a number, else the name.
func (r ServerRef) MarshalJSON() ([]byte, error) {
	if r.ID != 0 {
		return []byte(strconv.FormatInt(r.ID, 10)), nil
	}
	return json.Marshal(r.Name)
}

// AlertResponse is an alert as POST /api/alerts returns it.
type AlertResponse struct {
	ID         int64  `json:"id"`
	ServerID   int64  `json:"server_id"`
	ServerName string `json:"server_name"`
	Kind       string `json:"kind"`
	Severity   string `json:"severity"`
	Message    string `json:"message"`
	// Source is who raised it: api, alertmanager, cli, or "" for alerts
	// older than sources.
	Source string `json:"source"`
	Key    string `json:"key,omitempty"`
	// CreatedAt and ResolvedAt are RFC 3339 UTC; ResolvedAt is null while
	// the alert is active.
	CreatedAt  time.Time  `json:"created_at"`
	ResolvedAt *time.Time `json:"resolved_at"`
	Active     bool       `json:"active"`
	// Existing is true when a raise found its key already active and
	// returned that alert instead of recording a new one.
	Existing bool `json:"existing"`
}

func alertResponse(a store.Alert) AlertResponse {
	return AlertResponse{
		ID: a.ID, ServerID: a.ServerID, ServerName: a.ServerName, Kind: a.Kind, Severity: a.Severity,
		Message: a.Message, Source: a.Source, Key: a.ExternalKey, CreatedAt: a.CreatedAt, ResolvedAt: a.ResolvedAt,
		Active: a.ResolvedAt == nil, Existing: a.Existing,
	}
}

// requireAlerts guards the alert endpoints: POST only, then the alerts
// token (403 when none is configured, 401 when missing or wrong).
func (a *API) requireAlerts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			methodNotAllowed(w, http.MethodPost)
			return
		}
		if a.opts.AlertsToken == "" {
			writeError(w, http.StatusForbidden, alertsDisabled)
			return
		}
		tok, ok := bearerToken(r)
		if !ok || !equalSecret(tok, a.opts.AlertsToken) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="heartbeat"`)
			writeError(w, http.StatusUnauthorized, "missing or invalid alerts token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// readJSONBody reads a JSON body of at most limit bytes into v, refusing
// unknown fields when strict. Errors are *requestError: 413, 415 or 400.
func readJSONBody(w http.ResponseWriter, r *http.Request, limit int64, v any, strict bool) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", tooBig.Limit)}
		}
		return &requestError{http.StatusBadRequest, "cannot read body: " + err.Error()}
	}
	if !isJSONType(r.Header.Get("Content-Type")) {
		return &requestError{http.StatusUnsupportedMediaType, "body must be JSON (Content-Type: application/json)"}
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return &requestError{http.StatusBadRequest, "body must be a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return &requestError{http.StatusBadRequest, "malformed JSON body: " + bodyProblem(err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &requestError{http.StatusBadRequest, "malformed JSON body: data after the object"}
	}
	return nil
}

// bodyProblem is jsonProblem plus the decoder's own messages for unknown
// fields (the field's name is ours to show) and ServerRef's own errors.
func bodyProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr), errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return jsonProblem(err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	var refErr serverRefError
	if errors.As(err, &refErr) {
		return refErr.Error()
	}
	return "not a JSON object"
}

// alerts handles POST /api/alerts.
func (a *API) alerts(w http.ResponseWriter, r *http.Request) {
	var req AlertRequest
	if err := readJSONBody(w, r, MaxAlertBodyBytes, &req, true); err != nil {
		var re *requestError
		errors.As(err, &re)
		writeError(w, re.code, re.msg)
		return
	}
	switch req.Action {
	case "", ActionRaise:
		a.raiseAlert(w, r, req)
	case ActionResolve:
		a.resolveAlert(w, r, req)
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("action must be %q or %q", ActionRaise, ActionResolve))
	}
}

func (a *API) raiseAlert(w http.ResponseWriter, r *http.Request, req AlertRequest) {
	if req.ID != 0 {
		writeError(w, http.StatusBadRequest, "id is for resolve; a raise names the server")
		return
	}
	if req.Server.IsZero() {
		writeError(w, http.StatusBadRequest, "server is required (its id or name)")
		return
	}
	spec := store.AlertSpec{Kind: req.Kind, Severity: req.Severity, Message: req.Message,
		Source: store.AlertSourceAPI, ExternalKey: req.Key}
	if spec.Kind == "" {
		spec.Kind = store.KindAlert
	}
	if spec.Severity == "" {
		spec.Severity = store.SeverityWarning
	}
	if err := spec.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := a.storeContext(r)
	defer cancel()
	sv, ok := a.lookupServer(w, r, req.Server)
	if !ok {
		return
	}
	spec.ServerID = sv.ID
	al, err := a.store.RaiseAlert(ctx, spec)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Removed between the lookup and the raise.
		writeError(w, http.StatusNotFound, "no such server")
		return
	case errors.Is(err, store.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		a.storeFailed(w, r, "raise alert", err)
		return
	}
	code := http.StatusCreated
	outcome := "raised"
	if al.Existing {
		code, outcome = http.StatusOK, "already_active"
	}
	a.metrics.externalAlerts.WithLabelValues(store.AlertSourceAPI, outcome).Inc()
	writeJSON(w, code, alertResponse(al))
}

func (a *API) resolveAlert(w http.ResponseWriter, r *http.Request, req AlertRequest) {
	if req.Kind != "" || req.Severity != "" || req.Message != "" {
		writeError(w, http.StatusBadRequest, "resolve takes id, or server and key; kind, severity and message are for raise")
		return
	}
	byID := req.ID != 0
	byKey := !req.Server.IsZero() || req.Key != ""
	switch {
	case byID && byKey:
		writeError(w, http.StatusBadRequest, "resolve takes id, or server and key, not both")
		return
	case byID && req.ID < 0:
		writeError(w, http.StatusBadRequest, "id must be a positive integer")
		return
	case !byID && (req.Server.IsZero() || req.Key == ""):
		writeError(w, http.StatusBadRequest, "resolve needs id, or server and key")
		return
	}
	ctx, cancel := a.storeContext(r)
	defer cancel()
	var (
		al  store.Alert
		err error
	)
	if byID {
		al, err = a.store.ResolveAlert(ctx, req.ID)
	} else {
		sv, ok := a.lookupServer(w, r, req.Server)
		if !ok {
			return
		}
		al, err = a.store.ResolveAlertByKey(ctx, sv.ID, req.Key)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such alert")
		return
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, fmt.Sprintf("alert %d is already resolved", al.ID))
		return
	case err != nil:
		a.storeFailed(w, r, "resolve alert", err)
		return
	}
	a.metrics.externalAlerts.WithLabelValues(store.AlertSourceAPI, "resolved").Inc()
	writeJSON(w, http.StatusOK, alertResponse(al))
}

// lookupServer finds ref's server, answering 404 or 503 itself when it
// cannot.
func (a *API) lookupServer(w http.ResponseWriter, r *http.Request, ref ServerRef) (store.Server, bool) {
	ctx, cancel := a.storeContext(r)
	defer cancel()
	var (
		sv  store.Server
		err error
	)
	if ref.ID != 0 {
		sv, err = a.store.Server(ctx, ref.ID)
	} else {
		sv, err = a.store.ServerByName(ctx, ref.Name)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such server")
		return sv, false
	case err != nil:
		a.storeFailed(w, r, "look up server", err)
		return sv, false
	}
	return sv, true
}
