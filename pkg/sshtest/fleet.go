// Package sshtest runs in-process SSH servers on loopback in every failure
// mode the prober must classify: ok, auth-reject, tarpit, slow, drop and
// not-ssh. It serves tests, the sshfleet command, the demo and benchmarks,
// and is built to hold 10,000 listeners in one process: one listener and one
// accept goroutine per server, a goroutine per connection, and server
// configs shared wherever the host key is.
package sshtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Mode is how a server behaves towards a client.
type Mode string

// The server modes.
const (
	// ModeOK completes the handshake, accepts authorised keys and runs
	// exec requests ("false" exits 1, anything else exits 0).
	ModeOK Mode = "ok"
	// ModeAuthReject completes key exchange and rejects every credential.
	ModeAuthReject Mode = "auth-reject"
	// ModeTarpit accepts TCP and never sends a byte.
	ModeTarpit Mode = "tarpit"
	// ModeSlow trickles its version banner over Config.SlowDelay, then
	// behaves like ModeOK.
	ModeSlow Mode = "slow"
	// ModeDrop sends its banner, reads the client's first packets and
	// closes the connection in the middle of key exchange.
	ModeDrop Mode = "drop"
	// ModeNotSSH answers like an HTTP server: a 400 response, then close.
	ModeNotSSH Mode = "not-ssh"
)

// Modes lists every mode, in documentation order.
var Modes = []Mode{ModeOK, ModeAuthReject, ModeTarpit, ModeSlow, ModeDrop, ModeNotSSH}

// ParseMode parses a mode name.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	names := make([]string, len(Modes))
	for i, m := range Modes {
		names[i] = string(m)
	}
	return "", fmt.Errorf("unknown server mode %q: want one of %s", s, strings.Join(names, ", "))
}

// Group is a number of servers sharing a mode.
type Group struct {
	Mode  Mode
	Count int
}

// ParseGroups parses a mixed-fleet spec like "ok=5,tarpit=1,auth-reject=1".
func ParseGroups(spec string) ([]Group, error) {
	var gs []Group
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, num, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("modes %q: %q is not mode=count", spec, part)
		}
		m, err := ParseMode(strings.TrimSpace(name))
		if err != nil {
			return nil, fmt.Errorf("modes %q: %w", spec, err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(num))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("modes %q: count %q is not a non-negative integer", spec, num)
		}
		gs = append(gs, Group{Mode: m, Count: n})
	}
	if len(gs) == 0 {
		return nil, fmt.Errorf("modes %q: no mode=count pairs", spec)
	}
	return gs, nil
}

// Config describes a fleet.
type Config struct {
	// Groups lists the servers to start, in port order.
	Groups []Group
	// BasePort is the first port; servers take consecutive ports. Zero
	// means each server gets an ephemeral port.
	BasePort int
	// Host is the listen address; default 127.0.0.1.
	Host string
	// User, if set, is the only user ok servers accept, and fills the CSV
	// user column. Empty means any user is accepted.
	User string
	// AuthorizedKeys are the client keys ok servers accept. Empty means
	// any public key is accepted (handy for demos; tests set it).
	AuthorizedKeys []ssh.PublicKey
	// KeyColumn fills the CSV key column (a private key path the prober
	// should use); empty by default.
	KeyColumn string
	// SlowDelay is how long slow servers take to send their banner;
	// default 2s.
	SlowDelay time.Duration
	// SharedHostKey gives every server the same host key, which saves
	// memory and start-up time for large benchmark fleets.
	SharedHostKey bool
	// HandshakeTimeout bounds a server-side handshake so abandoned client
	// connections do not pile up; default 30s.
	HandshakeTimeout time.Duration
}

// Server is one listener in a fleet.
type Server struct {
	Name string
	Mode Mode
	Host string
	Port int

	ln     net.Listener
	config atomic.Pointer[serverState]
	// accepts counts TCP connections accepted, so tests can tell how
	// often the server was probed.
	accepts atomic.Int64
	// previous is the state before the last RotateHostKey, for
	// RestoreHostKey; only the test goroutine touches it.
	previous *serverState
}

