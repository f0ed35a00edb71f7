package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/cli"
	"github.com/stacksense/heartbeat/pkg/config"
	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/backend"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env runs the whole program in-process against one store.
type env struct {
	t        *testing.T
	vars     map[string]string
	home     string
	terminal bool
	stdin    string
}

type result struct {
	out, err string
	code     int
}

func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runWithin(60*time.Second, args...)
}

// runWithin runs the program with a context of its own length, so a
// command that ignores its deadline shows up as the wrong answer rather
// than a hung test.
func (e *env) runWithin(limit time.Duration, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	return e.runCtx(ctx, args...)
}

// runInBackground starts the program within limit and returns where its
// result will arrive, for tests that act on the store while it runs.
func (e *env) runInBackground(limit time.Duration, args ...string) <-chan result {
	done := make(chan result, 1)
	go func() { done <- e.runWithin(limit, args...) }()
	return done
}

// runCtx runs the program under ctx, reading what it printed.
func (e *env) runCtx(ctx context.Context, args ...string) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	app := &cli.App{
		In: strings.NewReader(e.stdin), Out: &out, Err: &errb,
		Getenv: func(k string) string { return e.vars[k] },
		Home:   e.home, OutIsTerminal: e.terminal, Version: "test",
	}
	code := cli.Main(ctx, app, args)
	return result{out.String(), errb.String(), code}
}

// mustRun runs a command that must succeed and returns its stdout.
func (e *env) mustRun(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("heartbeat %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// expectFail runs a command that must fail with code and a one-line
// message containing want, and print nothing on stdout.
func (e *env) expectFail(code int, want string, args ...string) {
	e.t.Helper()
	r := e.run(args...)
	if r.code != code {
		e.t.Errorf("heartbeat %s: exit %d, want %d (stderr %q)", strings.Join(args, " "), r.code, code, r.err)
	}
	if !strings.Contains(r.err, want) {
		e.t.Errorf("heartbeat %s: stderr %q lacks %q", strings.Join(args, " "), r.err, want)
	}
	if n := strings.Count(strings.TrimSpace(r.err), "\n"); n != 0 {
		e.t.Errorf("heartbeat %s: error spans %d lines, want one: %q", strings.Join(args, " "), n+1, r.err)
	}
}

// pushHeartbeat records an API heartbeat for a server as serve-api would,
// at the store's clock (zero at) or at the time given.
func pushHeartbeat(t *testing.T, s store.Store, id int64, at time.Time) {
	t.Helper()
	token, hash, err := store.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.SetServerToken(ctx, id, hash); err != nil {
		t.Fatal(err)
	}
	out, err := s.RecordPushes(ctx, []store.Push{{ServerID: id, TokenHash: store.HashToken(token), AgentVersion: "1.0.0", At: at}})
	if err != nil || !out[0].OK {
		t.Fatalf("push for server %d = %+v, %v", id, out, err)
	}
}

// open opens the env's store directly, to plant heartbeats the way a probe
// or an agent push would.
func (e *env) open() store.Store {
	e.t.Helper()
	cfg, err := config.ResolveStore("", func(k string) string { return e.vars[k] }, e.home)
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := backend.Open(context.Background(), backend.Target{Engine: backend.Engine(cfg.Engine), URL: cfg.URL, Path: cfg.Path, ConnectTimeout: 5 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

// eachStore runs fn against a fresh SQLite file and a fresh Postgres
// database.
func eachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		e := &env{t: t, home: t.TempDir(), vars: map[string]string{}}
		e.vars["HEARTBEAT_DB"] = filepath.Join(t.TempDir(), "hb.db")
		fn(t, e)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		e := &env{t: t, home: t.TempDir(), vars: map[string]string{"DATABASE_URL": pgtest.URL(t)}}
		e.mustRun("migrate")
		fn(t, e)
	})
}

// An IPv6 address is bracketed before its port, as ssh writes it.
func TestServersAddIPv6(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		if out := e.mustRun("servers", "add", "v6", "--host", "fd00::5", "--port", "2222"); !strings.Contains(out, "at [fd00::5]:2222") {
			t.Errorf("add of an IPv6 server printed %q", out)
		}
	})
}

