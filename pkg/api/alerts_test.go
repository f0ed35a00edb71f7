package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/store"
)

const alertsToken = "alerts-secret-0123456789"

// liveServer adds a server with a fresh heartbeat, so its status is ONLINE
// until an alert makes it WARNING.
func liveServer(t *testing.T, s store.Store, name, host string) store.Server {
	t.Helper()
	ctx := context.Background()
	sv, err := s.AddServer(ctx, store.ServerSpec{Name: name, Host: host})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, OK: true}}); err != nil {
		t.Fatal(err)
	}
	return sv
}

// statusOf reads one server's status over the API.
func statusOf(t *testing.T, base string, id int64) string {
	t.Helper()
	ans := call(t, "GET", fmt.Sprintf("%s/api/servers/%d", base, id), "")
	if ans.code != 200 {
		t.Fatalf("GET /api/servers/%d = %d %s", id, ans.code, ans.body)
	}
	var v struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(ans.body, &v); err != nil {
		t.Fatal(err)
	}
	return v.Status
}

func postAlert(t *testing.T, base, body string, headers ...string) answer {
	t.Helper()
	if headers == nil {
		headers = []string{"Authorization: Bearer " + alertsToken, "Content-Type: application/json"}
	}
	return call(t, "POST", base+"/api/alerts", body, headers...)
}

func decodeAlert(t *testing.T, a answer) api.AlertResponse {
	t.Helper()
	var r api.AlertResponse
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatalf("alert answer %s: %v", a.body, err)
	}
	return r
}

func wantError(t *testing.T, what string, a answer, code int, contains string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if a.code != code || json.Unmarshal(a.body, &e) != nil || !strings.Contains(e.Error, contains) ||
		!strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Errorf("%s = %d %s, want %d with a JSON error containing %q", what, a.code, a.body, code, contains)
	}
}

func TestAlertsRaiseResolve(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		srv := serve(t, s, api.Options{AlertsToken: alertsToken})
		web := liveServer(t, s, "web1", "web1.example.net")
		if st := statusOf(t, srv.URL, web.ID); st != "ONLINE" {
			t.Fatalf("before any alert web1 is %s", st)
		}

		ans := postAlert(t, srv.URL, `{"server": "web1", "kind": "anomaly", "severity": "critical", "message": "disk 95% full", "key": "disk"}`)
		if ans.code != http.StatusCreated {
			t.Fatalf("raise = %d %s, want 201", ans.code, ans.body)
		}
		raised := decodeAlert(t, ans)
		if raised.ID == 0 || raised.ServerID != web.ID || raised.ServerName != "web1" || raised.Kind != "anomaly" ||
			raised.Severity != "critical" || raised.Message != "disk 95% full" || raised.Key != "disk" ||
			raised.Source != store.AlertSourceAPI || !raised.Active || raised.Existing || raised.ResolvedAt != nil {
			t.Errorf("raised alert = %+v", raised)
		}
		if st := statusOf(t, srv.URL, web.ID); st != "WARNING" {
			t.Errorf("with an active alert web1 is %s, want WARNING", st)
		}

		// The same key again, by id this time: the same alert, 200.
		ans = postAlert(t, srv.URL, fmt.Sprintf(`{"server": %d, "message": "disk 96%% full", "key": "disk"}`, web.ID))
		again := decodeAlert(t, ans)
		if ans.code != http.StatusOK || again.ID != raised.ID || !again.Existing || again.Message != "disk 95% full" {
			t.Errorf("raise of an active key = %d %s, want 200 with alert %d", ans.code, ans.body, raised.ID)
		}
		if all, _ := s.Alerts(context.Background(), true); len(all) != 1 {
			t.Errorf("%d alerts stored, want 1", len(all))
		}

		ans = postAlert(t, srv.URL, fmt.Sprintf(`{"action": "resolve", "server": "%d", "key": "disk"}`, web.ID))
		resolved := decodeAlert(t, ans)
		if ans.code != http.StatusOK || resolved.ID != raised.ID || resolved.Active || resolved.ResolvedAt == nil {
			t.Errorf("resolve by key = %d %s, want 200 with the alert resolved", ans.code, ans.body)
		}
		if st := statusOf(t, srv.URL, web.ID); st != "ONLINE" {
			t.Errorf("after resolving web1 is %s, want ONLINE", st)
		}
		wantError(t, "resolving a resolved key", postAlert(t, srv.URL, `{"action": "resolve", "server": "web1", "key": "disk"}`), 409, "already resolved")

		// Without a key, with defaults (alert, warning); resolved by id.
		ans = postAlert(t, srv.URL, `{"server": "web1", "message": "backup failed"}`)
		plain := decodeAlert(t, ans)
		if ans.code != http.StatusCreated || plain.Kind != "alert" || plain.Severity != "warning" || plain.Key != "" {
			t.Errorf("raise with defaults = %d %s", ans.code, ans.body)
		}
		if st := statusOf(t, srv.URL, web.ID); st != "WARNING" {
			t.Errorf("web1 is %s, want WARNING", st)
		}
		ans = postAlert(t, srv.URL, fmt.Sprintf(`{"action": "resolve", "id": %d}`, plain.ID))
		if ans.code != http.StatusOK || decodeAlert(t, ans).Active {
			t.Errorf("resolve by id = %d %s", ans.code, ans.body)
		}
		if st := statusOf(t, srv.URL, web.ID); st != "ONLINE" {
			t.Errorf("web1 is %s, want ONLINE", st)
		}
		wantError(t, "resolving a resolved id", postAlert(t, srv.URL, fmt.Sprintf(`{"action": "resolve", "id": %d}`, plain.ID)), 409, "already resolved")
		wantError(t, "resolving an unknown id", postAlert(t, srv.URL, `{"action": "resolve", "id": 99999}`), 404, "no such alert")
		wantError(t, "resolving an unknown key", postAlert(t, srv.URL, `{"action": "resolve", "server": "web1", "key": "nope"}`), 404, "no such alert")
		wantError(t, "raising on an unknown server", postAlert(t, srv.URL, `{"server": "ghost", "message": "m"}`), 404, "no such server")
		wantError(t, "raising on an unknown id", postAlert(t, srv.URL, `{"server": 424242, "message": "m"}`), 404, "no such server")
	})
}