// serverState is swapped atomically by RotateHostKey so connections in
// progress keep the config they started with.
type serverState struct {
	config  *ssh.ServerConfig
	hostKey ssh.PublicKey
	signer  ssh.Signer // the host key, for CertifyHostKey
}

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Accepts returns how many TCP connections the server has accepted.
func (s *Server) Accepts() int64 { return s.accepts.Load() }

// HostKey returns the server's current public host key.
func (s *Server) HostKey() ssh.PublicKey { return s.config.Load().hostKey }

// Fleet is a set of running servers. Close it to stop them.
type Fleet struct {
	cfg     Config
	servers []*Server

	authorized map[string]bool // wire-format keys

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Start listens for every server in cfg and serves until Close or until ctx
// is cancelled. With a non-zero BasePort, a port that cannot be bound fails
// the whole start with an error naming the port.
func Start(ctx context.Context, cfg Config) (*Fleet, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.SlowDelay <= 0 {
		cfg.SlowDelay = 2 * time.Second
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 30 * time.Second
	}
	total := 0
	for _, g := range cfg.Groups {
		if g.Count < 0 {
			return nil, fmt.Errorf("start fleet: negative count for mode %s", g.Mode)
		}
		if _, err := ParseMode(string(g.Mode)); err != nil {
			return nil, fmt.Errorf("start fleet: %w", err)
		}
		total += g.Count
	}
	if cfg.BasePort != 0 && (cfg.BasePort < 1 || cfg.BasePort+total-1 > 65535) {
		return nil, fmt.Errorf("start fleet: ports %d..%d out of range 1..65535", cfg.BasePort, cfg.BasePort+total-1)
	}
	f := &Fleet{cfg: cfg, conns: make(map[net.Conn]struct{}), authorized: make(map[string]bool)}
	for _, k := range cfg.AuthorizedKeys {
		f.authorized[string(k.Marshal())] = true
	}

	var shared ssh.Signer
	if cfg.SharedHostKey {
		s, err := newHostSigner()
		if err != nil {
			return nil, fmt.Errorf("start fleet: %w", err)
		}
		shared = s
	}
	single := len(cfg.Groups) == 1
	lc := net.ListenConfig{}
	idx := 0
	for _, g := range cfg.Groups {
		for n := 1; n <= g.Count; n++ {
			name := fmt.Sprintf("srv-%05d", idx+1)
			if !single {
				name = fmt.Sprintf("%s-%05d", g.Mode, n)
			}
			port := 0
			if cfg.BasePort != 0 {
				port = cfg.BasePort + idx
			}
			addr := net.JoinHostPort(cfg.Host, strconv.Itoa(port))
			ln, err := lc.Listen(ctx, "tcp", addr)
			if err != nil {
				f.Close()
				if cfg.BasePort != 0 {
					return nil, fmt.Errorf("start fleet: server %d of %d (%s) on %s: %w; pick another base port or use 0 for ephemeral ports", idx+1, total, name, addr, err)
				}
				return nil, fmt.Errorf("start fleet: server %d of %d (%s): %w", idx+1, total, name, err)
			}
			srv := &Server{Name: name, Mode: g.Mode, Host: cfg.Host, Port: ln.Addr().(*net.TCPAddr).Port, ln: ln}
			signer := shared
			if signer == nil {
				if signer, err = newHostSigner(); err != nil {
					ln.Close()
					f.Close()
					return nil, fmt.Errorf("start fleet: %w", err)
				}
			}
			srv.config.Store(f.newState(g.Mode, signer))
			f.servers = append(f.servers, srv)
			idx++
		}
	}
	for _, s := range f.servers {
		f.wg.Add(1)
		go f.serve(s)
	}
	// The fleet lives as long as ctx; Close also stops it early.
	context.AfterFunc(ctx, func() { _ = f.Close() })
	return f, nil
}

func newHostSigner() (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate host key: %w", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("host key signer: %w", err)
	}
	return s, nil
}

