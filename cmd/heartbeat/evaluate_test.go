package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/backend"
)

// Evaluators in separate processes against one Postgres (probe hosts and
// serve-api each run their own): every change is recorded by exactly one
// of them.
func TestEvaluatorsInSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "heartbeat")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	url := pgtest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := backend.Open(ctx, backend.Target{Engine: backend.Postgres, URL: url, ConnectTimeout: 5 * time.Second})
	if s != nil {
		defer s.Close()
	}
	if err != nil && s != nil {
		_, err = s.Migrate(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	now, err := s.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var servers []store.Server
	for i := range n {
		sv, err := s.AddServer(ctx, store.ServerSpec{Name: fmt.Sprintf("srv%02d", i), Host: "10.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, OK: true, At: now.Add(-50 * time.Second)}}); err != nil {
			t.Fatal(err)
		}
		servers = append(servers, sv)
	}
	if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil {
		t.Fatal(err)
	}
	// Every window narrows to 10 s: all 40 are stale and due a down-flip.
	for _, sv := range servers {
		if _, err := s.UpdateServer(ctx, sv.ID, store.ServerSpec{Name: sv.Name, Host: sv.Host, StaleAfter: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		count = map[int64]int{}
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, bin, "evaluate", "--json")
			cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "DATABASE_URL=" + url}
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("heartbeat evaluate: %v", err)
				return
			}
			var flips []struct {
				ServerID int64 `json:"server_id"`
				To       string
			}
			if err := json.Unmarshal(out, &flips); err != nil {
				t.Errorf("evaluate --json: %v\n%s", err, out)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, f := range flips {
				if f.To == store.StateOffline {
					count[f.ServerID]++
				}
			}
		}()
	}
	wg.Wait()
	for _, sv := range servers {
		if count[sv.ID] != 1 {
			t.Errorf("%s: recorded down %d times by 4 evaluator processes, want once", sv.Name, count[sv.ID])
		}
	}
}