func TestServersLifecycle(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		out := e.mustRun("servers", "add", "web1", "--host", "10.0.0.5")
		if !strings.Contains(out, "added server web1 (id ") {
			t.Errorf("add printed %q", out)
		}
		e.mustRun("servers", "add", "db1", "--host", "db1.internal", "--port", "2222", "--user", "monitor", "--key", "/etc/hb/key")

		var list []map[string]any
		if err := json.Unmarshal([]byte(e.mustRun("servers", "list", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0]["name"] != "db1" || list[0]["port"] != float64(2222) || list[0]["user"] != "monitor" ||
			list[0]["key"] != "/etc/hb/key" || list[0]["enabled"] != true || list[1]["name"] != "web1" || list[1]["port"] != float64(22) {
			t.Errorf("servers list --json = %v", list)
		}
		for _, k := range []string{"id", "name", "host", "port", "user", "key", "enabled", "created_at"} {
			if _, ok := list[0][k]; !ok {
				t.Errorf("servers list --json lacks %q", k)
			}
		}
		table := e.mustRun("servers", "list")
		if !regexp.MustCompile(`(?m)^\d+\s+db1\s+db1\.internal\s+2222\s+monitor\s+/etc/hb/key\s+ssh\s+yes$`).MatchString(table) {
			t.Errorf("servers list table:\n%s", table)
		}
		show := e.mustRun("servers", "show", "web1")
		if !strings.Contains(show, "host:") || !strings.Contains(show, "10.0.0.5") || !strings.Contains(show, "not pinned yet") {
			t.Errorf("servers show:\n%s", show)
		}
		id := strconv.Itoa(int(list[1]["id"].(float64)))
		if got := e.mustRun("servers", "show", id); got != show {
			t.Errorf("show by id differs from show by name:\n%s\n%s", got, show)
		}

		e.mustRun("servers", "disable", "web1")
		if got := e.mustRun("servers", "list"); !regexp.MustCompile(`(?m)web1\s.*\sno$`).MatchString(got) {
			t.Errorf("after disable:\n%s", got)
		}
		e.mustRun("servers", "enable", id)

		e.expectFail(64, "run again with --yes", "servers", "remove", "web1")
		if !strings.Contains(e.mustRun("servers", "list"), "web1") {
			t.Error("remove without --yes removed the server")
		}
		e.mustRun("servers", "remove", "web1", "--yes")
		if strings.Contains(e.mustRun("servers", "list"), "web1") {
			t.Error("server still listed after remove --yes")
		}
	})
}

