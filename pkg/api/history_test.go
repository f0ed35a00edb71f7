package api_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/store"
)

// GET /api/servers/{id}/history: spans and flips of the window asked for,
// and the uptime figures; /api/servers carries the 24-hour uptime.
func TestServerHistoryAPI(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		srv := serve(t, s, api.Options{})
		ag := addAgent(t, s, "agent")
		now, err := s.Now(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Up four minutes ago with a 5-minute window, then judged with a
		// 60-second one: a minute up, then down since.
		if _, err := s.UpdateServer(ctx, ag.id, store.ServerSpec{Name: "agent", Host: "agent.example.net", StaleAfter: 5 * time.Minute}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: ag.id, OK: true, At: now.Add(-4 * time.Minute)}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateServer(ctx, ag.id, store.ServerSpec{Name: "agent", Host: "agent.example.net", StaleAfter: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil {
			t.Fatal(err)
		}

		id := strconv.FormatInt(ag.id, 10)
		a := call(t, "GET", srv.URL+"/api/servers/"+id+"/history?since=1h", "")
		if a.code != 200 {
			t.Fatalf("history: %d %s", a.code, a.body)
		}
		var h struct {
			Name  string `json:"name"`
			Spans []struct {
				State   string  `json:"state"`
				Seconds float64 `json:"seconds"`
				Current bool    `json:"current"`
			} `json:"spans"`
			Flips []struct {
				From, To, Reason string
			} `json:"flips"`
			Uptime map[string]*float64 `json:"uptime"`
		}
		if err := json.Unmarshal(a.body, &h); err != nil {
			t.Fatal(err)
		}
		if h.Name != "agent" || len(h.Spans) != 2 || h.Spans[0].State != "ONLINE" || h.Spans[0].Seconds != 60 || !h.Spans[1].Current ||
			len(h.Flips) != 2 || h.Flips[1].To != "OFFLINE" || h.Flips[1].Reason != "no heartbeat for 60s" {
			t.Errorf("history = %s", a.body)
		}
		if u := h.Uptime["24h"]; u == nil || *u < 20 || *u > 26 {
			t.Errorf("uptime = %s", a.body)
		}
		var list []struct {
			Uptime24h *float64   `json:"uptime_24h"`
			Since     *time.Time `json:"since"`
		}
		if a := call(t, "GET", srv.URL+"/api/servers", ""); a.code != 200 || json.Unmarshal(a.body, &list) != nil || len(list) != 1 ||
			list[0].Uptime24h == nil || *list[0].Uptime24h > 26 || list[0].Since == nil {
			t.Errorf("/api/servers = %d %s", a.code, a.body)
		}

		for path, code := range map[string]int{
			"/api/servers/" + id + "/history?since=yesterday": 400,
			"/api/servers/999999/history":                     404,
			"/api/servers/x/history":                          400,
		} {
			if a := call(t, "GET", srv.URL+path, ""); a.code != code {
				t.Errorf("GET %s = %d %s, want %d", path, a.code, a.body, code)
			}
		}
	})
}
