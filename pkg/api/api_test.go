package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/postgres"
	"github.com/stacksense/heartbeat/pkg/store/sqlite"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func openSQLite(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t *testing.T) store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.URL(t), postgres.Options{})
	if s == nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eachStore runs fn in parallel against a fresh SQLite and a fresh
// Postgres store.
func eachStore(t *testing.T, fn func(t *testing.T, s store.Store)) {
	t.Helper()
	for name, open := range map[string]func(*testing.T) store.Store{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, open(t))
		})
	}
}

// serve starts the API over s on a loopback listener.
func serve(t *testing.T, s store.Store, opts api.Options) *httptest.Server {
	t.Helper()
	a := api.New(s, opts)
	srv := httptest.NewServer(a)
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return srv
}

type agent struct {
	id    int64
	name  string
	token string
}

func addAgent(t *testing.T, s store.Store, name string) agent {
	t.Helper()
	ctx := context.Background()
	sv, err := s.AddServer(ctx, store.ServerSpec{Name: name, Host: "agent.example.net"})
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
	return agent{sv.ID, sv.Name, token}
}

type answer struct {
	code   int
	header http.Header
	body   []byte
}

// call makes one request; headers are "Name: value" strings.
func call(t *testing.T, method, u, body string, headers ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

var noRedirect = &http.Client{
	Timeout:       20 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func bearer(token string) string { return "Authorization: Bearer " + token }

const jsonType = "Content-Type: application/json"

// errorMessage checks that an answer is exactly {"error": "..."} as JSON
// and returns the message.
func errorMessage(t *testing.T, a answer) string {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error answer Content-Type = %q", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("error answer is not JSON: %q", a.body)
	}
	msg, ok := m["error"].(string)
	if len(m) != 1 || !ok || msg == "" {
		t.Errorf("error answer = %s, want exactly {\"error\": \"...\"}", a.body)
	}
	return msg
}

func TestPushAcceptedSeedShape(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		srv := serve(t, s, api.Options{})
		ag := addAgent(t, s, "cpanel-test")
		before, _ := s.Now(context.Background())
		for i, path := range []string{"/api/heartbeat/%d/", "/api/heartbeat/%d"} {
			u := srv.URL + strings.Replace(path, "%d", strconv.FormatInt(ag.id, 10), 1)
			a := call(t, "POST", u, `{"agent_version": "1.0.`+strconv.Itoa(i)+`"}`, jsonType, bearer(ag.token))
			if a.code != http.StatusOK {
				t.Fatalf("POST %s = %d %s", u, a.code, a.body)
			}
			var m map[string]any
			if err := json.Unmarshal(a.body, &m); err != nil {
				t.Fatal(err)
			}
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			if len(m) != 5 || m["status"] != "ok" || m["server_id"] != float64(ag.id) || m["server_name"] != "cpanel-test" || m["heartbeat_received"] != true {
				t.Errorf("answer = %s, want the seed's five fields", a.body)
			}
			ts, _ := m["timestamp"].(string)
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil || !strings.HasSuffix(ts, "Z") {
				t.Fatalf("timestamp %q is not RFC 3339 UTC: %v", ts, err)
			}
			if d := at.Sub(before); d < -time.Second || d > 5*time.Second {
				t.Errorf("timestamp %v is not the store clock (%v)", at, before)
			}
			snap, _ := s.Status(context.Background())
			hb := snap.Servers[0]
			if hb.LastHeartbeat == nil || !hb.LastHeartbeat.Equal(at) || hb.Source != store.SourceAPI || hb.AgentVersion != "1.0."+strconv.Itoa(i) {
				t.Errorf("stored heartbeat = %+v, want %v from api", hb.Heartbeat, at)
			}
		}
		// No body at all is a plain heartbeat, whatever the Content-Type.
		if a := call(t, "POST", srv.URL+"/api/heartbeat/"+strconv.FormatInt(ag.id, 10)+"/", "", bearer(ag.token)); a.code != http.StatusOK {
			t.Errorf("POST without body = %d %s", a.code, a.body)
		}
		if a := call(t, "POST", srv.URL+"/api/heartbeat/"+strconv.FormatInt(ag.id, 10)+"/", "{}", "Content-Type: application/json; charset=utf-8", "Authorization: bearer "+ag.token); a.code != http.StatusOK {
			t.Errorf("POST {} with charset and lower-case scheme = %d %s", a.code, a.body)
		}
	})
}