func TestServersBadInput(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "web1", "--host", "10.0.0.5")
		e.expectFail(1, `a server named "web1" already exists`, "servers", "add", "web1", "--host", "10.0.0.6")
		e.expectFail(64, "port 70000 is out of range", "servers", "add", "x", "--host", "h", "--port", "70000")
		e.expectFail(64, "port 0 is out of range", "servers", "add", "x", "--host", "h", "--port", "0")
		e.expectFail(64, `invalid argument "ssh" for "--port"`, "servers", "add", "x", "--host", "h", "--port", "ssh")
		e.expectFail(64, "host is empty", "servers", "add", "x")
		e.expectFail(64, "would be confused with an id", "servers", "add", "123", "--host", "h")
		e.expectFail(64, "takes 1 argument(s): NAME", "servers", "add", "--host", "h")
		// Names, hosts and users are bounded and printable (exit 64, the
		// field named), so nothing raw reaches a terminal or a log.
		e.expectFail(64, `server name "evil\x1b[2J" contains a control`, "servers", "add", "evil\x1b[2J", "--host", "h")
		e.expectFail(64, `server name "two\nlines" contains a control`, "servers", "add", "two\nlines", "--host", "h")
		e.expectFail(64, "server name is 129 characters long", "servers", "add", strings.Repeat("n", 129), "--host", "h")
		e.expectFail(64, "host is 10485760 characters long", "servers", "add", "x", "--host", strings.Repeat("h", 10<<20))
		e.expectFail(64, `host "a_b;rm" is not a hostname`, "servers", "add", "x", "--host", "a_b;rm")
		e.expectFail(64, `user "a b" contains a space`, "servers", "add", "x", "--host", "h", "--user", "a b")
		e.expectFail(64, `mode "pigeon" is not ssh or push`, "servers", "add", "x", "--host", "h", "--mode", "pigeon")
		e.expectFail(1, `no server named "nope"`, "servers", "show", "nope")
		e.expectFail(1, "no server with id 999", "servers", "remove", "999", "--yes")
		e.expectFail(1, `no server named "ghost"`, "servers", "disable", "ghost")
		e.expectFail(64, `unknown command "frobnicate"`, "frobnicate")
		e.expectFail(64, "unknown flag: --nope", "servers", "list", "--nope")
		// Nothing that failed changed what was stored.
		var list []map[string]any
		json.Unmarshal([]byte(e.mustRun("servers", "list", "--json")), &list)
		if len(list) != 1 || list[0]["host"] != "10.0.0.5" {
			t.Errorf("after bad input the store holds %v", list)
		}
	})
}

func TestServersImport(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "keep", "--host", "keep.example.net")
		e.mustRun("servers", "add", "move", "--host", "old.example.net")
		file := filepath.Join(t.TempDir(), "fleet.csv")
		os.WriteFile(file, []byte("name,host,port,user,key\nkeep,keep.example.net,,,\nmove,new.example.net,2200,ops,\nnew1,10.1.0.1,,,\n"), 0o600)
		if out := e.mustRun("servers", "import", file); out != "1 added, 1 updated, 1 unchanged\n" {
			t.Errorf("import printed %q", out)
		}
		e.stdin = "name,host,port,user,key\nnew2,10.1.0.2,,,\n"
		if out := e.mustRun("servers", "import", "-"); out != "1 added, 0 updated, 0 unchanged\n" {
			t.Errorf("import from stdin printed %q", out)
		}
		e.stdin = ""

		bad := filepath.Join(t.TempDir(), "bad.csv")
		os.WriteFile(bad, []byte("name,host,port,user,key\nnew3,10.1.0.3,,,\nmove,changed,,,\n,nohost,,,\nx,h,99999,,\nnew3,dup,,,\n"), 0o600)
		r := e.run("servers", "import", bad)
		if r.code != 1 {
			t.Errorf("bad import exit %d, want 1", r.code)
		}
		for _, want := range []string{"nothing written", "line 4: server name is empty", `line 5: port "99999"`, `line 6: server name "new3" already appears on line 2`} {
			if !strings.Contains(r.err, want) {
				t.Errorf("bad import stderr lacks %q:\n%s", want, r.err)
			}
		}
		var list []map[string]any
		json.Unmarshal([]byte(e.mustRun("servers", "list", "--json")), &list)
		if len(list) != 4 {
			t.Errorf("after a bad import the store holds %d servers, want 4", len(list))
		}
		for _, s := range list {
			if s["name"] == "move" && s["host"] != "new.example.net" {
				t.Errorf("bad import changed server move: %v", s)
			}
		}
		e.expectFail(1, "no such file", "servers", "import", filepath.Join(t.TempDir(), "missing.csv"))
	})
}

