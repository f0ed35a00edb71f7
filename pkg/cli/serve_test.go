package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/cli"
	"github.com/stacksense/heartbeat/pkg/sshtest"
)

// lockedBuffer is written by a running server while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServe runs `heartbeat serve-api` in-process on a free loopback port
// until stop is called, which returns the exit code and stderr.
func (e *env) startServe(args ...string) (base string, stop func() (int, string)) {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var out, errb lockedBuffer
	app := &cli.App{
		In: strings.NewReader(""), Out: &out, Err: &errb,
		Getenv: func(k string) string { return e.vars[k] },
		Home:   e.home, Version: "test",
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- cli.Main(ctx, app, append([]string{"serve-api", "--listen", addr}, args...)) }()
	base = "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case code := <-done:
			cancel()
			e.t.Fatalf("serve-api exited %d: %s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			e.t.Fatalf("serve-api did not come up: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var once sync.Once
	var code int
	stop = func() (int, string) {
		once.Do(func() {
			cancel()
			code = <-done
		})
		return code, errb.String()
	}
	e.t.Cleanup(func() { stop() })
	return base, stop
}

var tokenLine = regexp.MustCompile(`^[A-Za-z0-9_-]{43}\n$`)

func TestServersToken(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "agent1", "--host", "10.0.0.9")
		r := e.run("servers", "token", "agent1")
		if r.code != 0 || !tokenLine.MatchString(r.out) {
			t.Fatalf("servers token: exit %d, stdout %q (want the token alone)", r.code, r.out)
		}
		if !strings.Contains(r.err, "created") || !strings.Contains(r.err, "shown only once") || strings.Contains(r.err, strings.TrimSpace(r.out)) {
			t.Errorf("servers token stderr = %q", r.err)
		}
		again := e.run("servers", "token", "agent1")
		if again.code != 0 || again.out == r.out || !strings.Contains(again.err, "rotated") {
			t.Errorf("second servers token: exit %d, out %q, err %q", again.code, again.out, again.err)
		}
		e.expectFail(1, `no server named "ghost"`, "servers", "token", "ghost")
		e.expectFail(64, "takes 1 argument(s)", "servers", "token")
	})
}

func TestServeAndPush(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "cpanel-test", "--host", "10.0.0.1")
		e.mustRun("servers", "add", "kimai", "--host", "10.0.0.3")
		token := strings.TrimSpace(e.mustRun("servers", "token", "cpanel-test"))
		base, stop := e.startServe("--verbose")

		// The source system's variables work as they are.
		e.vars["STACKSENSE_API_URL"] = base
		e.vars["STACKSENSE_SERVER_ID"] = "1"
		e.vars["HEARTBEAT_TOKEN"] = token
		if out := e.mustRun("push", "--agent-version", "1.0.0", "-v"); !strings.Contains(out, "heartbeat stored for server cpanel-test (id 1)") {
			t.Errorf("push -v printed %q", out)
		}
		if out := e.mustRun("push"); out != "" {
			t.Errorf("push without -v printed %q; want quiet for cron", out)
		}
		var list []map[string]any
		json.Unmarshal([]byte(e.run("status", "--json").out), &list)
		var pushed map[string]any
		for _, s := range list {
			if s["name"] == "cpanel-test" {
				pushed = s
			}
		}
		if pushed == nil || pushed["status"] != "ONLINE" || pushed["source"] != "api" || pushed["agent_version"] != "heartbeat/test" {
			t.Errorf("status after push = %v", pushed)
		}

		// The API answers with the same schema as status --json.
		resp, err := http.Get(base + "/api/servers")
		if err != nil {
			t.Fatal(err)
		}
		var api []map[string]any
		json.NewDecoder(resp.Body).Decode(&api)
		resp.Body.Close()
		if len(api) != 2 || api[0]["name"] != "kimai" || api[0]["status"] != "OFFLINE" || api[1]["source"] != "api" {
			t.Errorf("GET /api/servers = %v", api)
		}

		// A wrong token fails at once with the server's message.
		e.expectFail(1, "401 Unauthorized: missing or invalid token", "push", "--token", "wrong", "--retry-wait", "1ms")
		e.expectFail(1, "401 Unauthorized", "push", "--server-id", "2")
		e.expectFail(64, "must start with http:// or https://", "push", "--url", "monitor:8080")

		code, stderr := stop()
		if code != 0 {
			t.Errorf("serve-api exit %d after SIGTERM-like cancel, want 0: %s", code, stderr)
		}
		for _, want := range []string{`msg=serving url=http://127.0.0.1:`, `level=DEBUG msg=request method=POST path=/api/heartbeat/1/ status=200`, `status=401`, `msg="stopped: requests in flight finished"`} {
			if !strings.Contains(stderr, want) {
				t.Errorf("serve-api log lacks %q:\n%s", want, stderr)
			}
		}
		if strings.Contains(stderr, token) || strings.Contains(stderr, "wrong") || strings.Contains(stderr, "Bearer") {
			t.Errorf("serve-api log leaks a token:\n%s", stderr)
		}
	})
}