func TestPushErrors(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		srv := serve(t, s, api.Options{})
		ag := addAgent(t, s, "web1")
		other := addAgent(t, s, "web2")
		noToken, _ := s.AddServer(context.Background(), store.ServerSpec{Name: "never-issued", Host: "h"})
		hb := func(id string) string { return srv.URL + "/api/heartbeat/" + id + "/" }
		own := hb(strconv.FormatInt(ag.id, 10))
		big := `{"agent_version": "1", "pad": "` + strings.Repeat("x", api.MaxBodyBytes) + `"}`
		cases := []struct {
			name, method, url, body string
			headers                 []string
			code                    int
		}{
			{"GET", "GET", own, "", []string{bearer(ag.token)}, 405},
			{"PUT", "PUT", own, "{}", []string{jsonType, bearer(ag.token)}, 405},
			{"DELETE", "DELETE", own, "", nil, 405},
			{"non-numeric id", "POST", hb("abc"), "", []string{bearer(ag.token)}, 400},
			{"negative id", "POST", hb("-1"), "", []string{bearer(ag.token)}, 400},
			{"zero id", "POST", hb("0"), "", []string{bearer(ag.token)}, 400},
			{"signed id", "POST", hb("+1"), "", []string{bearer(ag.token)}, 400},
			{"huge id", "POST", hb("99999999999999999999"), "", []string{bearer(ag.token)}, 400},
			{"malformed JSON", "POST", own, `{"agent_version": `, []string{jsonType, bearer(ag.token)}, 400},
			{"JSON array", "POST", own, `["1.0"]`, []string{jsonType, bearer(ag.token)}, 400},
			{"version not a string", "POST", own, `{"agent_version": 1}`, []string{jsonType, bearer(ag.token)}, 400},
			{"two objects", "POST", own, `{} {}`, []string{jsonType, bearer(ag.token)}, 400},
			{"version too long", "POST", own, `{"agent_version": "` + strings.Repeat("9", 65) + `"}`, []string{jsonType, bearer(ag.token)}, 400},
			{"version with control chars", "POST", own, `{"agent_version": "1\u0007"}`, []string{jsonType, bearer(ag.token)}, 400},
			{"no token", "POST", own, "", nil, 401},
			{"not bearer", "POST", own, "", []string{"Authorization: Basic " + ag.token}, 401},
			{"wrong token", "POST", own, "", []string{bearer("wrong")}, 401},
			{"another server's token", "POST", own, "", []string{bearer(other.token)}, 401},
			{"unknown server", "POST", hb("987654"), "", []string{bearer(ag.token)}, 401},
			{"server without token", "POST", hb(strconv.FormatInt(noToken.ID, 10)), "", []string{bearer("")}, 401},
			{"server without token, some token", "POST", hb(strconv.FormatInt(noToken.ID, 10)), "", []string{bearer("guess")}, 401},
			{"body too large", "POST", own, big, []string{jsonType, bearer(ag.token)}, 413},
			{"text body", "POST", own, "1.0.0", []string{"Content-Type: text/plain", bearer(ag.token)}, 415},
			{"form body", "POST", own, "agent_version=1", []string{"Content-Type: application/x-www-form-urlencoded", bearer(ag.token)}, 415},
			{"body without type", "POST", own, `{"agent_version": "1"}`, []string{bearer(ag.token)}, 415},
			{"unknown endpoint", "GET", srv.URL + "/api/nope", "", nil, 404},
		}
		unauthorized := map[string]bool{}
		for _, c := range cases {
			a := call(t, c.method, c.url, c.body, c.headers...)
			if a.code != c.code {
				t.Errorf("%s: %d %s, want %d", c.name, a.code, a.body, c.code)
				continue
			}
			msg := errorMessage(t, a)
			switch c.code {
			case 405:
				if a.header.Get("Allow") != "POST" {
					t.Errorf("%s: Allow = %q, want POST", c.name, a.header.Get("Allow"))
				}
			case 401:
				unauthorized[msg] = true
				if a.header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s: 401 without WWW-Authenticate", c.name)
				}
			}
		}
		// One answer for every kind of refusal: ids cannot be probed.
		if len(unauthorized) != 1 {
			t.Errorf("401 answers differ: %v", unauthorized)
		}
		snap, _ := s.Status(context.Background())
		for _, st := range snap.Servers {
			if st.LastHeartbeat != nil {
				t.Errorf("a refused request stored a heartbeat for %s", st.Name)
			}
		}
	})
}

