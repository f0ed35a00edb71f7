package deliver_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/deliver"
	"github.com/stacksense/heartbeat/pkg/notify"
	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store/postgres"
)

// drainHelperEnv, when set to a Postgres URL, makes this test binary a
// drainer process (TestDrainProcessHelper) for TestKilledDrainerProcess.
const drainHelperEnv = "HEARTBEAT_TEST_DRAIN_URL"

// TestDrainProcessHelper is the drainer process that gets killed: one
// drain, as `heartbeat notify drain` does, with claims that outlive it by
// one second instead of thirty so the test need not wait.
func TestDrainProcessHelper(t *testing.T) {
	url := os.Getenv(drainHelperEnv)
	if url == "" {
		return // not a child process: nothing to do
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
	defer dcancel()
	_, err = deliver.Drain(dctx, s, deliver.Options{Claimer: "doomed", ClaimMargin: time.Second})
	t.Logf("drain returned: %v", err)
}

// A drainer process killed with SIGKILL while it sends (its claim taken,
// the receiver holding the request) leaves its claim to expire; then the
// next drain delivers the message, and the receiver gets it exactly once.
func TestKilledDrainerProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := pgtest.URL(t)
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if s == nil { // a fresh database is behind: migrated below
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	var (
		mu        sync.Mutex
		requests  int
		delivered = map[string]int{}
	)
	started := make(chan struct{}, 1)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		requests++
		first := requests == 1
		mu.Unlock()
		if first {
			// The doomed drainer's request: hold it until the process dies.
			started <- struct{}{}
			<-r.Context().Done()
			return
		}
		var p notify.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("payload: %v", err)
		}
		mu.Lock()
		for _, e := range p.Events {
			delivered[e.IdempotencyKey]++
		}
		mu.Unlock()
	}))
	defer rcv.Close()
	ids := fleet(t, ctx, s, 1)
	addChannel(t, ctx, s, "hook", "webhook+"+rcv.URL+"/hook", "k")
	down(t, ctx, s, ids)

	child := exec.Command(os.Args[0], "-test.run=^TestDrainProcessHelper$", "-test.v")
	child.Env = append(os.Environ(), drainHelperEnv+"="+url)
	out, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, out)
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the drainer process never sent")
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	killed := time.Now()

	// While the dead drainer's claim runs, nobody sends the message.
	if res := drain(t, ctx, s, deliver.Options{}); res.Claimed != 0 {
		t.Fatalf("a drain claimed %d deliveries while the dead drainer's claim ran", res.Claimed)
	}
	// The claim lasts the drain's 3 s budget plus its 1 s margin.
	for time.Since(killed) < 10*time.Second {
		if res := drain(t, ctx, s, deliver.Options{}); res.Delivered > 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(delivered) != 1 {
		t.Fatalf("receiver got %v after the claim expired; want the one message", delivered)
	}
	for k, n := range delivered {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}
}