// TestServersImportStrayQuote: a stray quote in an unquoted field made the
// importer panic (a Go stack trace, exit 2). It is one line naming the
// line, exit 1, and the store is left as it was.
func TestServersImportStrayQuote(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "keep", "--host", "keep.example.net")
		bad := filepath.Join(t.TempDir(), "quote.csv")
		os.WriteFile(bad, []byte("name,host,port,user,key\nnew1,10.1.0.1,,,\nc-bq\"x,10.1.0.2,,,\nkeep,moved.example.net,,,\n"), 0o600)
		e.expectFail(1, `line 3: column 5: bare " in non-quoted-field; nothing written`, "servers", "import", bad)
		var list []map[string]any
		json.Unmarshal([]byte(e.mustRun("servers", "list", "--json")), &list)
		if len(list) != 1 || list[0]["host"] != "keep.example.net" {
			t.Errorf("after a failed import the store holds %v, want only keep at keep.example.net", list)
		}
	})
}

func TestAlerts(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "web1", "--host", "h")
		id := strings.TrimSpace(e.mustRun("alert", "raise", "web1", "disk 95% full", "--severity", "critical"))
		if _, err := strconv.Atoi(id); err != nil {
			t.Fatalf("alert raise printed %q, want the id alone", id)
		}
		e.mustRun("alert", "raise", "web1", "odd cpu", "--kind", "anomaly", "--severity", "info")
		e.expectFail(64, `alert kind "bogus"`, "alert", "raise", "web1", "m", "--kind", "bogus")
		e.expectFail(64, `alert severity "loud"`, "alert", "raise", "web1", "m", "--severity", "loud")
		e.expectFail(1, `no server named "ghost"`, "alert", "raise", "ghost", "m")

		var active []map[string]any
		json.Unmarshal([]byte(e.mustRun("alert", "list", "--json")), &active)
		if len(active) != 2 || active[0]["kind"] != "anomaly" || active[1]["severity"] != "critical" || active[1]["resolved_at"] != nil ||
			active[0]["source"] != "cli" || active[0]["key"] != "" {
			t.Errorf("alert list --json = %v", active)
		}
		if out := e.mustRun("alert", "resolve", id); !strings.Contains(out, "resolved alert "+id+" on web1: disk 95% full") {
			t.Errorf("resolve printed %q", out)
		}
		e.expectFail(1, "alert "+id+" was already resolved", "alert", "resolve", id)
		e.expectFail(1, "no alert with id 4242", "alert", "resolve", "4242")
		e.expectFail(64, "not a positive number", "alert", "resolve", "abc")

		if out := e.mustRun("alert", "list"); strings.Contains(out, "disk 95%") || !strings.Contains(out, "odd cpu") {
			t.Errorf("alert list shows resolved alerts or hides active ones:\n%s", out)
		}
		if out := e.mustRun("alert", "list", "--all"); !strings.Contains(out, "disk 95%") {
			t.Errorf("alert list --all hides resolved alerts:\n%s", out)
		}
	})
}