func TestTokenRotationStopsOldToken(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		srv := serve(t, s, api.Options{})
		ag := addAgent(t, s, "agent")
		u := srv.URL + "/api/heartbeat/" + strconv.FormatInt(ag.id, 10) + "/"
		if a := call(t, "POST", u, "", bearer(ag.token)); a.code != 200 {
			t.Fatalf("first token: %d %s", a.code, a.body)
		}
		fresh, hash, _ := store.NewToken()
		if _, err := s.SetServerToken(context.Background(), ag.id, hash); err != nil {
			t.Fatal(err)
		}
		if a := call(t, "POST", u, "", bearer(ag.token)); a.code != 401 {
			t.Errorf("old token after rotation: %d %s, want 401", a.code, a.body)
		}
		if a := call(t, "POST", u, "", bearer(fresh)); a.code != 200 {
			t.Errorf("new token: %d %s, want 200", a.code, a.body)
		}
	})
}

func TestStoreUnavailable(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		srv := serve(t, s, api.Options{StoreTimeout: 2 * time.Second})
		ag := addAgent(t, s, "agent")
		if a := call(t, "GET", srv.URL+"/healthz", ""); a.code != 200 || !bytes.Contains(a.body, []byte(`"ok"`)) {
			t.Errorf("healthz with a store = %d %s", a.code, a.body)
		}
		s.Close()
		for _, c := range []struct{ method, path string }{
			{"POST", "/api/heartbeat/" + strconv.FormatInt(ag.id, 10) + "/"},
			{"GET", "/healthz"},
			{"GET", "/api/servers"},
			{"GET", "/"},
		} {
			a := call(t, c.method, srv.URL+c.path, "", bearer(ag.token))
			if a.code != http.StatusServiceUnavailable {
				t.Errorf("%s %s without a store = %d %s, want 503", c.method, c.path, a.code, a.body)
				continue
			}
			errorMessage(t, a)
		}
		if a := call(t, "GET", srv.URL+"/metrics", ""); a.code != 200 || !bytes.Contains(a.body, []byte("heartbeat_store_up 0")) {
			t.Errorf("metrics without a store = %d, want 200 with heartbeat_store_up 0", a.code)
		}
	})
}

func TestReadEndpointsMatchStatusJSON(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		srv := serve(t, s, api.Options{})
		up := addAgent(t, s, "up")
		addAgent(t, s, "down")
		warn := addAgent(t, s, "warn")
		for _, ag := range []agent{up, warn} {
			if a := call(t, "POST", srv.URL+"/api/heartbeat/"+strconv.FormatInt(ag.id, 10)+"/", "", bearer(ag.token)); a.code != 200 {
				t.Fatal(a.code)
			}
		}
		if _, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: warn.id, Kind: store.KindAlert, Severity: store.SeverityWarning, Message: "disk 91%"}); err != nil {
			t.Fatal(err)
		}
		a := call(t, "GET", srv.URL+"/api/servers", "")
		if a.code != 200 || a.header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET /api/servers = %d %s", a.code, a.body)
		}
		var got []report.ServerStatus
		if err := json.Unmarshal(a.body, &got); err != nil {
			t.Fatal(err)
		}
		snap, _ := s.Status(ctx)
		want := report.Build(snap, status.DefaultStaleAfter).Servers
		if len(got) != 3 || got[0].Name != "down" || got[0].Status != status.Offline || got[1].Status != status.Warning || got[2].Status != status.Online {
			t.Errorf("servers = %+v", got)
		}
		for i := range want {
			if got[i].ID != want[i].ID || got[i].Status != want[i].Status || got[i].Source != want[i].Source {
				t.Errorf("server %d: API %+v, status --json %+v", i, got[i], want[i])
			}
		}
		// The same field names as `status --json`.
		var raw []map[string]any
		json.Unmarshal(a.body, &raw)
		for _, k := range []string{"id", "name", "status", "last_heartbeat", "age_seconds", "active_alerts", "enabled", "source", "agent_version", "last_error_class"} {
			if _, ok := raw[0][k]; !ok {
				t.Errorf("GET /api/servers lacks %q", k)
			}
		}
		one := call(t, "GET", srv.URL+"/api/servers/"+strconv.FormatInt(warn.id, 10), "")
		var single report.ServerStatus
		if one.code != 200 || json.Unmarshal(one.body, &single) != nil || single.Name != "warn" || single.ActiveAlerts != 1 {
			t.Errorf("GET /api/servers/%d = %d %s", warn.id, one.code, one.body)
		}
		for path, code := range map[string]int{"/api/servers/424242": 404, "/api/servers/web1": 400} {
			a := call(t, "GET", srv.URL+path, "")
			if a.code != code {
				t.Errorf("GET %s = %d, want %d", path, a.code, code)
			}
			errorMessage(t, a)
		}
		if a := call(t, "POST", srv.URL+"/api/servers", "{}", jsonType); a.code != 405 || a.header.Get("Allow") != "GET, HEAD" {
			t.Errorf("POST /api/servers = %d Allow %q", a.code, a.header.Get("Allow"))
		}
	})
}