func TestAlertsRejectsBadRequests(t *testing.T) {
	s := openSQLite(t)
	srv := serve(t, s, api.Options{AlertsToken: alertsToken, ReadToken: "read-token"})
	ag := addAgent(t, s, "web1")
	auth, js := "Authorization: Bearer "+alertsToken, "Content-Type: application/json"
	for _, tt := range []struct {
		name, body string
		code       int
		contains   string
	}{
		{"malformed JSON", `{"server": "web1",`, 400, "malformed JSON"},
		{"not an object", `["web1"]`, 400, "JSON object"},
		{"unknown field", `{"server": "web1", "message": "m", "severty": "critical"}`, 400, `unknown field "severty"`},
		{"no server", `{"message": "m"}`, 400, "server is required"},
		{"bad server", `{"server": -3, "message": "m"}`, 400, "server must be"},
		{"no message", `{"server": "web1"}`, 400, "message is empty"},
		{"bad severity", `{"server": "web1", "message": "m", "severity": "panic"}`, 400, "severity"},
		{"bad kind", `{"server": "web1", "message": "m", "kind": "bug"}`, 400, "kind"},
		{"two-line message", `{"server": "web1", "message": "a\nb"}`, 400, "control"},
		{"bad key", `{"server": "web1", "message": "m", "key": " padded "}`, 400, "key"},
		{"bad action", `{"action": "delete", "id": 1}`, 400, "action must be"},
		{"resolve with nothing", `{"action": "resolve"}`, 400, "resolve needs id"},
		{"resolve with both", `{"action": "resolve", "id": 1, "server": "web1", "key": "k"}`, 400, "not both"},
		{"resolve with a message", `{"action": "resolve", "id": 1, "message": "m"}`, 400, "for raise"},
		{"raise with an id", `{"id": 1, "server": "web1", "message": "m"}`, 400, "id is for resolve"},
		{"id as string", `{"action": "resolve", "id": "1"}`, 400, "id must be"},
	} {
		wantError(t, tt.name, postAlert(t, srv.URL, tt.body), tt.code, tt.contains)
	}
	wantError(t, "text/plain", postAlert(t, srv.URL, `{"server": "web1", "message": "m"}`, auth, "Content-Type: text/plain"), 415, "must be JSON")
	big := `{"server": "web1", "message": "` + strings.Repeat("x", api.MaxAlertBodyBytes) + `"}`
	wantError(t, "oversized body", postAlert(t, srv.URL, big), 413, "larger than")
	body := `{"server": "web1", "message": "m"}`
	wantError(t, "no token", postAlert(t, srv.URL, body, js), 401, "alerts token")
	wantError(t, "wrong token", postAlert(t, srv.URL, body, js, "Authorization: Bearer "+alertsToken+"x"), 401, "alerts token")
	wantError(t, "the server's push token", postAlert(t, srv.URL, body, js, "Authorization: Bearer "+ag.token), 401, "alerts token")
	wantError(t, "the read token", postAlert(t, srv.URL, body, js, "Authorization: Bearer read-token"), 401, "alerts token")
	wantError(t, "GET", call(t, "GET", srv.URL+"/api/alerts", "", auth), 405, "POST")
	if alerts, _ := s.Alerts(context.Background(), true); len(alerts) != 0 {
		t.Errorf("rejected requests stored %d alerts", len(alerts))
	}

	// Without an alerts token both endpoints are off, and say how to
	// turn them on.
	off := serve(t, s, api.Options{})
	for _, path := range []string{"/api/alerts", "/api/alertmanager"} {
		wantError(t, "disabled "+path, call(t, "POST", off.URL+path, body, auth, js), 403, "HEARTBEAT_ALERTS_TOKEN")
	}
}