func (f *Fleet) newState(mode Mode, signer ssh.Signer) *serverState {
	sc := &ssh.ServerConfig{ServerVersion: "SSH-2.0-heartbeat-sshtest"}
	switch mode {
	case ModeAuthReject:
		sc.PublicKeyCallback = func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
			return nil, errors.New("rejected")
		}
		sc.PasswordCallback = func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) {
			return nil, errors.New("rejected")
		}
	default:
		sc.PublicKeyCallback = f.checkKey
	}
	sc.AddHostKey(signer)
	return &serverState{config: sc, hostKey: signer.PublicKey(), signer: signer}
}

func (f *Fleet) checkKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	if f.cfg.User != "" && meta.User() != f.cfg.User {
		return nil, fmt.Errorf("user %q not accepted", meta.User())
	}
	if len(f.authorized) > 0 && !f.authorized[string(key.Marshal())] {
		return nil, errors.New("key not authorized")
	}
	return nil, nil
}

// Len returns the number of servers.
func (f *Fleet) Len() int { return len(f.servers) }

// Server returns server i (0-based, in port order).
func (f *Fleet) Server(i int) *Server { return f.servers[i] }

// Servers returns all servers in port order. The slice must not be modified.
func (f *Fleet) Servers() []*Server { return f.servers }

// RotateHostKey gives server i a fresh Ed25519 host key, as if the machine
// had been reinstalled, and returns the new public key. New connections
// see the new key.
func (f *Fleet) RotateHostKey(i int) (ssh.PublicKey, error) {
	if i < 0 || i >= len(f.servers) {
		return nil, fmt.Errorf("rotate host key: server %d out of range 0..%d", i, len(f.servers)-1)
	}
	signer, err := newHostSigner()
	if err != nil {
		return nil, fmt.Errorf("rotate host key: %w", err)
	}
	s := f.servers[i]
	s.previous = s.config.Swap(f.newState(s.Mode, signer))
	return signer.PublicKey(), nil
}

// CertifyHostKey has ca sign a host certificate for server i's current
// host key, valid for principals from validAfter to validBefore (zero
// times: no limit), and makes the server offer it beside the plain key, as
// sshd does with a HostCertificate line: a client that asks for a
// certificate algorithm first gets the certificate. It returns the
// certificate. RotateHostKey drops it.
func (f *Fleet) CertifyHostKey(i int, ca ssh.Signer, principals []string, validAfter, validBefore time.Time) (*ssh.Certificate, error) {
	if i < 0 || i >= len(f.servers) {
		return nil, fmt.Errorf("certify host key: server %d out of range 0..%d", i, len(f.servers)-1)
	}
	s := f.servers[i]
	cur := s.config.Load()
	cert := &ssh.Certificate{
		Key: cur.hostKey, CertType: ssh.HostCert, KeyId: s.Name,
		ValidPrincipals: principals, ValidBefore: ssh.CertTimeInfinity,
	}
	if !validAfter.IsZero() {
		cert.ValidAfter = uint64(validAfter.Unix())
	}
	if !validBefore.IsZero() {
		cert.ValidBefore = uint64(validBefore.Unix())
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		return nil, fmt.Errorf("certify host key: %w", err)
	}
	certSigner, err := ssh.NewCertSigner(cert, cur.signer)
	if err != nil {
		return nil, fmt.Errorf("certify host key: %w", err)
	}
	st := f.newState(s.Mode, cur.signer)
	st.config.AddHostKey(certSigner)
	s.config.Store(st)
	return cert, nil
}

// RestoreHostKey gives server i back the host key it had before its last
// RotateHostKey, as a server that briefly presented another key (a
// failover, a misrouted address) would.
func (f *Fleet) RestoreHostKey(i int) error {
	if i < 0 || i >= len(f.servers) || f.servers[i].previous == nil {
		return fmt.Errorf("restore host key: server %d was not rotated", i)
	}
	s := f.servers[i]
	s.config.Store(s.previous)
	s.previous = nil
	return nil
}

// CSV writes the fleet as an import file with header name,host,port,user,key.
func (f *Fleet) CSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"name", "host", "port", "user", "key"}); err != nil {
		return fmt.Errorf("write fleet csv: %w", err)
	}
	for _, s := range f.servers {
		if err := cw.Write([]string{s.Name, s.Host, strconv.Itoa(s.Port), f.cfg.User, f.cfg.KeyColumn}); err != nil {
			return fmt.Errorf("write fleet csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write fleet csv: %w", err)
	}
	return nil
}