func TestReadTokenProtectsReadSide(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		const readToken = "read-secret-123"
		srv := serve(t, s, api.Options{ReadToken: readToken})
		ag := addAgent(t, s, "agent")
		for _, path := range []string{"/api/servers", "/api/servers/1", "/metrics"} {
			if a := call(t, "GET", srv.URL+path, ""); a.code != 401 {
				t.Errorf("GET %s without token = %d, want 401", path, a.code)
			}
			if a := call(t, "GET", srv.URL+path, "", bearer("nope")); a.code != 401 {
				t.Errorf("GET %s with a wrong token = %d, want 401", path, a.code)
			}
			if a := call(t, "GET", srv.URL+path, "", bearer(ag.token)); a.code != 401 {
				t.Errorf("GET %s with a push token = %d, want 401", path, a.code)
			}
		}
		if a := call(t, "GET", srv.URL+"/api/servers", "", bearer(readToken)); a.code != 200 {
			t.Errorf("GET /api/servers with the read token = %d", a.code)
		}
		if a := call(t, "GET", srv.URL+"/healthz", ""); a.code != 200 {
			t.Errorf("healthz must stay open for load balancers: %d", a.code)
		}
		// Pushes need the server's token, not the read token.
		push := srv.URL + "/api/heartbeat/" + strconv.FormatInt(ag.id, 10) + "/"
		if a := call(t, "POST", push, "", bearer(readToken)); a.code != 401 {
			t.Errorf("push with the read token = %d, want 401", a.code)
		}
		if a := call(t, "POST", push, "", bearer(ag.token)); a.code != 200 {
			t.Errorf("push with its own token = %d, want 200", a.code)
		}

		// The page sends people to the login form.
		a := call(t, "GET", srv.URL+"/", "")
		if a.code != http.StatusSeeOther || a.header.Get("Location") != "/login" {
			t.Fatalf("GET / without session = %d Location %q", a.code, a.header.Get("Location"))
		}
		form := call(t, "GET", srv.URL+"/login", "")
		if form.code != 200 || !bytes.Contains(form.body, []byte(`name="token"`)) {
			t.Fatalf("GET /login = %d", form.code)
		}
		bad := call(t, "POST", srv.URL+"/login", "token=wrong", "Content-Type: application/x-www-form-urlencoded")
		if bad.code != 401 || len(bad.header.Values("Set-Cookie")) != 0 {
			t.Errorf("login with a wrong token = %d, cookies %v", bad.code, bad.header.Values("Set-Cookie"))
		}
		good := call(t, "POST", srv.URL+"/login", "token="+url.QueryEscape(readToken), "Content-Type: application/x-www-form-urlencoded")
		cookie := good.header.Get("Set-Cookie")
		if good.code != http.StatusSeeOther || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") {
			t.Fatalf("login = %d Set-Cookie %q", good.code, cookie)
		}
		if strings.Contains(cookie, readToken) {
			t.Error("the session cookie carries the read token itself")
		}
		session := strings.SplitN(cookie, ";", 2)[0]
		page := call(t, "GET", srv.URL+"/", "", "Cookie: "+session)
		if page.code != 200 || !bytes.Contains(page.body, []byte("agent")) {
			t.Errorf("GET / with the session = %d", page.code)
		}
		if a := call(t, "GET", srv.URL+"/api/servers", "", "Cookie: "+session); a.code != 200 {
			t.Errorf("GET /api/servers with the session cookie = %d", a.code)
		}
		if a := call(t, "GET", srv.URL+"/", "", "Cookie: heartbeat_session=forged"); a.code != http.StatusSeeOther {
			t.Errorf("GET / with a forged cookie = %d", a.code)
		}
		out := call(t, "POST", srv.URL+"/logout", "", "Cookie: "+session)
		if out.code != http.StatusSeeOther || !strings.Contains(out.header.Get("Set-Cookie"), "Max-Age=0") {
			t.Errorf("logout = %d Set-Cookie %q", out.code, out.header.Get("Set-Cookie"))
		}
	})
}

