package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/notify"
	"github.com/stacksense/heartbeat/pkg/store"
)

// hookReceiver is a loopback webhook receiver that keeps every body.
type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, body)
		h.sigs = append(h.sigs, r.Header.Get(notify.SignatureHeader))
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) payloads(t *testing.T, secret string) []notify.Payload {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []notify.Payload
	for i, b := range h.bodies {
		if !notify.VerifySignature(b, h.sigs[i], secret) {
			t.Errorf("delivery %d: signature does not verify with the secret add printed", i)
		}
		var p notify.Payload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestNotifyCommands(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		hook := newHookReceiver(t)
		e.mustRun("servers", "add", "web1", "--host", "10.0.0.5")
		e.mustRun("servers", "add", "db1", "--host", "10.0.0.6")

		// Bad input: one line, exit 64, nothing stored, no secret echoed.
		e.expectFail(64, "bad channel URL", "notify", "add", "x", "slak://s3cr3t-token@chan")
		e.expectFail(64, `unknown kind "sideways"`, "notify", "add", "x", "webhook+"+hook.srv.URL, "--on", "down,sideways")
		e.expectFail(64, `no server named "nope"`, "notify", "add", "x", "webhook+"+hook.srv.URL, "--servers", "web1,nope")
		e.expectFail(64, "not both", "notify", "add", "x", "webhook+"+hook.srv.URL, "--servers", "web1", "--all")
		e.expectFail(64, "--remind", "notify", "add", "x", "webhook+"+hook.srv.URL, "--remind", "-1h")
		if r := e.run("notify", "add", "x", "slak://s3cr3t-token@chan"); strings.Contains(r.err, "s3cr3t") {
			t.Errorf("a bad URL's secret was echoed: %q", r.err)
		}
		if out := e.mustRun("notify", "list"); !strings.Contains(out, "no channels") {
			t.Errorf("a refused add stored something: %q", out)
		}

		out := e.mustRun("notify", "add", "hook", "webhook+"+hook.srv.URL+"/in", "--servers", "web1", "--on", "down,up,warning")
		m := regexp.MustCompile(`webhook secret .*: ([0-9a-f]{64})\n`).FindStringSubmatch(out)
		if m == nil || !strings.Contains(out, "added channel hook (webhook) for web1 on down,up,warning") {
			t.Fatalf("notify add printed %q; want the channel and its secret", out)
		}
		secret := m[1]
		slack := e.mustRun("notify", "add", "team", "slack://hook:WNA3PBYV6-F20DUQND3RQ-XXXXtokenXXXXabcdefghijk@webhook", "--remind", "1h", "--servers", "db1")
		if strings.Contains(slack, "secret") {
			t.Errorf("a non-webhook channel got a secret: %q", slack)
		}
		e.expectFail(1, `a channel named "hook" already exists`, "notify", "add", "hook", "webhook+"+hook.srv.URL)

		list := e.mustRun("notify", "list")
		jsonOut := e.mustRun("notify", "list", "--json")
		for _, o := range []string{list, jsonOut} {
			if strings.Contains(o, secret) || strings.Contains(o, "XXXXtokenXXXX") {
				t.Errorf("notify list shows a secret: %q", o)
			}
		}
		var channels []map[string]any
		if err := json.Unmarshal([]byte(jsonOut), &channels); err != nil {
			t.Fatal(err)
		}
		if len(channels) != 2 || channels[0]["name"] != "hook" || channels[0]["kind"] != "webhook" || channels[0]["signed"] != true ||
			channels[0]["all_servers"] != false || channels[1]["name"] != "team" || channels[1]["remind_seconds"] != float64(3600) {
			t.Errorf("notify list --json = %v", channels)
		}

		// A test message, marked as one, signed with the secret add printed.
		if out := e.mustRun("notify", "test", "hook"); !strings.Contains(out, "test message delivered to channel hook") {
			t.Errorf("notify test printed %q", out)
		}
		if ps := hook.payloads(t, secret); len(ps) != 1 || !ps[0].Test || ps[0].Events[0].Kind != notify.KindTest {
			t.Errorf("test delivery = %+v", ps)
		}
		e.expectFail(64, "bad channel URL", "notify", "add", "dead", "webhook+http://")
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "webhook+http://" + l.Addr().String() + "/"
		l.Close()
		e.mustRun("notify", "add", "dead", closed)
		e.expectFail(1, "test message to channel dead failed", "notify", "test", "dead")
		e.expectFail(1, `no channel named "ghost"`, "notify", "test", "ghost")

		// web1 goes down: the drain sends it to hook (web1 only), and
		// leaves dead failing for a retry.
		s := e.open()
		ctx := context.Background()
		web1, err := s.ServerByName(ctx, "web1")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: web1.ID, OK: true}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: web1.ID, OK: true, At: time.Now().Add(-10 * time.Minute)}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil {
			t.Fatal(err)
		}
		out = e.mustRun("notify", "drain")
		// team covers db1 only (and must never reach the real Slack).
		if !strings.Contains(out, "queued 2 (0 reminders)") || !strings.Contains(out, "delivered 1, failed 1") {
			t.Errorf("notify drain printed %q; want 2 queued (hook, dead), 1 delivered, 1 failed", out)
		}
		ps := hook.payloads(t, secret)
		if len(ps) != 2 || ps[1].Events[0].ServerName != "web1" || ps[1].Events[0].Kind != notify.KindDown {
			t.Errorf("deliveries = %+v", ps)
		}

		e.expectFail(64, "--yes", "notify", "remove", "hook")
		if out := e.mustRun("notify", "remove", "hook", "--yes"); out != "removed channel hook\n" {
			t.Errorf("remove printed %q", out)
		}
		e.expectFail(1, `no channel named "hook"`, "notify", "remove", "hook", "--yes")
	})
}
