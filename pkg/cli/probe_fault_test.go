package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stacksense/heartbeat/pkg/cli"
	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/sshtest"
)

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// freezer is a TCP proxy to Postgres that can stop forwarding bytes, the
// way a SIGSTOPped server looks to its clients, without stopping the
// server the other tests share.
type freezer struct {
	ln     net.Listener
	target string
	// gate is read-held while bytes are forwarded; freeze takes it for
	// writing and never gives it back.
	gate  sync.RWMutex
	mu    sync.Mutex
	conns []net.Conn
}

func startFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *freezer) track(c net.Conn) {
	f.mu.Lock()
	f.conns = append(f.conns, c)
	f.mu.Unlock()
}

func (f *freezer) serve(client net.Conn) {
	f.track(client)
	f.gate.RLock()
	server, err := net.Dial("tcp", f.target)
	f.gate.RUnlock()
	if err != nil {
		client.Close()
		return
	}
	f.track(server)
	go f.pipe(server, client)
	f.pipe(client, server)
}

func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f.gate.RLock()
			_, werr := dst.Write(buf[:n])
			f.gate.RUnlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				dst.Close()
			}
			return
		}
	}
}

// freeze stops all forwarding, on open and new connections alike.
func (f *freezer) freeze() { f.gate.Lock() }

// probeRunOpen reports whether a probe run has started and not finished.
func probeRunOpen(t *testing.T, dbURL string) bool {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM probe_runs WHERE finished_at IS NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// A Postgres server that stops answering mid-run (SIGSTOP) must not keep
// probe-ssh running: it ends within its deadline plus a few seconds, with
// one line saying what it could not do, and a non-zero exit.
func TestPostgresProbeSSHEndsWhenTheStoreHangs(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"DATABASE_URL": dbURL}}
	e.mustRun("migrate")
	_, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeTarpit, Count: 3})

	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startFreezer(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	e.vars["DATABASE_URL"] = u.String()

	const deadline = 3 * time.Second
	start := time.Now()
	done := e.runInBackground(2*time.Minute, "probe-ssh", "--key", key, "--timeout", "2s", "--deadline", deadline.String())
	waitFor(t, "the run to start", func() bool { return probeRunOpen(t, dbURL) })
	proxy.freeze()
	r := <-done
	elapsed := time.Since(start)
	t.Logf("probe-ssh with a hung store: exit %d after %s: %s", r.code, elapsed.Round(100*time.Millisecond), r.err)

	if r.code == 0 {
		t.Errorf("probe-ssh with a hung store: exit 0, want non-zero (stderr %q)", r.err)
	}
	if n := strings.Count(strings.TrimSpace(r.err), "\n"); n != 0 || !strings.Contains(r.err, "probe run") {
		t.Errorf("probe-ssh with a hung store: stderr %q, want one line about the run", r.err)
	}
	// Deadline, one store timeout for the tail and a second for release
	// and close: the documented bound, with room for a loaded machine.
	if limit := deadline + 2*5*time.Second + 5*time.Second; elapsed > limit {
		t.Errorf("probe-ssh with a hung store took %s, want under %s", elapsed.Round(time.Second), limit)
	}
}

// Terminating the session that holds the probe lock frees the lock for
// another run; the first must stop writing, say so, and fail.
func TestPostgresProbeSSHStopsWhenItLosesTheLock(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"DATABASE_URL": dbURL}}
	e.mustRun("migrate")
	_, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeTarpit, Count: 3})

	done := e.runInBackground(2*time.Minute, "probe-ssh", "--key", key, "--timeout", "20s", "--deadline", "30s")
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var pid int
	waitFor(t, "the run to hold the probe lock", func() bool {
		err := admin.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&pid)
		return err == nil && probeRunOpen(t, dbURL)
	})
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.code != 1 || !strings.Contains(r.err, "lost the probe lock") || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Errorf("probe-ssh after losing its lock: exit %d, stderr %q; want 1 and one line saying it lost the lock", r.code, r.err)
	}
	// Nothing was written for the tarpits: their probes were cut short.
	var rows []statusJSON
	if err := json.Unmarshal([]byte(e.run("status", "--json").out), &rows); err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		if row.ConsecutiveFailures != 0 {
			t.Errorf("%s: written after the lock was lost: %+v", row.Name, row)
		}
	}
}

