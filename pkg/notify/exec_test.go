package notify

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// script writes an executable shell script into a temporary directory.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notify.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// readEnv parses the output of `env` into a map.
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "HEARTBEAT_") || k == "PATH" || k == "DATABASE_URL" {
			env[k] = v
		}
	}
	return env
}

func TestExecPassesEventInEnvironmentAndPayloadOnStdin(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://u:dbpassword@db/x")
	dir := t.TempDir()
	envOut, stdinOut := filepath.Join(dir, "env"), filepath.Join(dir, "stdin")
	s, err := New("exec:"+script(t, "env > "+envOut+"\ncat > "+stdinOut+"\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	m := downMessage()
	m.Events[0].ServerName = "web1\nFAKE=1"
	m.Events[0].DownFor = 90 * time.Second
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	env := readEnv(t, envOut)
	for k, want := range map[string]string{
		"HEARTBEAT_EVENT_ID":         "42",
		"HEARTBEAT_EVENT_KIND":       "down",
		"HEARTBEAT_SERVER_NAME":      `web1\nFAKE=1`,
		"HEARTBEAT_SERVER_ID":        "7",
		"HEARTBEAT_SERVER_HOST":      "10.0.0.5",
		"HEARTBEAT_FROM":             "ONLINE",
		"HEARTBEAT_TO":               "OFFLINE",
		"HEARTBEAT_AT":               "2026-11-23T22:10:05Z",
		"HEARTBEAT_REASON":           "no heartbeat for 60s",
		"HEARTBEAT_DOWN_FOR_SECONDS": "90",
		"HEARTBEAT_TEST":             "0",
		"HEARTBEAT_GROUPED":          "0",
		"HEARTBEAT_EVENT_COUNT":      "1",
		"HEARTBEAT_IDEMPOTENCY_KEY":  "flip-42",
		"HEARTBEAT_CHANNEL":          "ops",
		"HEARTBEAT_TITLE":            `web1\nFAKE=1 is OFFLINE`,
		"PATH":                       execPath,
	} {
		if got, ok := env[k]; !ok || got != want {
			t.Errorf("%s = %q (set: %v), want %q", k, got, ok, want)
		}
	}
	if _, ok := env["DATABASE_URL"]; ok {
		t.Error("the script inherited DATABASE_URL")
	}
	if !strings.HasPrefix(env["HEARTBEAT_MESSAGE"], `web1\nFAKE=1 is OFFLINE: no heartbeat for 60s`) {
		t.Errorf("HEARTBEAT_MESSAGE = %q", env["HEARTBEAT_MESSAGE"])
	}
	b, _ := os.ReadFile(stdinOut)
	var p Payload
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("stdin is not the payload: %v: %s", err, b)
	}
	if p.Version != 1 || p.IdempotencyKey != "flip-42" || len(p.Events) != 1 || p.Events[0].ServerName != "web1\nFAKE=1" {
		t.Errorf("stdin payload = %+v", p)
	}
}

func TestExecGroupedMessage(t *testing.T) {
	envOut := filepath.Join(t.TempDir(), "env")
	s, err := New("exec:"+script(t, "env > "+envOut+"\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	var events []Event
	for i := range 12 {
		events = append(events, Event{ID: int64(100 + i), Kind: KindDown, ServerName: "s" + strconv.Itoa(i), From: "ONLINE", To: "OFFLINE", At: at})
	}
	if err := s.Send(context.Background(), Message{Events: events, Grouped: true}); err != nil {
		t.Fatal(err)
	}
	env := readEnv(t, envOut)
	if env["HEARTBEAT_EVENT_COUNT"] != "12" || env["HEARTBEAT_GROUPED"] != "1" || !strings.HasPrefix(env["HEARTBEAT_MESSAGE"], "12 servers changed state: 12 OFFLINE") {
		t.Errorf("grouped env: count %q grouped %q message %q", env["HEARTBEAT_EVENT_COUNT"], env["HEARTBEAT_GROUPED"], env["HEARTBEAT_MESSAGE"])
	}
	if _, ok := env["HEARTBEAT_SERVER_NAME"]; ok {
		t.Error("a grouped message sets the one-event variables")
	}
}

func TestExecFailureReportsFirstStderrLine(t *testing.T) {
	s, err := New("exec:"+script(t, "echo >&2\necho 'cannot reach pager\x1b[31m' >&2\necho second >&2\nexit 3\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), downMessage())
	if err == nil {
		t.Fatal("Send succeeded on exit 3")
	}
	if msg := err.Error(); !strings.Contains(msg, "exit status 3") || !strings.Contains(msg, `cannot reach pager\x1b[31m`) || strings.Contains(msg, "second") {
		t.Errorf("error = %q", msg)
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The shell starts sleep as a child and waits: killing only the shell
	// would leave sleep running with the pipes open.
	s, err := New("exec:"+script(t, "sleep 60 &\necho $! > "+pidFile+"\nwait\n"), "", WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.Send(context.Background(), downMessage())
	elapsed := time.Since(start)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "within the 1s limit") {
		t.Fatalf("Send = %v, want killed at the 1s limit", err)
	}
	if elapsed > 4*time.Second {
		t.Errorf("Send returned after %v, limit 1s", elapsed)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The sleep was in the script's process group, so it is dead (or a
	// zombie reaped by init shortly).
	deadline := time.Now().Add(2 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the script's child %d survived the kill", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExecRefusesRelativePaths(t *testing.T) {
	for _, u := range []string{"exec:", "exec:notify.sh", "exec:./notify.sh", "exec:~/notify.sh"} {
		if _, err := New(u, ""); !errors.Is(err, ErrBadURL) {
			t.Errorf("New(%q) = %v, want ErrBadURL", u, err)
		}
	}
}

func TestExecMissingScriptIsASendError(t *testing.T) {
	s, err := New("exec:/nonexistent/heartbeat-notify.sh", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), downMessage()); err == nil || !strings.Contains(err.Error(), "/nonexistent/heartbeat-notify.sh") {
		t.Errorf("Send = %v, want an error naming the script", err)
	}
}

// TestExecStopsWithCallersContext: the drain's budget (ctx) ends a script
// long before the 10 s limit, and the error says the caller stopped it.
func TestExecStopsWithCallersContext(t *testing.T) {
	s, err := New("exec:"+script(t, "sleep 60\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Send(ctx, downMessage())
	if err == nil || !strings.Contains(err.Error(), "stopped by the caller") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want stopped by the caller", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Send returned after %v, ctx allowed 300ms", d)
	}
}
