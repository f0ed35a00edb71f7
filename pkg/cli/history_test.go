package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/sshtest"
	"github.com/stacksense/heartbeat/pkg/store"
)

type flipOut struct {
	ServerID int64     `json:"server_id"`
	Server   string    `json:"server"`
	At       time.Time `json:"at"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Reason   string    `json:"reason"`
	Notify   bool      `json:"notify"`
}

func (e *env) evaluate() []flipOut {
	e.t.Helper()
	var out []flipOut
	if err := json.Unmarshal([]byte(e.mustRun("evaluate", "--json")), &out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// A push agent's life told by evaluate, history, uptime and status: its own
// stale-after, a down-flip dated when it went stale, the uptime that
// follows from it.
func TestEvaluateHistoryUptime(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "agent", "--host", "10.0.0.7", "--mode", "push", "--stale-after", "5m")
		if show := e.mustRun("servers", "show", "agent"); !regexp.MustCompile(`stale after:\s+5m0s`).MatchString(show) {
			t.Errorf("servers show lacks the stale-after:\n%s", show)
		}
		s := e.open()
		sv, err := s.ServerByName(context.Background(), "agent")
		if err != nil {
			t.Fatal(err)
		}
		now, _ := s.Now(context.Background())
		hb := now.Add(-4 * time.Minute).Truncate(time.Millisecond)
		pushHeartbeat(t, s, sv.ID, hb)

		// A 4-minute-old heartbeat is fresh in its 5-minute window.
		if got := e.evaluate(); len(got) != 1 || got[0].To != "ONLINE" || got[0].From != "" || !got[0].At.Equal(hb) || got[0].Notify {
			t.Fatalf("first evaluation = %+v", got)
		}
		if got := e.evaluate(); len(got) != 0 {
			t.Errorf("second evaluation recorded %+v", got)
		}
		// Its window narrows to 60 s: it has been OFFLINE since hb+60s.
		out := e.mustRun("servers", "set", "agent", "--stale-after", "1m")
		if !strings.Contains(out, "stale-after 5m0s → 1m0s") {
			t.Errorf("servers set printed %q", out)
		}
		text := e.mustRun("evaluate")
		if !strings.Contains(text, "agent ONLINE → OFFLINE: no heartbeat for 60s") || !strings.Contains(text, "1 change(s)") {
			t.Errorf("evaluate printed:\n%s", text)
		}

		var spans []struct {
			State   string  `json:"state"`
			Seconds float64 `json:"seconds"`
			Current bool    `json:"current"`
		}
		if err := json.Unmarshal([]byte(e.mustRun("history", "agent", "--json")), &spans); err != nil {
			t.Fatal(err)
		}
		if len(spans) != 2 || spans[0].State != "ONLINE" || spans[0].Seconds != 60 || spans[1].State != "OFFLINE" || !spans[1].Current || spans[1].Seconds < 180 {
			t.Errorf("history = %+v; want a minute ONLINE, then OFFLINE since", spans)
		}
		if h := e.mustRun("history", "agent"); !regexp.MustCompile(`(?m)^\S+ \S+\s+now\s+OFFLINE\s+3m\d+s\s+no heartbeat for 60s`).MatchString(h) || !strings.Contains(h, "uptime since") {
			t.Errorf("history table:\n%s", h)
		}

		// One of the ~4 monitored minutes was up.
		var up []struct {
			Name   string              `json:"name"`
			Uptime map[string]*float64 `json:"uptime"`
		}
		if err := json.Unmarshal([]byte(e.mustRun("uptime", "--json")), &up); err != nil {
			t.Fatal(err)
		}
		if len(up) != 1 || up[0].Uptime["24h"] == nil || *up[0].Uptime["24h"] > 26 || *up[0].Uptime["24h"] < 20 || *up[0].Uptime["30d"] != *up[0].Uptime["24h"] {
			t.Errorf("uptime = %+v; want about 25%% in every window", up)
		}
		if tbl := e.mustRun("uptime", "agent", "--since", "90d"); !regexp.MustCompile(`(?m)^ID\s+NAME\s+90D$`).MatchString(tbl) {
			t.Errorf("uptime --since table:\n%s", tbl)
		}
		status := e.run("status", "--verbose").out
		if !regexp.MustCompile(`agent\s+OFFLINE\s+.*\s+3m\d+s\s+2\d\.\d\d%`).MatchString(status) {
			t.Errorf("status --verbose lacks FOR and UPTIME 24H:\n%s", status)
		}
		var rows []map[string]any
		json.Unmarshal([]byte(e.run("status", "--json").out), &rows)
		if len(rows) != 1 || rows[0]["stale_after_seconds"] != float64(60) || rows[0]["since"] == nil || rows[0]["uptime_24h"] == nil {
			t.Errorf("status --json = %v", rows)
		}

		e.expectFail(64, `--since "yesterday"`, "history", "agent", "--since", "yesterday")
		e.expectFail(64, "is not in the past", "history", "agent", "--since", "2099-01-01T00:00:00Z")
		e.expectFail(64, "at most one argument", "uptime", "a", "b")
		e.expectFail(1, `no server named "ghost"`, "history", "ghost")
		e.expectFail(64, "stale-after 0s is outside", "servers", "set", "agent", "--stale-after", "0s")
		e.expectFail(64, "stale-after 500ms is outside", "servers", "add", "x", "--host", "h", "--stale-after", "500ms")
		if r := e.run("servers", "add", "eager", "--host", "10.0.0.8", "--stale-after", "10s"); r.code != 0 || !strings.Contains(r.err, "shorter than the 30s probe interval") {
			t.Errorf("servers add with a 10s window: exit %d, stderr %q", r.code, r.err)
		}
	})
}

// probe-ssh records the changes it causes at the end of its run, and tells
// a Healthchecks-style dead-man's switch that it ran.
func TestProbeSSHRecordsChangesAndPings(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		fleet, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 2})
		var (
			mu    sync.Mutex
			pings []string
		)
		hc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			pings = append(pings, r.Method+" "+r.URL.Path+" "+string(body))
			mu.Unlock()
		}))
		defer hc.Close()
		e.probe("--key", key, "--timeout", "3s", "--ping-url", hc.URL+"/ping/check-1")
		mu.Lock()
		got := strings.Join(pings, "\n")
		mu.Unlock()
		if !regexp.MustCompile(`^GET /ping/check-1/start \nPOST /ping/check-1 probed 2 servers`).MatchString(got) {
			t.Errorf("dead-man's switch got:\n%s", got)
		}

		name := fleet.Servers()[0].Name
		var spans []struct{ State string }
		json.Unmarshal([]byte(e.mustRun("history", name, "--json")), &spans)
		if len(spans) != 1 || spans[0].State != "ONLINE" {
			t.Fatalf("history after the first run = %+v", spans)
		}
		// The server answered 2 minutes ago and its port now refuses: the
		// run's round takes it down, stamped when its heartbeat went stale.
		s := e.open()
		sv, _ := s.ServerByName(context.Background(), name)
		now, _ := s.Now(context.Background())
		if err := s.RecordProbeResults(context.Background(), []store.ProbeResult{{ServerID: sv.ID, OK: true, At: now.Add(-2 * time.Minute)}}); err != nil {
			t.Fatal(err)
		}
		// A webhook channel on a real loopback receiver hears about it
		// from the same run.
		var hooks []string
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			hooks = append(hooks, string(body))
			mu.Unlock()
		}))
		defer hook.Close()
		e.mustRun("notify", "add", "ops", "webhook+"+hook.URL+"/hook", "--on", "down,up")
		e.mustRun("servers", "set", name, "--port", strconv.Itoa(closedPort(t)))
		// Quiet on success, as cron needs, even when the run's round
		// records a change.
		if r := e.run("probe-ssh", "--all", "--key", key, "--timeout", "3s"); r.code != 0 || r.out != "" || r.err != "" {
			t.Errorf("probe-ssh: exit %d, stdout %q, stderr %q; want a quiet success", r.code, r.out, r.err)
		}
		flips, err := s.Flips(context.Background(), store.FlipQuery{ServerID: sv.ID, Since: now.Add(-time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		last := flips[len(flips)-1]
		if last.To != "OFFLINE" || !strings.Contains(last.Reason, "last probe: refused") || !last.Notify {
			t.Errorf("after the failed run the last flip is %+v", last)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(hooks) != 1 || !strings.Contains(hooks[0], `"to":"OFFLINE"`) || !strings.Contains(hooks[0], name) {
			t.Errorf("the webhook received %q; want one message about %s going OFFLINE", hooks, name)
		}
	})
}

// serve-api judges the fleet on its own every --evaluate-every: a push
// agent that goes silent is recorded OFFLINE with no probe run and no
// push, serve-api logs the change, and its dead-man's switch hears from
// each healthy round.
func TestServeAPIEvaluatesPushServers(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "agent", "--host", "10.0.0.7", "--mode", "push", "--stale-after", "2s")
		s := e.open()
		ctx := context.Background()
		sv, err := s.ServerByName(ctx, "agent")
		if err != nil {
			t.Fatal(err)
		}
		pushHeartbeat(t, s, sv.ID, time.Time{})
		// Its first state, ONLINE, is recorded now, so the test does not
		// depend on how fast serve-api starts.
		if flips := e.evaluate(); len(flips) != 1 || flips[0].To != store.StateOnline {
			t.Fatalf("first evaluation = %+v", flips)
		}
		var (
			mu    sync.Mutex
			pings int
		)
		uk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("status") == "up" {
				mu.Lock()
				pings++
				mu.Unlock()
			}
		}))
		defer uk.Close()
		_, stop := e.startServe("--evaluate-every", "1s", "--ping-url", uk.URL+"/api/push/tok123?status=up&msg=OK")
		var down *store.Flip
		for deadline := time.Now().Add(20 * time.Second); down == nil && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			flips, err := s.Flips(ctx, store.FlipQuery{ServerID: sv.ID, Since: time.Now().Add(-time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range flips {
				if f.From == store.StateOnline && f.To == store.StateOffline {
					down = &f
				}
			}
		}
		code, log := stop()
		if down == nil || down.Reason != "no heartbeat for 2s" || !down.Notify {
			t.Fatalf("serve-api recorded no down-flip for the silent agent (got %+v); log:\n%s", down, log)
		}
		if code != 0 || !strings.Contains(log, `msg="state change" server=agent from=ONLINE to=OFFLINE`) {
			t.Errorf("serve-api exit %d, log lacks the change:\n%s", code, log)
		}
		mu.Lock()
		defer mu.Unlock()
		if pings == 0 {
			t.Error("the Uptime Kuma push URL got no status=up ping from serve-api's rounds")
		}
	})
}
