// Package probe decides whether servers are alive by logging in over SSH:
// TCP dial, version banner, key exchange, host-key check, user
// authentication and an optional command. Each probe returns a Result with
// one failure Class and per-phase timings; Run probes a fleet with a
// bounded worker pool and hands Results to a caller-supplied sink, so this
// package knows nothing about storage.
package probe

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/stacksense/heartbeat/pkg/failure"
	"github.com/stacksense/heartbeat/pkg/hostkey"
)

// Target is one server to probe.
type Target struct {
	ServerID int64
	Name     string
	Host     string
	Port     int
	User     string
	// KeyPath, if set, overrides the run's default credentials.
	KeyPath string
	// PinnedHostKey is the wire form of the pinned host key, nil if none;
	// used by the pin policy.
	PinnedHostKey []byte
	// PinnedIsCA says PinnedHostKey is a certificate authority's key: the
	// server must present a host certificate it signed (servers trust --ca).
	PinnedIsCA bool
}

// Phases holds how long each step took; a step not reached is zero.
type Phases struct {
	Dial   time.Duration // TCP connect (including DNS)
	Banner time.Duration // from the start of the SSH handshake until the server's version line arrived
	Kex    time.Duration // key exchange, up to and including the host-key check
	Auth   time.Duration // user authentication
	Exec   time.Duration // the check command
}

// Result is the outcome of one probe.
type Result struct {
	ServerID int64
	OK       bool
	Class    failure.Class
	// Message is one short line for operators; never key material.
	Message string
	// Latency is handshake plus authentication time.
	Latency time.Duration
	// HostKey is the wire form of the key the server presented, if it got
	// that far: pin it on first use, or store it as last seen on mismatch.
	HostKey []byte
	Phases  Phases
	// Interrupted is set by Run when the caller cancelled the run (a
	// signal, not the run deadline) before this probe completed: the
	// result says nothing about the server and should not be recorded.
	Interrupted bool
}

