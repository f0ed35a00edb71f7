package probe

import (
	"github.com/stacksense/heartbeat/pkg/failure"

	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/stacksense/heartbeat/pkg/hostkey"
	"github.com/stacksense/heartbeat/pkg/sshtest"
)

// env is a fleet plus a client key it accepts.
type env struct {
	fleet *sshtest.Fleet
	key   *sshtest.ClientKey
	auth  *Auth
}

func newEnv(t testing.TB, groups ...sshtest.Group) *env {
	t.Helper()
	key, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	return newEnvWithKey(t, key, groups...)
}

func newEnvWithKey(t testing.TB, key *sshtest.ClientKey, groups ...sshtest.Group) *env {
	t.Helper()
	f, err := sshtest.Start(context.Background(), sshtest.Config{
		Groups:         groups,
		AuthorizedKeys: []ssh.PublicKey{key.PublicKey()},
		SlowDelay:      2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return &env{fleet: f, key: key, auth: NewAuth("test key", key.Signer)}
}

func (e *env) target(i int) Target {
	s := e.fleet.Server(i)
	return Target{ServerID: int64(i + 1), Name: s.Name, Host: s.Host, Port: s.Port, User: "probe"}
}

func (e *env) targets() []Target {
	ts := make([]Target, e.fleet.Len())
	for i := range ts {
		ts[i] = e.target(i)
	}
	return ts
}

func probeOne(t *testing.T, opts Options, tg Target) Result {
	t.Helper()
	r := NewProber(opts).Probe(t.Context(), &tg)
	t.Logf("%s -> ok=%v class=%q msg=%q phases=%+v", tg.Name, r.OK, r.Class, r.Message, r.Phases)
	if strings.ContainsAny(r.Message, "\r\n") {
		t.Errorf("message is not one line: %q", r.Message)
	}
	return r
}

func TestProbeOK(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sshtest.Group{Mode: sshtest.ModeOK, Count: 1})
	r := probeOne(t, Options{Auth: e.auth, Exec: "true"}, e.target(0))
	if !r.OK || r.Class != "" {
		t.Fatalf("want success, got %+v", r)
	}
	if !bytes.Equal(r.HostKey, e.fleet.Server(0).HostKey().Marshal()) {
		t.Error("result does not carry the presented host key")
	}
	if r.Latency <= 0 || r.Phases.Dial <= 0 || r.Phases.Banner <= 0 || r.Phases.Kex <= 0 || r.Phases.Auth <= 0 || r.Phases.Exec <= 0 {
		t.Errorf("phases not all recorded: %+v latency %v", r.Phases, r.Latency)
	}
}

func TestFailureClasses(t *testing.T) {
	t.Parallel()
	e := newEnv(t,
		sshtest.Group{Mode: sshtest.ModeOK, Count: 1},
		sshtest.Group{Mode: sshtest.ModeAuthReject, Count: 1},
		sshtest.Group{Mode: sshtest.ModeTarpit, Count: 1},
		sshtest.Group{Mode: sshtest.ModeSlow, Count: 1},
		sshtest.Group{Mode: sshtest.ModeDrop, Count: 1},
		sshtest.Group{Mode: sshtest.ModeNotSSH, Count: 1},
	)
	closedPort := sshtest.ClosedPort(t)
	other, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	short := 500 * time.Millisecond
	cases := []struct {
		name    string
		target  Target
		opts    Options
		class   failure.Class
		message string
	}{
		{"dns", Target{Host: "no-such-host.invalid", Port: 22, User: "u"}, Options{}, failure.DNS, "cannot resolve"},
		{"refused", Target{Host: "127.0.0.1", Port: closedPort, User: "u"}, Options{}, failure.Refused, "refused"},
		{"timeout-tarpit", e.target(2), Options{Timeout: short}, failure.Timeout, "no SSH banner"},
		{"timeout-slow", e.target(3), Options{Timeout: short}, failure.Timeout, "within"},
		{"banner-not-ssh", e.target(5), Options{}, failure.Banner, `"HTTP/1.1 400 Bad Request"`},
		{"handshake-drop", e.target(4), Options{}, failure.Handshake, "key exchange"},
		{"auth-reject", e.target(1), Options{}, failure.Auth, "authentication rejected"},
		{"auth-wrong-key", e.target(0), Options{Auth: NewAuth("other", other.Signer)}, failure.Auth, "publickey"},
		{"auth-no-credentials", e.target(0), Options{Auth: NewAuth("none")}, failure.Auth, ""},
		{"exec-false", e.target(0), Options{Exec: "false"}, failure.Exec, "status 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.opts.Auth == nil {
				c.opts.Auth = e.auth
			}
			start := time.Now()
			r := probeOne(t, c.opts, c.target)
			if r.OK || r.Class != c.class || !strings.Contains(r.Message, c.message) {
				t.Errorf("got class %q message %q, want %q containing %q", r.Class, r.Message, c.class, c.message)
			}
			if c.class == failure.Timeout && time.Since(start) > short+2*time.Second {
				t.Errorf("timeout probe took %v", time.Since(start))
			}
		})
	}
}