func TestStatusPageEscapesAndColours(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	ctx := context.Background()
	srv := serve(t, s, api.Options{})
	evil := addAgent(t, s, `<script>alert("x")</script>`)
	call(t, "POST", srv.URL+"/api/heartbeat/"+strconv.FormatInt(evil.id, 10)+"/", `{"agent_version":"<b>1</b>"}`, jsonType, bearer(evil.token))
	addAgent(t, s, "down")
	s.RaiseAlert(ctx, store.AlertSpec{ServerID: evil.id, Kind: store.KindAlert, Severity: store.SeverityCritical, Message: `<img src=x onerror=alert(1)>`})
	a := call(t, "GET", srv.URL+"/", "")
	page := string(a.body)
	if a.code != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", a.code, a.header.Get("Content-Type"))
	}
	for _, bad := range []string{"<script>", "<img", "<b>1"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="15">`,
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`,
		`&lt;img src=x onerror=alert(1)&gt;`,
		`<tr class="offline" data-server="down" data-status="OFFLINE">`,
		`class="badge warning">WARNING<`,
		`id="count-offline">1<`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") || !strings.Contains(a.header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Error("the page must need no script, and forbid it")
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		srv := serve(t, s, api.Options{})
		ag := addAgent(t, s, "cpanel-test")
		addAgent(t, s, "kimai")
		call(t, "POST", srv.URL+"/api/heartbeat/"+strconv.FormatInt(ag.id, 10)+"/", "", bearer(ag.token))
		call(t, "POST", srv.URL+"/api/heartbeat/"+strconv.FormatInt(ag.id, 10)+"/", "", bearer("bad"))
		run, _ := s.StartRun(ctx, "probe1", 2)
		run.Probed, run.Succeeded, run.FailedByClass = 2, 1, map[string]int{"timeout": 1}
		s.FinishRun(ctx, run)
		a := call(t, "GET", srv.URL+"/metrics", "")
		if a.code != 200 {
			t.Fatalf("GET /metrics = %d", a.code)
		}
		m := string(a.body)
		id := strconv.FormatInt(ag.id, 10)
		for _, want := range []string{
			`heartbeat_store_up 1`,
			`heartbeat_server_status{id="` + id + `",server="cpanel-test",status="ONLINE"} 1`,
			`heartbeat_server_status{id="` + id + `",server="cpanel-test",status="OFFLINE"} 0`,
			`heartbeat_server_status{id="` + strconv.FormatInt(ag.id+1, 10) + `",server="kimai",status="OFFLINE"} 1`,
			`heartbeat_server_heartbeat_age_seconds{id="` + id + `",server="cpanel-test"}`,
			`heartbeat_servers{status="ONLINE"} 1`,
			`heartbeat_servers{status="OFFLINE"} 1`,
			`heartbeat_servers{status="WARNING"} 0`,
			`heartbeat_servers{status="MAINTENANCE"} 0`,
			`heartbeat_probe_run_duration_seconds `,
			`heartbeat_probe_run_results{outcome="ok"} 1`,
			`heartbeat_probe_run_results{outcome="timeout"} 1`,
			`heartbeat_probe_run_deadline_hit 0`,
			`heartbeat_http_requests_total{code="200",handler="heartbeat",method="post"} 1`,
			`heartbeat_http_requests_total{code="401",handler="heartbeat",method="post"} 1`,
			`heartbeat_http_request_duration_seconds_bucket{handler="heartbeat",le="0.025"}`,
			`heartbeat_pushes_total{outcome="ok"} 1`,
			`heartbeat_pushes_total{outcome="unauthorized"} 1`,
			`heartbeat_push_batch_size_count 2`,
			`go_goroutines `,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
		if regexp.MustCompile(`kimai"} \d`).MatchString(m) && strings.Contains(m, `heartbeat_server_heartbeat_age_seconds{id="`+strconv.FormatInt(ag.id+1, 10)) {
			t.Error("a server that never sent a heartbeat has an age")
		}
	})
}