type amAnswer struct {
	Alerts              int      `json:"alerts"`
	Raised              int      `json:"raised"`
	AlreadyActive       int      `json:"already_active"`
	Resolved            int      `json:"resolved"`
	NotActive           int      `json:"not_active"`
	Ignored             int      `json:"ignored"`
	UnknownServerAlerts int      `json:"unknown_server_alerts"`
	UnknownServers      []string `json:"unknown_servers"`
}

func postAlertmanager(t *testing.T, base, file string, headers ...string) (answer, amAnswer) {
	t.Helper()
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if headers == nil {
		headers = []string{"Authorization: Bearer " + alertsToken, "Content-Type: application/json"}
	}
	ans := call(t, "POST", base+"/api/alertmanager", string(body), headers...)
	var v amAnswer
	if ans.code == 200 {
		if err := json.Unmarshal(ans.body, &v); err != nil {
			t.Fatalf("receiver answer %s: %v", ans.body, err)
		}
	}
	return ans, v
}

// The payloads in testdata follow Alertmanager's documented webhook format
// (version 4); their labels name our servers in each way the receiver
// matches: the server label, an instance host in another case, an IPv6
// instance, and one instance that is no server of ours.
func TestAlertmanagerReceiver(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		srv := serve(t, s, api.Options{AlertsToken: alertsToken})
		web := liveServer(t, s, "web1", "web1.example.net")
		db := liveServer(t, s, "db1", "db1.example.net")
		v6 := liveServer(t, s, "edge", "2001:db8:0::7")
		quiet := liveServer(t, s, "quiet", "quiet.example.net")

		ans, got := postAlertmanager(t, srv.URL, "testdata/alertmanager_firing.json", "Content-Type: application/json")
		wantError(t, "payload without a token", ans, 401, "alerts token")
		ans, got = postAlertmanager(t, srv.URL, "testdata/alertmanager_firing.json")
		if ans.code != 200 {
			t.Fatalf("firing payload = %d %s", ans.code, ans.body)
		}
		want := amAnswer{Alerts: 5, Raised: 3, NotActive: 1, UnknownServerAlerts: 1, UnknownServers: []string{"instance=ghost.example.net:9100"}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("firing payload answer = %+v, want %+v", got, want)
		}
		for _, sv := range []store.Server{web, db, v6} {
			if st := statusOf(t, srv.URL, sv.ID); st != "WARNING" {
				t.Errorf("%s is %s after the firing payload, want WARNING", sv.Name, st)
			}
		}
		if st := statusOf(t, srv.URL, quiet.ID); st != "ONLINE" {
			t.Errorf("quiet is %s, want ONLINE", st)
		}
		active, err := s.Alerts(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		byServer := map[string]store.Alert{}
		for _, a := range active {
			byServer[a.ServerName] = a
		}
		wantAlerts := map[string][2]string{
			"web1": {"critical", "DiskFull: Disk / is 97% full"},
			"db1":  {"warning", "HighLoad: Load average is 42 for the last 10 minutes."},
			"edge": {"info", "ClockSkew"},
		}
		for name, w := range wantAlerts {
			a := byServer[name]
			if a.Severity != w[0] || a.Message != w[1] || a.Source != store.AlertSourceAlertmanager || !strings.HasPrefix(a.ExternalKey, "alertmanager:a1b2c3d4e5f6000") {
				t.Errorf("%s alert = %+v, want severity %s, message %q", name, a, w[0], w[1])
			}
		}

		// Alertmanager repeats a group every repeat_interval (and each HA
		// replica sends it): nothing is raised twice.
		_, got = postAlertmanager(t, srv.URL, "testdata/alertmanager_firing.json")
		if got.Raised != 0 || got.AlreadyActive != 3 || got.UnknownServerAlerts != 1 {
			t.Errorf("repeated payload answer = %+v, want 0 raised, 3 already active", got)
		}
		if n := len(mustAlerts(t, s)); n != 3 {
			t.Errorf("%d active alerts after the repeat, want 3", n)
		}

		ans, got = postAlertmanager(t, srv.URL, "testdata/alertmanager_resolved.json")
		if ans.code != 200 || got.Resolved != 2 || got.Raised != 0 || got.NotActive != 0 || got.UnknownServerAlerts != 0 || len(got.UnknownServers) != 0 {
			t.Errorf("resolved payload = %d %s, want 2 resolved", ans.code, ans.body)
		}
		for _, w := range []struct {
			sv   store.Server
			want string
		}{{web, "ONLINE"}, {db, "ONLINE"}, {v6, "WARNING"}} {
			if st := statusOf(t, srv.URL, w.sv.ID); st != w.want {
				t.Errorf("%s is %s after the resolved payload, want %s", w.sv.Name, st, w.want)
			}
		}

		metrics := call(t, "GET", srv.URL+"/metrics", "")
		for series, want := range map[string]int{"unknown_server": 2, "raised": 3, "already_active": 3, "resolved": 2, "not_active": 2} {
			re := regexp.MustCompile(`(?m)^heartbeat_external_alerts_total\{outcome="` + series + `",source="alertmanager"\} (\d+)$`)
			m := re.FindSubmatch(metrics.body)
			if m == nil {
				t.Errorf("/metrics has no heartbeat_external_alerts_total for %s", series)
				continue
			}
			if n, _ := strconv.Atoi(string(m[1])); n != want {
				t.Errorf("heartbeat_external_alerts_total{outcome=%q} = %d, want %d", series, n, want)
			}
		}
	})
}