// statusJSON decodes `status --json` into the documented schema.
type statusJSON struct {
	ID                  int64      `json:"id"`
	Name                string     `json:"name"`
	Status              string     `json:"status"`
	LastHeartbeat       *time.Time `json:"last_heartbeat"`
	AgeSeconds          *int64     `json:"age_seconds"`
	ActiveAlerts        int        `json:"active_alerts"`
	Enabled             bool       `json:"enabled"`
	Host                string     `json:"host"`
	Port                int        `json:"port"`
	Source              string     `json:"source"`
	AgentVersion        string     `json:"agent_version"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
}

// plantFourStates registers alive (fresh heartbeat: ONLINE), alerting
// (fresh heartbeat and an active alert: WARNING), silent (never heard
// from: OFFLINE) and parked (DISABLED), and returns the open store.
func (e *env) plantFourStates() store.Store {
	e.t.Helper()
	for _, n := range []string{"alive", "alerting", "silent", "parked"} {
		e.mustRun("servers", "add", n, "--host", n+".example.net")
	}
	s := e.open()
	for _, n := range []string{"alive", "alerting"} {
		sv, err := s.ServerByName(context.Background(), n)
		if err != nil {
			e.t.Fatal(err)
		}
		pushHeartbeat(e.t, s, sv.ID, time.Time{})
	}
	e.mustRun("alert", "raise", "alerting", "load high")
	e.mustRun("servers", "disable", "parked")
	return s
}

func TestStatusRulesAndExitCodes(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		if out := e.mustRun("status"); !strings.Contains(out, "no servers registered") {
			t.Errorf("empty status printed %q", out)
		}
		s := e.plantFourStates()

		r := e.run("status", "--json")
		if r.code != 2 {
			t.Errorf("status with an OFFLINE server exited %d, want 2", r.code)
		}
		var rows []statusJSON
		if err := json.Unmarshal([]byte(r.out), &rows); err != nil {
			t.Fatalf("status --json: %v\n%s", err, r.out)
		}
		got := map[string]statusJSON{}
		var order []string
		for _, row := range rows {
			got[row.Name] = row
			order = append(order, row.Name)
		}
		if strings.Join(order, ",") != "silent,alerting,alive,parked" {
			t.Errorf("status order = %v, want worst first then name", order)
		}
		want := map[string]string{"alive": "ONLINE", "alerting": "WARNING", "silent": "OFFLINE", "parked": "DISABLED"}
		for name, st := range want {
			if got[name].Status != st {
				t.Errorf("%s is %s, want %s", name, got[name].Status, st)
			}
		}
		if a := got["alive"]; a.LastHeartbeat == nil || a.AgeSeconds == nil || *a.AgeSeconds > 5 || a.Source != "api" || a.AgentVersion != "1.0.0" {
			t.Errorf("alive row = %+v", a)
		}
		if sl := got["silent"]; sl.LastHeartbeat != nil || sl.AgeSeconds != nil || !strings.Contains(r.out, `"last_heartbeat": null`) {
			t.Errorf("silent row = %+v, want null heartbeat and age", sl)
		}
		if got["alerting"].ActiveAlerts != 1 {
			t.Errorf("alerting row = %+v", got["alerting"])
		}

		// Each single server is a plugin check with its own exit code.
		for name, code := range map[string]int{"alive": 0, "alerting": 1, "silent": 2, "parked": 0} {
			if r := e.run("status", "--server", name); r.code != code {
				t.Errorf("status --server %s exited %d, want %d", name, r.code, code)
			}
		}
		e.expectFail(3, `no server named "ghost"`, "status", "--server", "ghost")

		// A heartbeat older than the window is OFFLINE.
		alive, err := s.ServerByName(context.Background(), "alive")
		if err != nil {
			t.Fatal(err)
		}
		now, err := s.Now(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pushHeartbeat(t, s, alive.ID, now.Add(-time.Minute))
		if r := e.run("status", "--server", "alive", "--stale-after", "30s"); r.code != 2 || !strings.Contains(r.out, "OFFLINE") {
			t.Errorf("stale heartbeat: exit %d, output %q; want OFFLINE and 2", r.code, r.out)
		}
		pushHeartbeat(t, s, alive.ID, time.Time{}) // fresh again for what follows
		e.expectFail(3, "--stale-after must be positive", "status", "--stale-after", "0s")

		verbose := e.run("status", "--verbose").out
		for _, col := range []string{"HOST:PORT", "SOURCE", "LAST PROBE", "LATENCY", "FAILURES", "LAST ERROR", "alive.example.net:22"} {
			if !strings.Contains(verbose, col) {
				t.Errorf("status --verbose lacks %q:\n%s", col, verbose)
			}
		}
		if !strings.Contains(verbose, "1 online, 1 warning, 1 offline, 1 disabled") {
			t.Errorf("status --verbose lacks the summary line:\n%s", verbose)
		}
		plain := e.run("status").out
		if strings.Contains(plain, "HOST:PORT") || strings.Contains(plain, "\x1b[") {
			t.Errorf("plain status shows verbose columns or colour:\n%s", plain)
		}
		if !regexp.MustCompile(`(?m)^\d+\s+alive\s+ONLINE\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+\d+s\s+0$`).MatchString(plain) {
			t.Errorf("status table row for alive:\n%s", plain)
		}
	})
}

func TestStatusColourOnlyOnTerminal(t *testing.T) {
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"HEARTBEAT_DB": filepath.Join(t.TempDir(), "hb.db")}}
	e.mustRun("servers", "add", "web1", "--host", "h")
	e.terminal = true
	if out := e.run("status").out; !strings.Contains(out, "\x1b[1;31mOFFLINE\x1b[0m") {
		t.Errorf("terminal status not coloured:\n%q", out)
	}
	e.vars["NO_COLOR"] = "1"
	if out := e.run("status").out; strings.Contains(out, "\x1b[") {
		t.Errorf("NO_COLOR status coloured:\n%q", out)
	}
}

func TestStoreUnreachable(t *testing.T) {
	t.Parallel()
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{
		// Port 1 on loopback: nothing listens, so the connect is refused.
		"DATABASE_URL": "postgres://admin:s3cret@127.0.0.1:1/heartbeat",
	}}
	r := e.run("status")
	if r.code != 3 {
		t.Errorf("status against an unreachable store exited %d, want 3", r.code)
	}
	for _, args := range [][]string{{"status"}, {"servers", "list"}} {
		r := e.run(args...)
		if strings.Contains(r.err, "s3cret") || !strings.Contains(r.err, "127.0.0.1:1") || !strings.Contains(r.err, "DATABASE_URL") {
			t.Errorf("%v: stderr %q must name the store and its origin without the password", args, r.err)
		}
	}
	e.expectFail(1, "cannot reach postgres store", "servers", "list")
	e.vars = map[string]string{"HEARTBEAT_DB": "mysql://x"}
	e.expectFail(64, "malformed store URL", "servers", "list")
}

func TestPostgresSchemaBehindStopsCommands(t *testing.T) {
	t.Parallel()
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"HEARTBEAT_DB": pgtest.URL(t)}}
	e.expectFail(1, "run `heartbeat migrate`", "servers", "list")
	e.expectFail(3, "run `heartbeat migrate`", "status")
	if out := e.mustRun("migrate"); !strings.Contains(out, "applied") {
		t.Errorf("migrate printed %q", out)
	}
	if out := e.mustRun("migrate"); out != "schema is up to date\n" {
		t.Errorf("second migrate printed %q", out)
	}
	e.mustRun("servers", "list")
}

func TestDefaultStoreIsSQLiteUnderXDGState(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	e := &env{t: t, home: home, vars: map[string]string{}}
	e.mustRun("servers", "add", "web1", "--host", "h")
	path := filepath.Join(home, ".local", "state", "heartbeat", "heartbeat.db")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("default store not at %s: %v", path, err)
	}
	fi, _ := os.Stat(filepath.Dir(path))
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %o, want 700", fi.Mode().Perm())
	}
	state := t.TempDir()
	e.vars["XDG_STATE_HOME"] = state
	e.mustRun("servers", "list")
	if _, err := os.Stat(filepath.Join(state, "heartbeat", "heartbeat.db")); err != nil {
		t.Errorf("XDG_STATE_HOME not honoured: %v", err)
	}
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{}}
	if out := e.mustRun("version"); !strings.HasPrefix(out, "heartbeat test") {
		t.Errorf("version printed %q", out)
	}
	help := e.mustRun("--help")
	for _, c := range []string{"servers", "alert", "status", "migrate", "version", "completion"} {
		if !regexp.MustCompile(`(?m)^  ` + c + `\s+\S`).MatchString(help) {
			t.Errorf("--help does not list %q with a purpose:\n%s", c, help)
		}
	}
	if out := e.mustRun("completion", "bash"); !strings.Contains(out, "bash completion") {
		t.Errorf("completion bash printed %.80q", out)
	}
}