// Counts returns how many servers run in each mode, sorted by mode name.
func (f *Fleet) Counts() []Group {
	m := map[Mode]int{}
	for _, s := range f.servers {
		m[s.Mode]++
	}
	out := make([]Group, 0, len(m))
	for k, v := range m {
		out = append(out, Group{Mode: k, Count: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Mode < out[j].Mode })
	return out
}

// Close stops every listener, closes open connections and waits for the
// server goroutines to finish. It is safe to call more than once.
func (f *Fleet) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		f.wg.Wait()
		return nil
	}
	f.closed = true
	for _, s := range f.servers {
		s.ln.Close()
	}
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	return nil
}

func (f *Fleet) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Fleet) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	c.Close()
}

func (f *Fleet) serve(s *Server) {
	defer f.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary errors (EMFILE under a large benchmark) must not
			// kill the listener; back off briefly instead.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		s.accepts.Add(1)
		if !f.track(c) {
			c.Close()
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.untrack(c)
			f.handle(s, c)
		}()
	}
}

func (f *Fleet) handle(s *Server, c net.Conn) {
	switch s.Mode {
	case ModeTarpit:
		// Hold the connection silently until the client or Close ends it.
		_, _ = io.Copy(io.Discard, c)
	case ModeNotSSH:
		// Like an HTTP server handed an SSH banner: read the "request"
		// line, answer 400 and close.
		_ = c.SetDeadline(time.Now().Add(f.cfg.HandshakeTimeout))
		buf := make([]byte, 256)
		_, _ = c.Read(buf)
		_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request")
	case ModeDrop:
		_ = c.SetDeadline(time.Now().Add(f.cfg.HandshakeTimeout))
		if _, err := io.WriteString(c, "SSH-2.0-heartbeat-sshtest\r\n"); err != nil {
			return
		}
		// Read the client's banner and KEXINIT, then hang up mid-kex.
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
	case ModeSlow:
		f.serveSSH(s, &trickleConn{Conn: c, delay: f.cfg.SlowDelay})
	default:
		f.serveSSH(s, c)
	}
}

func (f *Fleet) serveSSH(s *Server, c net.Conn) {
	st := s.config.Load()
	_ = c.SetDeadline(time.Now().Add(f.cfg.HandshakeTimeout + f.cfg.SlowDelay))
	conn, chans, reqs, err := ssh.NewServerConn(c, st.config)
	if err != nil {
		return
	}
	defer conn.Close()
	// Sessions are short (an exec of "true"); keep a generous deadline so
	// a vanished client cannot hold the goroutine forever.
	_ = c.SetDeadline(time.Now().Add(f.cfg.HandshakeTimeout))
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go serveSession(ch, creqs)
	}
}

// serveSession answers exec and shell requests with an exit status and
// refuses everything else except harmless env/pty requests.
func serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		switch req.Type {
		case "exec", "shell":
			var cmd struct{ Command string }
			if req.Type == "exec" {
				if err := ssh.Unmarshal(req.Payload, &cmd); err != nil {
					_ = req.Reply(false, nil)
					continue
				}
			}
			_ = req.Reply(true, nil)
			status := uint32(0)
			if strings.TrimSpace(cmd.Command) == "false" {
				status = 1
			}
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
			return
		case "env", "pty-req":
			_ = req.Reply(true, nil)
		default:
			_ = req.Reply(false, nil)
		}
	}
}

// trickleConn spreads its first Write (the version banner) over delay, one
// byte at a time, so a client sees a live but very slow peer.
type trickleConn struct {
	net.Conn
	delay time.Duration
	done  bool
}

func (t *trickleConn) Write(p []byte) (int, error) {
	if t.done || len(p) == 0 {
		return t.Conn.Write(p)
	}
	t.done = true
	step := t.delay / time.Duration(len(p))
	for i := range p {
		if _, err := t.Conn.Write(p[i : i+1]); err != nil {
			return i, err
		}
		time.Sleep(step)
	}
	return len(p), nil
}