func mustAlerts(t *testing.T, s store.Store) []store.Alert {
	t.Helper()
	a, err := s.Alerts(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAlertmanagerRejectsBadPayloads(t *testing.T) {
	s := openSQLite(t)
	srv := serve(t, s, api.Options{AlertsToken: alertsToken})
	auth, js := "Authorization: Bearer "+alertsToken, "Content-Type: application/json"
	post := func(body string, headers ...string) answer {
		return call(t, "POST", srv.URL+"/api/alertmanager", body, headers...)
	}
	wantError(t, "version 3", post(`{"version": "3", "alerts": []}`, auth, js), 400, `version must be "4"`)
	wantError(t, "malformed", post(`{"version": "4", "alerts": [`, auth, js), 400, "malformed JSON")
	wantError(t, "alerts not a list", post(`{"version": "4", "alerts": {}}`, auth, js), 400, "alerts must be")
	wantError(t, "form body", post(`{"version": "4"}`, auth, "Content-Type: application/x-www-form-urlencoded"), 415, "must be JSON")
	wantError(t, "oversized", post(`{"version": "4", "receiver": "`+strings.Repeat("x", api.MaxAlertmanagerBodyBytes)+`"}`, auth, js), 413, "larger than")
	wantError(t, "GET", call(t, "GET", srv.URL+"/api/alertmanager", "", auth), 405, "POST")

	// Unknown servers are bounded in the answer, counted in full.
	var alerts []string
	for i := range api.MaxUnknownServers + 10 {
		alerts = append(alerts, fmt.Sprintf(`{"status": "firing", "labels": {"alertname": "X", "instance": "host%d:9100"}, "fingerprint": "f%d"}`, i, i))
	}
	alerts = append(alerts, `{"status": "pending", "labels": {"server": "web1"}}`)
	ans := post(`{"version": "4", "status": "firing", "alerts": [`+strings.Join(alerts, ",")+`]}`, auth, js)
	var got amAnswer
	if ans.code != 200 || json.Unmarshal(ans.body, &got) != nil || got.UnknownServerAlerts != api.MaxUnknownServers+10 ||
		len(got.UnknownServers) != api.MaxUnknownServers || got.Ignored != 1 {
		t.Errorf("payload of unknown servers = %d %s", ans.code, ans.body)
	}
}

func TestInstanceHost(t *testing.T) {
	for in, want := range map[string]string{
		"db1:9100":                   "db1",
		"db1.example.net":            "db1.example.net",
		"10.0.0.5:9100":              "10.0.0.5",
		"[2001:db8::1]:9100":         "2001:db8::1",
		"[2001:db8::1]":              "2001:db8::1",
		"2001:db8::1":                "2001:db8::1",
		"https://web1.example.net/x": "web1.example.net",
		"http://[::1]:8080/health":   "::1",
		" web1:22 ":                  "web1",
	} {
		if got := api.InstanceHost(in); got != want {
			t.Errorf("InstanceHost(%q) = %q, want %q", in, got, want)
		}
	}
}
