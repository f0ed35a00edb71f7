package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/sqlite"
)

// fuzzStore accepts server 1 with the token "good"; it keeps no state, so
// the fuzzer spends its time in parsing, not in a database.
type fuzzStore struct{ store.Store }

func (fuzzStore) RecordPushes(_ context.Context, pushes []store.Push) ([]store.PushOutcome, error) {
	out := make([]store.PushOutcome, len(pushes))
	good := store.HashToken("good")
	for i, p := range pushes {
		if p.ServerID == 1 && bytes.Equal(p.TokenHash, good) {
			out[i] = store.PushOutcome{OK: true, ServerName: "one"}
		}
	}
	return out, nil
}

// FuzzHeartbeatRequest throws arbitrary path segments, bodies, content
// types and authorization headers at the push endpoint: whatever a client
// sends, the answer is never a 5xx, and is either the receipt or a JSON
// error.
func FuzzHeartbeatRequest(f *testing.F) {
	for _, seed := range []struct{ id, body, ctype, auth string }{
		{"1", `{"agent_version": "1.0.0"}`, "application/json", "Bearer good"},
		{"1", "", "", "Bearer good"},
		{"1", `{"agent_version": 1}`, "application/json", "Bearer good"},
		{"abc", "{}", "application/json", "Bearer good"},
		{"-1", "", "", ""},
		{"99999999999999999999", "", "", "Bearer x"},
		{"1", "not json", "text/plain", "Bearer good"},
		{"1", `{"agent_version": "\u0000"}`, "application/json; charset=utf-8", "bearer good"},
		{"1", `[1,2]`, "application/vnd.api+json", "Bearer good"},
		{"1/../2", "{}", "application/json", "Bearer good"},
		{"%2F", "{", "application/json", "Basic Zm9vOmJhcg=="},
	} {
		f.Add(seed.id, []byte(seed.body), seed.ctype, seed.auth)
	}
	a := api.New(fuzzStore{}, api.Options{BatchWait: -1})
	f.Cleanup(a.Close)
	f.Fuzz(func(t *testing.T, id string, body []byte, ctype, auth string) {
		u := &url.URL{Path: "/api/heartbeat/" + id + "/"}
		req := httptest.NewRequest(http.MethodPost, "http://hb.test"+u.EscapedPath(), bytes.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("id %q body %q type %q: %d %s", id, body, ctype, rec.Code, rec.Body)
		}
		switch {
		case rec.Code == http.StatusOK:
			var r api.PushResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || r.Status != "ok" || !r.HeartbeatReceived || r.ServerID != 1 {
				t.Fatalf("200 without a receipt: %s", rec.Body)
			}
		case rec.Code >= 400:
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%d without a JSON error: %q", rec.Code, rec.Body)
			}
		}
	})
}

// FuzzAlertmanagerPayload throws arbitrary bodies at the Alertmanager
// receiver over a real SQLite store with two servers: whatever arrives,
// the answer is never a 5xx, and is either the summary or a JSON error.
func FuzzAlertmanagerPayload(f *testing.F) {
	for _, seed := range []string{
		`{"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": {"server": "web1", "alertname": "A"}, "fingerprint": "f1"}]}`,
		`{"version": "4", "alerts": [{"status": "resolved", "labels": {"instance": "[2001:db8::1]:9100"}, "fingerprint": "f1"}]}`,
		`{"version": "4", "alerts": [{"status": "firing", "labels": {"instance": "http://[::1"}, "annotations": {"summary": "\u0000\n\t"}}]}`,
		`{"version": "4", "alerts": [{"status": "firing", "labels": {"server": "0"}, "fingerprint": " "}]}`,
		`{"version": "4", "alerts": null}`,
		`{"version": 4}`,
		`{"version": "4", "alerts": [{"labels": {"server": "1", "severity": "CRITICAL"}, "status": "firing", "fingerprint": "\u00ff\u00fe"}]}`,
	} {
		f.Add([]byte(seed))
	}
	s, err := sqlite.Open(context.Background(), filepath.Join(f.TempDir(), "hb.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	for _, sv := range []store.ServerSpec{{Name: "web1", Host: "web1.example.net"}, {Name: "v6", Host: "2001:db8::1"}} {
		if _, err := s.AddServer(context.Background(), sv); err != nil {
			f.Fatal(err)
		}
	}
	a := api.New(s, api.Options{AlertsToken: "t"})
	f.Cleanup(a.Close)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "http://hb.test/api/alertmanager", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer t")
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("body %q: %d %s", body, rec.Code, rec.Body)
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || (rec.Code != 200 && v["error"] == nil) {
			t.Fatalf("body %q: %d without a JSON answer: %q", body, rec.Code, rec.Body)
		}
	})
}