// SIGTERM mid-run: one exit code (143) whatever the output flags, results
// already seen are kept, and servers whose probe the signal cut short are
// not touched.
func TestProbeSSHInterruptedMidRun(t *testing.T) {
	for _, flags := range [][]string{nil, {"--summary"}, {"--json"}} {
		// A subtest per flag set: eachStore's names repeated under one
		// parent would get "#01" suffixes, and a "#" in a store path reads
		// as a URL fragment.
		t.Run(strings.Join(append([]string{"quiet"}, flags...)[min(1, len(flags)):], ""), func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, e *env) {
				fleet, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 2}, sshtest.Group{Mode: sshtest.ModeTarpit, Count: 2})
				s := e.open()
				ctx, cancel := context.WithCancelCause(context.Background())
				defer cancel(nil)
				done := make(chan result, 1)
				go func() {
					done <- e.runCtx(ctx, append([]string{"probe-ssh", "--key", key, "--timeout", "20s", "--deadline", "30s"}, flags...)...)
				}()
				waitFor(t, "the answering servers to be recorded", func() bool {
					snap, err := s.Status(context.Background())
					if err != nil {
						return false
					}
					up := 0
					for _, st := range snap.Servers {
						if st.LastHeartbeat != nil {
							up++
						}
					}
					return up == 2
				})
				cancel(cli.Interrupted(syscall.SIGTERM))
				r := <-done
				if r.code != 143 || !strings.Contains(r.err, "interrupted by SIGTERM") || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
					t.Errorf("probe-ssh %v interrupted: exit %d, stderr %q; want 143 and one line", flags, r.code, r.err)
				}
				snap, err := s.Status(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				mode := map[string]sshtest.Mode{}
				for _, sv := range fleet.Servers() {
					mode[sv.Name] = sv.Mode
				}
				for _, st := range snap.Servers {
					if mode[st.Name] == sshtest.ModeTarpit && (st.LastProbe != nil || st.ConsecutiveFailures != 0) {
						t.Errorf("%s: a probe cut short by the signal was recorded: %+v", st.Name, st.Heartbeat)
					}
				}
				last, err := s.LastFinishedRun(context.Background())
				if err != nil || last == nil || last.Probed != 2 || last.Succeeded != 2 {
					t.Errorf("interrupted run recorded as %+v, %v; want 2 probed, 2 answered", last, err)
				}
			})
		})
	}
}

// A run killed mid-way (kill -9) leaves its record open; the next run
// closes it as aborted and status --verbose names it.
func TestProbeSSHClosesAbortedRuns(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		_, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 1})
		s := e.open()
		killed, err := s.StartRun(context.Background(), "probe-killed", 1)
		if err != nil {
			t.Fatal(err)
		}
		// The same host's next run knows the open one is dead (on
		// Postgres, other hosts' runs may be alive and are left open).
		e.vars["HEARTBEAT_PROBE_HOST"] = "probe-killed"
		e.mustRun("probe-ssh", "--key", key)
		out := e.mustRun("status", "--verbose")
		want := "last run aborted: run " + strconv.FormatInt(killed.ID, 10) + " on host probe-killed started " + killed.StartedAt.Format(time.RFC3339) + " never finished (killed?)"
		if !strings.Contains(out, want) {
			t.Errorf("status --verbose lacks %q:\n%s", want, out)
		}
	})
}

// A store that fails writes mid-run (here: the table is gone) gives one
// line on stderr, not a log line per batch and then the error.
func TestPostgresProbeSSHStoreErrorIsOneLine(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"DATABASE_URL": dbURL}}
	e.mustRun("migrate")
	_, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeTarpit, Count: 2})
	done := e.runInBackground(2*time.Minute, "probe-ssh", "--key", key, "--timeout", "2s", "--deadline", "10s")
	waitFor(t, "the run to start", func() bool { return probeRunOpen(t, dbURL) })
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `ALTER TABLE heartbeats RENAME TO heartbeats_gone`); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.code != 1 || strings.Count(strings.TrimSpace(r.err), "\n") != 0 || !strings.Contains(r.err, "could not store 2 of 2 results") {
		t.Errorf("probe-ssh with failing writes: exit %d, stderr %q; want 1 and one line", r.code, r.err)
	}
}

// Each run prunes history past its retention: with retention shorter than
// the gap between two commands, the resolved alert and the earlier run go.
func TestProbeSSHPrunesHistory(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		_, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 1})
		name := strings.TrimSpace(e.mustRun("servers", "list", "--json"))
		var list []struct{ Name string }
		if err := json.Unmarshal([]byte(name), &list); err != nil || len(list) != 1 {
			t.Fatalf("servers list: %v %s", err, name)
		}
		resolved := strings.TrimSpace(e.mustRun("alert", "raise", list[0].Name, "old news"))
		e.mustRun("alert", "resolve", resolved)
		active := strings.TrimSpace(e.mustRun("alert", "raise", list[0].Name, "still on"))
		e.mustRun("probe-ssh", "--key", key)
		s := e.open()
		first, err := s.LastFinishedRun(context.Background())
		if err != nil || first == nil {
			t.Fatalf("first run: %v %v", first, err)
		}
		// Default retention keeps everything this young.
		if all, _ := s.Alerts(context.Background(), true); len(all) != 2 {
			t.Fatalf("after a run with default retention: %d alerts, want 2", len(all))
		}
		e.mustRun("probe-ssh", "--key", key, "--keep-runs", "1ns", "--keep-resolved-alerts", "1ns")
		all, err := s.Alerts(context.Background(), true)
		if err != nil || len(all) != 1 || strconv.FormatInt(all[0].ID, 10) != active {
			t.Errorf("alerts after pruning = %+v, %v; want only the active one (%s)", all, err, active)
		}
		if _, err := s.FinishRun(context.Background(), *first); err == nil {
			t.Errorf("run %d survived pruning", first.ID)
		}
	})
}