func TestPushRetries(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "agent", "--host", "10.0.0.1")
		token := strings.TrimSpace(e.mustRun("servers", "token", "agent"))
		base, _ := e.startServe()
		target, _ := url.Parse(base)

		// A proxy that answers 503 twice, then forwards.
		var seen atomic.Int32
		var failFirst atomic.Int32
		failFirst.Store(2)
		forward := httputil.NewSingleHostReverseProxy(target)
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if seen.Add(1) <= failFirst.Load() {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"error": "store unavailable; retry later"}`))
				return
			}
			forward.ServeHTTP(w, r)
		}))
		defer proxy.Close()
		e.vars["HEARTBEAT_TOKEN"] = token
		e.mustRun("push", "--url", proxy.URL, "--server-id", "1", "--retry-wait", "5ms")
		if n := seen.Load(); n != 3 {
			t.Errorf("proxy saw %d attempts, want 3 (two 503s, then success)", n)
		}

		// Retries are bounded, and the last answer is reported.
		seen.Store(0)
		failFirst.Store(100)
		e.expectFail(1, "503 Service Unavailable: store unavailable; retry later", "push", "--url", proxy.URL, "--server-id", "1", "--retry-wait", "1ms", "--retries", "2")
		if n := seen.Load(); n != 3 {
			t.Errorf("proxy saw %d attempts with --retries 2, want 3", n)
		}

		// No retry on 4xx.
		seen.Store(0)
		failFirst.Store(0)
		e.expectFail(1, "401 Unauthorized", "push", "--url", proxy.URL, "--server-id", "1", "--token", "bad", "--retry-wait", "1ms")
		if n := seen.Load(); n != 1 {
			t.Errorf("proxy saw %d attempts for a 401, want 1", n)
		}

		// Network errors are retried, then reported.
		dead := fmt.Sprintf("http://127.0.0.1:%d", sshtest.ClosedPort(t))
		start := time.Now()
		e.expectFail(1, "connection refused", "push", "--url", dead, "--server-id", "1", "--retry-wait", "20ms", "--retries", "2")
		if d := time.Since(start); d < 40*time.Millisecond {
			t.Errorf("two retries with 20ms, 40ms waits took only %v", d)
		}
	})
}

func TestPushUsage(t *testing.T) {
	t.Parallel()
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{}}
	e.expectFail(64, "no API URL: set --url, HEARTBEAT_API_URL or STACKSENSE_API_URL", "push", "--server-id", "1", "--token", "x")
	e.expectFail(64, "no server id", "push", "--url", "http://h", "--token", "x")
	e.expectFail(64, "no API token", "push", "--url", "http://h", "--server-id", "1")
	e.vars["STACKSENSE_SERVER_ID"] = "one"
	e.expectFail(64, `STACKSENSE_SERVER_ID "one" is not a server id`, "push", "--url", "http://h", "--token", "x")
	e.expectFail(64, "--tls-cert and --tls-key go together", "serve-api", "--tls-cert", "c.pem")
	e.expectFail(64, "--stale-after must be positive", "serve-api", "--stale-after", "0s")
}

func TestServeReadTokenFromEnv(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.vars["HEARTBEAT_READ_TOKEN"] = "let-me-read"
		base, stop := e.startServe()
		get := func(auth string) int {
			req, _ := http.NewRequest("GET", base+"/api/servers", nil)
			if auth != "" {
				req.Header.Set("Authorization", "Bearer "+auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := get(""); code != 401 {
			t.Errorf("without the read token: %d, want 401", code)
		}
		if code := get("let-me-read"); code != 200 {
			t.Errorf("with the read token: %d, want 200", code)
		}
		if code, stderr := stop(); code != 0 || strings.Contains(stderr, "let-me-read") {
			t.Errorf("serve-api exit %d; log must not hold the read token:\n%s", code, stderr)
		}
	})
}

func TestServeListenError(t *testing.T) {
	t.Parallel()
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{}}
	e.vars["HEARTBEAT_DB"] = t.TempDir() + "/hb.db"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e.expectFail(1, "listen on "+ln.Addr().String(), "serve-api", "--listen", ln.Addr().String())
}

func TestServeAlertsToken(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "web1", "--host", "10.0.0.1")
		const secret = "alerts-token-from-a-file-42"
		file := e.home + "/alerts-token"
		if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		e.expectFail(64, "must differ from the read token", "serve-api", "--alerts-token", "same", "--read-token", "same")
		e.expectFail(64, "read --alerts-token-file", "serve-api", "--alerts-token-file", e.home+"/missing")
		e.expectFail(64, "alternatives", "serve-api", "--alerts-token", "a", "--alerts-token-file", file)

		base, stop := e.startServe("--alerts-token-file", file, "--verbose")
		raise := func(token string) int {
			req, _ := http.NewRequest("POST", base+"/api/alerts", strings.NewReader(`{"server": "web1", "message": "from outside", "key": "k1"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := raise("wrong"); code != 401 {
			t.Errorf("raise with a wrong token = %d, want 401", code)
		}
		if code := raise(secret); code != 201 {
			t.Errorf("raise with the file's token = %d, want 201", code)
		}
		if out := e.mustRun("alert", "list", "--json"); !strings.Contains(out, `"message": "from outside"`) ||
			!strings.Contains(out, `"source": "api"`) || !strings.Contains(out, `"key": "k1"`) {
			t.Errorf("alert list --json after the API raise:\n%s", out)
		}
		code, stderr := stop()
		if code != 0 || !strings.Contains(stderr, "alerts_enabled=true") || !strings.Contains(stderr, "path=/api/alerts status=201") {
			t.Errorf("serve-api exit %d, log:\n%s", code, stderr)
		}
		if strings.Contains(stderr, secret) || strings.Contains(stderr, "wrong") {
			t.Errorf("serve-api log leaks a token:\n%s", stderr)
		}

		// The variable works too.
		e.vars["HEARTBEAT_ALERTS_TOKEN"] = "from-env-token"
		base, _ = e.startServe()
		if code := raise("from-env-token"); code != 200 {
			t.Errorf("raise of the same key with the env token = %d, want 200 (already active)", code)
		}
	})
}