// countingStore counts RecordPushes calls and the pushes in them.
type countingStore struct {
	store.Store
	calls, pushes atomic.Int64
}

func (c *countingStore) RecordPushes(ctx context.Context, p []store.Push) ([]store.PushOutcome, error) {
	c.calls.Add(1)
	c.pushes.Add(int64(len(p)))
	return c.Store.RecordPushes(ctx, p)
}

func TestConcurrentPushesAreBatched(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		counting := &countingStore{Store: s}
		srv := serve(t, counting, api.Options{BatchWait: 2 * time.Millisecond})
		const agents, each = 50, 4
		ags := make([]agent, agents)
		for i := range ags {
			ags[i] = addAgent(t, s, "agent"+strconv.Itoa(i))
		}
		var wg sync.WaitGroup
		failures := make(chan string, agents*each)
		for _, ag := range ags {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					req, _ := http.NewRequest("POST", srv.URL+"/api/heartbeat/"+strconv.FormatInt(ag.id, 10)+"/", strings.NewReader(`{"agent_version":"2"}`))
					req.Header.Set("Authorization", "Bearer "+ag.token)
					req.Header.Set("Content-Type", "application/json")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						failures <- err.Error()
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						failures <- resp.Status
					}
				}
			}()
		}
		wg.Wait()
		close(failures)
		for f := range failures {
			t.Errorf("concurrent push: %s", f)
		}
		calls, pushes := counting.calls.Load(), counting.pushes.Load()
		if pushes != agents*each {
			t.Errorf("store saw %d pushes, want %d", pushes, agents*each)
		}
		if calls >= pushes/2 {
			t.Errorf("%d pushes took %d store writes: not coalesced", pushes, calls)
		}
		t.Logf("%d pushes in %d store writes", pushes, calls)
	})
}

// gatedStore holds RecordPushes until released, to keep a push in flight.
type gatedStore struct {
	store.Store
	entered chan struct{}
	release chan struct{}
}

func (g *gatedStore) RecordPushes(ctx context.Context, p []store.Push) ([]store.PushOutcome, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.Store.RecordPushes(ctx, p)
}

func TestGracefulShutdownFinishesInFlightPush(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	ag := addAgent(t, s, "agent")
	gated := &gatedStore{Store: s, entered: make(chan struct{}, 1), release: make(chan struct{})}
	a := api.New(gated, api.Options{})
	defer a.Close()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- api.Serve(ctx, api.NewHTTPServer(a, nil), ln, "", "", 10*time.Second) }()

	got := make(chan answer, 1)
	go func() {
		got <- call(t, "POST", base+"/api/heartbeat/"+strconv.FormatInt(ag.id, 10)+"/", "", bearer(ag.token))
	}()
	<-gated.entered // the push is in flight, its batch not yet stored
	cancel()
	// The listener closes at once: new connections are refused...
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// ...but the push in flight is neither answered before it is stored
	// nor cut off.
	select {
	case a := <-got:
		t.Fatalf("answered %d before the heartbeat was stored", a.code)
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(gated.release)
	if a := <-got; a.code != 200 {
		t.Errorf("in-flight push = %d %s, want 200", a.code, a.body)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after graceful shutdown = %v, want nil", err)
	}
	snap, _ := s.Status(context.Background())
	if snap.Servers[0].LastHeartbeat == nil {
		t.Error("the in-flight heartbeat was not stored")
	}
}