func TestSlowServerWithinTimeout(t *testing.T) {
	t.Parallel()
	key, _ := sshtest.NewClientKey()
	f, err := sshtest.Start(t.Context(), sshtest.Config{
		Groups:         []sshtest.Group{{Mode: sshtest.ModeSlow, Count: 1}},
		AuthorizedKeys: []ssh.PublicKey{key.PublicKey()},
		SlowDelay:      200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.Server(0)
	r := probeOne(t, Options{Auth: NewAuth("k", key.Signer), Timeout: 3 * time.Second}, Target{Host: s.Host, Port: s.Port, User: "u"})
	if !r.OK {
		t.Fatalf("slow server within timeout: %+v", r)
	}
}

// Unreachable networks cannot be produced on loopback without changing
// routes, so this case uses the error the kernel would give.
func TestClassifyUnreachable(t *testing.T) {
	t.Parallel()
	for errno, want := range map[syscall.Errno]string{syscall.EHOSTUNREACH: "no route", syscall.ENETUNREACH: "network unreachable"} {
		err := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
		class, msg := classify(err, phaseDial, &probeState{}, context.Background(), context.Background(), time.Second)
		if class != failure.Unreachable || !strings.Contains(msg, want) {
			t.Errorf("%v: got %q %q", errno, class, msg)
		}
	}
}

func TestPinFirstUseThenMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sshtest.Group{Mode: sshtest.ModeOK, Count: 1})
	tg := e.target(0)
	r := probeOne(t, Options{Auth: e.auth}, tg)
	if !r.OK || len(r.HostKey) == 0 {
		t.Fatalf("first use: %+v", r)
	}
	tg.PinnedHostKey = r.HostKey
	if r := probeOne(t, Options{Auth: e.auth}, tg); !r.OK {
		t.Fatalf("pinned, same key: %+v", r)
	}
	newKey, err := e.fleet.RotateHostKey(0)
	if err != nil {
		t.Fatal(err)
	}
	r = probeOne(t, Options{Auth: e.auth}, tg)
	if r.OK || r.Class != failure.HostKeyMismatch {
		t.Fatalf("after rotation: %+v", r)
	}
	if !bytes.Equal(r.HostKey, newKey.Marshal()) {
		t.Error("mismatch result does not carry the new key as last seen")
	}
	if !strings.Contains(r.Message, ssh.FingerprintSHA256(newKey)) {
		t.Errorf("message %q lacks the presented fingerprint", r.Message)
	}
}

func TestKnownHosts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sshtest.Group{Mode: sshtest.ModeOK, Count: 3})
	s0, s1 := e.fleet.Server(0), e.fleet.Server(1)
	addr0 := knownhosts.Normalize(s0.Addr()) // "[127.0.0.1]:PORT"
	addr1 := knownhosts.Normalize(s1.Addr())
	lines := []string{
		knownhosts.Line([]string{addr0}, s0.HostKey()),
		knownhosts.Line([]string{knownhosts.HashHostname(addr1)}, s1.HostKey()),
	}
	if !strings.HasPrefix(lines[0], "["+s0.Host+"]:") || !strings.HasPrefix(lines[1], "|1|") {
		t.Fatalf("unexpected known_hosts lines:\n%s", strings.Join(lines, "\n"))
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	checker, err := hostkey.NewChecker(hostkey.PolicyKnownHosts, path)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Auth: e.auth, HostKeys: checker}
	if r := probeOne(t, opts, e.target(0)); !r.OK {
		t.Errorf("[host]:port entry: %+v", r)
	}
	if r := probeOne(t, opts, e.target(1)); !r.OK {
		t.Errorf("hashed entry: %+v", r)
	}
	if r := probeOne(t, opts, e.target(2)); r.Class != failure.HostKeyUnknown {
		t.Errorf("host not in file: %+v", r)
	}
	if _, err := e.fleet.RotateHostKey(1); err != nil {
		t.Fatal(err)
	}
	if r := probeOne(t, opts, e.target(1)); r.Class != failure.HostKeyMismatch {
		t.Errorf("hashed entry after rotation: %+v", r)
	}
}

func TestRunTarpitsEndAtDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sshtest.Group{Mode: sshtest.ModeTarpit, Count: 20})
	targets := e.targets()
	var got []Result
	start := time.Now()
	// Timeout longer than the deadline, and fewer workers than targets, so
	// both "cancelled at the deadline" and "not started" paths run.
	sum := Run(t.Context(), targets, Options{Auth: e.auth, Concurrency: 5, Timeout: time.Minute, Deadline: time.Second}, func(rs []Result) {
		got = append(got, rs...)
	})
	elapsed := time.Since(start)
	if elapsed > 5*time.Second {
		t.Errorf("run took %v with a 1s deadline", elapsed)
	}
	if len(got) != len(targets) || sum.Probed != len(targets) || sum.FailedByClass[failure.Timeout] != len(targets) || !sum.DeadlineHit {
		t.Fatalf("summary %+v, %d results", sum, len(got))
	}
	var notStarted int
	for _, r := range got {
		if r.Class != failure.Timeout {
			t.Errorf("result %+v", r)
		}
		if strings.Contains(r.Message, "not started before the run deadline") {
			notStarted++
		}
	}
	if notStarted != len(targets)-5 {
		t.Errorf("%d not-started results, want %d", notStarted, len(targets)-5)
	}
}

func TestRunBatchesAndLargeFleet(t *testing.T) {
	t.Parallel()
	const n = 1000
	e := newEnv(t, sshtest.Group{Mode: sshtest.ModeOK, Count: n})
	targets := e.targets()
	var calls, total int
	seen := make(map[int64]bool, n)
	// Generous limits: this test is about batching and a thousand
	// concurrent handshakes under the race detector, not about speed, and a
	// loaded CI machine must not turn it into a deadline test.
	sum := Run(t.Context(), targets, Options{Auth: e.auth, Concurrency: 64, BatchSize: 100, Timeout: time.Minute, Deadline: 3 * time.Minute}, func(rs []Result) {
		calls++
		total += len(rs)
		if len(rs) > 100 {
			t.Errorf("batch of %d exceeds BatchSize", len(rs))
		}
		for _, r := range rs {
			if seen[r.ServerID] {
				t.Errorf("duplicate result for %d", r.ServerID)
			}
			seen[r.ServerID] = true
			if !r.OK {
				t.Errorf("server %d: %s %s", r.ServerID, r.Class, r.Message)
			}
		}
	})
	t.Logf("%d probes in %v, %d sink calls", sum.Probed, sum.Finished.Sub(sum.Started), calls)
	if total != n || sum.Succeeded != n || sum.DeadlineHit {
		t.Fatalf("summary %+v, total %d", sum, total)
	}
	if calls < 2 {
		t.Errorf("sink called %d times; want batches", calls)
	}
}

func TestRunMixed(t *testing.T) {
	t.Parallel()
	e := newEnv(t,
		sshtest.Group{Mode: sshtest.ModeOK, Count: 5},
		sshtest.Group{Mode: sshtest.ModeTarpit, Count: 2},
		sshtest.Group{Mode: sshtest.ModeAuthReject, Count: 2},
		sshtest.Group{Mode: sshtest.ModeNotSSH, Count: 1},
	)
	sum := Run(t.Context(), e.targets(), Options{Auth: e.auth, Timeout: 3 * time.Second}, nil)
	want := map[failure.Class]int{failure.Timeout: 2, failure.Auth: 2, failure.Banner: 1}
	if sum.Succeeded != 5 || len(sum.FailedByClass) != len(want) {
		t.Fatalf("summary %+v", sum)
	}
	for c, n := range want {
		if sum.FailedByClass[c] != n {
			t.Errorf("%s: %d, want %d", c, sum.FailedByClass[c], n)
		}
	}
}

func TestRunCancelled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sshtest.Group{Mode: sshtest.ModeTarpit, Count: 3})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	sum := Run(ctx, e.targets(), Options{Auth: e.auth}, nil)
	// Cut short by the caller, not the servers: interrupted, not failed.
	if sum.Interrupted != 3 || sum.Probed != 0 || len(sum.FailedByClass) != 0 || sum.Finished.Sub(sum.Started) > 3*time.Second {
		t.Fatalf("summary %+v", sum)
	}
}

func TestRunEmpty(t *testing.T) {
	t.Parallel()
	calls := 0
	sum := Run(t.Context(), nil, Options{}, func([]Result) { calls++ })
	if sum.Probed != 0 || calls != 0 {
		t.Fatalf("summary %+v calls %d", sum, calls)
	}
}

func TestIsTimeoutContext(t *testing.T) {
	t.Parallel()
	if !isTimeout(context.DeadlineExceeded) || !isTimeout(errors.Join(os.ErrDeadlineExceeded)) || isTimeout(errors.New("x")) {
		t.Error("isTimeout")
	}
}
