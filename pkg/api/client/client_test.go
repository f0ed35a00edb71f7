package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/api/client"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/sqlite"
)

// fixture is a real API over a real SQLite store on loopback, behind a
// handler that counts requests and can answer the first few itself.
type fixture struct {
	url     string
	id      int64
	token   string
	calls   atomic.Int32
	failing atomic.Int32 // answer this many requests with 503 first
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "hb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	sv, err := s.AddServer(ctx, store.ServerSpec{Name: "agent1", Host: "agent1.example.net", Mode: store.ModePush})
	if err != nil {
		t.Fatal(err)
	}
	token, hash, err := store.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetServerToken(ctx, sv.ID, hash); err != nil {
		t.Fatal(err)
	}
	a := api.New(s, api.Options{})
	f := &fixture{id: sv.ID, token: token}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		if f.failing.Add(-1) >= 0 {
			http.Error(w, `{"error":"store unavailable; retry later"}`, http.StatusServiceUnavailable)
			return
		}
		a.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	f.url = srv.URL
	return f
}

func TestPushStoresAndReturnsTheReceipt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := &client.Client{BaseURL: f.url + "/", Token: f.token}
	got, err := c.Push(context.Background(), f.id, "agent/1.0")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "ok" || !got.HeartbeatReceived || got.ServerID != f.id || got.ServerName != "agent1" || got.Timestamp.IsZero() {
		t.Errorf("receipt %+v", got)
	}
}

func TestPushRetriesServerErrorsOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.failing.Store(2)
	c := &client.Client{BaseURL: f.url, Token: f.token, Retries: 3}
	if _, err := c.Push(context.Background(), f.id, ""); err != nil {
		t.Fatalf("two 503s then a store: %v", err)
	}
	if n := f.calls.Load(); n != 3 {
		t.Errorf("%d requests, want 3 (two retried 503s, then the stored push)", n)
	}

	// A wrong token is final: one request, an error naming the answer and
	// never the token.
	f.calls.Store(0)
	wrong := "hb_" + strings.Repeat("x", 40)
	c.Token = wrong
	_, err := c.Push(context.Background(), f.id, "")
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "missing or invalid token") {
		t.Errorf("wrong token: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), wrong) {
		t.Errorf("error carries the token: %v", err)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("wrong token: %d requests, want 1 (4xx is not retried)", n)
	}

	// Retries run out on a store that stays down.
	f.calls.Store(0)
	f.failing.Store(100)
	c.Token = f.token
	if _, err := c.Push(context.Background(), f.id, ""); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("store down: %v", err)
	}
	if n := f.calls.Load(); n != 4 {
		t.Errorf("store down: %d requests, want 4 (1 + 3 retries)", n)
	}
}

func TestPushReportsRedirects(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.RedirectHandler("https://monitor.example.net/api/heartbeat/1/", http.StatusMovedPermanently))
	t.Cleanup(srv.Close)
	c := &client.Client{BaseURL: srv.URL, Token: "t"}
	_, err := c.Push(context.Background(), 1, "")
	if err == nil || !strings.Contains(err.Error(), "redirected to https://monitor.example.net/api/heartbeat/1/") {
		t.Errorf("redirect: %v", err)
	}
}