// Options configures probes and runs. Zero values take the defaults below.
type Options struct {
	// Auth is the run's credentials (LoadAuth). Nil fails every target
	// with failure.Auth.
	Auth *Auth
	// HostKeys is the host-key policy; nil means pin.
	HostKeys *hostkey.Checker
	// Exec, if set, is run after login and must exit 0.
	Exec string
	// Concurrency bounds probes in flight; default DefaultConcurrency.
	Concurrency int
	// Timeout bounds one probe from dial to exec; default 10s.
	Timeout time.Duration
	// Deadline bounds a whole run; default 25s, so a run fits in the 30s
	// cycle with time left to store results.
	Deadline time.Duration
	// BatchSize and BatchInterval control how results reach the sink: a
	// batch is handed over when it holds BatchSize results or
	// BatchInterval has passed, whichever is first. Defaults 500, 200ms.
	BatchSize     int
	BatchInterval time.Duration
	// Dial, if set, opens the TCP connection instead of a net.Dialer.
	// It lets a test give one probe location its own view of the network
	// (one cut off while another reaches the fleet) in one process.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Defaults for Options.
//
// DefaultConcurrency: a healthy probe is CPU-bound (key exchange plus a
// signature, a few hundred microseconds of CPU on each side) and short, so
// on a 2-core host a few dozen workers already saturate the CPU on a fast
// network. Workers matter for the slow cases: a tarpit or dead host holds a
// worker for the full Timeout. With W workers, T tarpits cost roughly
// ceil(T/W)*Timeout of wall time, and the rest of the fleet has to fit in
// what remains of the Deadline. 512 lets up to ~500 tarpits (5% of a 10,000
// server fleet) cost one 10s timeout while leaving 15s for the healthy
// servers, and 512 sockets sit well inside default file-descriptor limits.
const (
	DefaultConcurrency   = 512
	DefaultTimeout       = 10 * time.Second
	DefaultDeadline      = 25 * time.Second
	DefaultBatchSize     = 500
	DefaultBatchInterval = 200 * time.Millisecond
)

// kexPreference puts classical curve25519 first: a liveness probe carries
// no data worth harvesting for later quantum attack, and the ML-KEM hybrid
// (the library default) costs about a third more CPU per probe. The hybrid
// stays last for servers that insist on it.
var kexPreference = []string{
	ssh.KeyExchangeCurve25519,
	ssh.KeyExchangeECDHP256,
	ssh.KeyExchangeECDHP384,
	ssh.KeyExchangeECDHP521,
	ssh.KeyExchangeDH14SHA256,
	ssh.KeyExchangeDH16SHA512,
	ssh.KeyExchangeMLKEM768X25519,
}

// Prober probes targets with one set of options. It is safe for concurrent
// use; build one per run so key files and known_hosts are parsed once.
type Prober struct {
	opts    Options
	dialer  net.Dialer
	configs sync.Map // configKey -> *ssh.ClientConfig template
}

type configKey struct {
	user, keyPath string
}

// NewProber applies defaults to opts and returns a Prober.
func NewProber(opts Options) *Prober {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Deadline <= 0 {
		opts.Deadline = DefaultDeadline
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.BatchInterval <= 0 {
		opts.BatchInterval = DefaultBatchInterval
	}
	if opts.HostKeys == nil {
		opts.HostKeys, _ = hostkey.NewChecker(hostkey.PolicyPin)
	}
	return &Prober{opts: opts}
}

// template returns the shared client config for (user, key path). The
// host-key callback is filled in per probe.
func (p *Prober) template(ctx context.Context, t *Target) (*ssh.ClientConfig, error) {
	k := configKey{t.User, t.KeyPath}
	if c, ok := p.configs.Load(k); ok {
		return c.(*ssh.ClientConfig), nil
	}
	if p.opts.Auth == nil {
		return nil, errors.New("no SSH credentials configured")
	}
	m, err := p.opts.Auth.methodFor(ctx, t.KeyPath)
	if err != nil {
		if t.KeyPath != "" {
			return nil, &serverKeyError{err}
		}
		return nil, err
	}
	if m == nil {
		return nil, errors.New("no SSH credentials configured")
	}
	c := &ssh.ClientConfig{
		Config:        ssh.Config{KeyExchanges: kexPreference},
		User:          t.User,
		Auth:          []ssh.AuthMethod{m},
		ClientVersion: "SSH-2.0-heartbeat",
	}
	// After a partial success, stop with a message naming the method the
	// server still wants.
	c.AuthCallback = stopAtUnsupportedMethod
	actual, _ := p.configs.LoadOrStore(k, c)
	return actual.(*ssh.ClientConfig), nil
}

// serverKeyError is a target's own key file (Target.KeyPath) failing to
// load; the message already names the path and the reason.
type serverKeyError struct{ err error }

func (e *serverKeyError) Error() string { return e.err.Error() }
func (e *serverKeyError) Unwrap() error { return e.err }

type phase uint8

const (
	phaseDial phase = iota
	phaseHandshake
	phaseAuth
	phaseExec
)

func (ph phase) String() string {
	switch ph {
	case phaseDial:
		return "connect"
	case phaseHandshake:
		return "handshake"
	case phaseAuth:
		return "authentication"
	default:
		return "command"
	}
}

// probeState is everything one probe records; one allocation per probe.
type probeState struct {
	sniffConn
	target   *Target
	hostKeys hostkey.Host
	hostKey  []byte
	kexDone  time.Time
}

func (st *probeState) checkHostKey(_ string, _ net.Addr, key ssh.PublicKey) error {
	st.kexDone = time.Now()
	st.hostKey = key.Marshal()
	return st.hostKeys.Check(key)
}

// Probe runs one probe against t. ctx bounds it in addition to
// Options.Timeout; cancelling ctx ends the probe promptly even mid-read.
func (p *Prober) Probe(ctx context.Context, t *Target) Result {
	return p.probe(ctx, ctx, t)
}

func (p *Prober) probe(runCtx, ctx context.Context, t *Target) Result {
	r := Result{ServerID: t.ServerID}
	if err := expired(ctx); err != nil {
		r.Class = failure.Timeout
		r.Message = "not started before the run deadline"
		if !errors.Is(err, context.DeadlineExceeded) {
			r.Message = "not started: run cancelled"
		}
		return r
	}
	tmpl, err := p.template(ctx, t)
	if err != nil {
		r.Class = failure.Auth
		if _, ok := err.(*serverKeyError); ok {
			// This server's own key: its fault alone, the run goes on.
			r.Class = failure.Key
		}
		r.Message = oneLine(err.Error())
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	// The host's known keys (known_hosts lines or the pin) decide which
	// host-key algorithms to offer, as ssh does, so a server with several
	// host keys presents one that can be verified.
	st := &probeState{target: t}
	if t.PinnedIsCA {
		st.hostKeys = p.opts.HostKeys.HostCA(t.Host, t.Port, t.PinnedHostKey)
	} else {
		st.hostKeys = p.opts.HostKeys.Host(t.Host, t.Port, t.PinnedHostKey)
	}

	addr := net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	start := time.Now()
	dial := p.dialer.DialContext
	if p.opts.Dial != nil {
		dial = p.opts.Dial
	}
	conn, err := dial(ctx, "tcp", addr)
	r.Phases.Dial = time.Since(start)
	if err != nil {
		r.Class, r.Message = classify(err, phaseDial, st, runCtx, ctx, p.opts.Timeout)
		return r
	}
	// ssh.Dial's timeout covers only the TCP connect. An absolute
	// deadline on the socket bounds banner, kex, auth and exec, so a
	// tarpit or a byte-trickling peer cannot hold this worker longer than
	// Timeout; the AfterFunc does the same when the run is cancelled.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	st.Conn = conn

	cfg := *tmpl
	cfg.HostKeyCallback = st.checkHostKey
	cfg.HostKeyAlgorithms = st.hostKeys.Algorithms()
	hs := time.Now()
	sc, chans, reqs, err := ssh.NewClientConn(&st.sniffConn, addr, &cfg)
	end := time.Now()
	r.HostKey = st.hostKey
	// Each phase ends where the next begins; a phase the probe never
	// finished runs to the end of the handshake attempt.
	kexStart, kexEnd := end, end
	if !st.bannerAt.IsZero() {
		kexStart = st.bannerAt
	}
	if !st.kexDone.IsZero() {
		kexEnd = st.kexDone
		r.Phases.Auth = end.Sub(st.kexDone)
	}
	r.Phases.Banner = kexStart.Sub(hs)
	r.Phases.Kex = kexEnd.Sub(kexStart)
	r.Latency = end.Sub(hs)
	if err != nil {
		ph := phaseHandshake
		if !st.kexDone.IsZero() {
			ph = phaseAuth
		}
		r.Class, r.Message = classify(err, ph, st, runCtx, ctx, p.opts.Timeout)
		if r.Class == failure.Auth && strings.HasPrefix(r.Message, authRejected) {
			// Say which keys the server refused: with an agent and key
			// files that is not obvious.
			if keys := p.opts.Auth.offered(t.KeyPath); keys != "" {
				r.Message = oneLine(r.Message + "; offered " + keys)
			}
		}
		return r
	}
	// The client answers the server's global requests and channel opens
	// while the session is torn down; closeSession says goodbye the way
	// OpenSSH does, so sshd logs a clean disconnect.
	client := ssh.NewClient(sc, chans, reqs)
	defer closeSession(client.Conn, conn, deadline)
	if p.opts.Exec == "" {
		// Login succeeded: that is the proof of life.
		r.OK = true
		return r
	}
	es := time.Now()
	err = runCommand(client, p.opts.Exec)
	r.Phases.Exec = time.Since(es)
	if err != nil {
		r.Class, r.Message = classify(err, phaseExec, st, runCtx, ctx, p.opts.Timeout)
		return r
	}
	r.OK = true
	return r
}

// expired is ctx.Err(), but also reports a deadline that has passed and
// whose timer has not fired yet. Socket deadlines are set to the same
// instant as the context's, and the kernel-side timeout can win the race
// against the context timer; without this a probe cut short by the run
// deadline would look like an ordinary slow peer.
func expired(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// sniffConn watches the bytes the SSH library reads before the version
// line, to tell a peer that is not SSH (an HTTP server, a TLS port) from an
// SSH server that hangs up.
//
// It also reads ahead while the library reads the version exchange one
// byte per call: without it each byte of the peer's banner costs a read
// syscall (strace over 500 probes: 39 reads per probe without, 13 with).
// Everything the library reads afterwards
// goes through Read too, so no read-ahead byte is lost.
type sniffConn struct {
	net.Conn
	ahead     [256]byte
	aheadPos  int
	aheadEnd  int
	seen      int       // bytes read while looking for the banner
	linePos   int       // matched prefix of "SSH-" on this line; -1: no match
	sawBanner bool      // an "SSH-" line was seen
	bannerAt  time.Time // when the "SSH-" line arrived (the banner phase ends)
	first     [24]byte  // start of the first line, for messages
	nfirst    int
	firstDone bool
}

const sniffLimit = 8192

// read serves b from the read-ahead buffer, refilling it for the small
// reads of the version exchange and passing large reads straight through.
func (s *sniffConn) read(b []byte) (int, error) {
	if s.aheadPos < s.aheadEnd {
		n := copy(b, s.ahead[s.aheadPos:s.aheadEnd])
		s.aheadPos += n
		return n, nil
	}
	if len(b) >= len(s.ahead) {
		return s.Conn.Read(b)
	}
	n, err := s.Conn.Read(s.ahead[:])
	s.aheadPos, s.aheadEnd = 0, n
	m := copy(b, s.ahead[:n])
	s.aheadPos = m
	if m < n {
		// The caller gets the error once the buffered bytes are drained.
		return m, nil
	}
	return m, err
}

func (s *sniffConn) Read(b []byte) (int, error) {
	n, err := s.read(b)
	if s.sawBanner || s.seen >= sniffLimit {
		return n, err
	}
	for _, c := range b[:n] {
		s.seen++
		if !s.firstDone {
			if c == '\r' || c == '\n' || s.nfirst == len(s.first) {
				s.firstDone = true
			} else {
				s.first[s.nfirst] = c
				s.nfirst++
			}
		}
		switch {
		case c == '\n':
			s.linePos = 0
		case s.linePos >= 0 && c == "SSH-"[s.linePos]:
			s.linePos++
			if s.linePos == 4 {
				s.sawBanner, s.bannerAt = true, time.Now()
				return n, err
			}
		default:
			s.linePos = -1
		}
	}
	return n, err
}
