// Package openssh runs a real OpenSSH sshd (Debian's openssh-server) on a
// loopback port for end-to-end tests, with its own config, host key and
// authorized_keys in the test's temp dir.
package openssh

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SSHDPath is where Debian installs sshd; sshd refuses to start from a
// relative path.
const SSHDPath = "/usr/sbin/sshd"

// Require skips the test when sshd or ssh-keygen is missing, unless
// CI=true, where a missing prerequisite must fail.
func Require(t testing.TB) {
	t.Helper()
	_, err := os.Stat(SSHDPath)
	_, kerr := exec.LookPath("ssh-keygen")
	if err == nil && kerr == nil {
		return
	}
	msg := fmt.Sprintf("OpenSSH server not available (%s: %v; ssh-keygen: %v): apt-get install openssh-server", SSHDPath, err, kerr)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Server is a running sshd.
type Server struct {
	Port int
	dir  string
	conf string
	log  lockedBuffer
	cmd  *exec.Cmd
	// certs: HostCertificate lines for every host key (CertifyHostKeys).
	certs bool
	// extra: sshd_config lines that come first (StartConfig).
	extra string
}

// HostKeyTypes are the host keys every Server has, in the order sshd lists
// them (OpenSSH's default set), so tests can exercise algorithm negotiation.
var HostKeyTypes = []string{"ed25519", "ecdsa", "rsa"}

// Start runs sshd on a free loopback port, accepting authorizedKey (an
// authorized_keys line) for any user including root, with fresh Ed25519,
// ECDSA and RSA host keys. It stops when the test ends.
func Start(t testing.TB, authorizedKey []byte) *Server {
	t.Helper()
	return StartConfig(t, authorizedKey, "")
}

// StartConfig is Start with extra sshd_config lines (LogLevel INFO,
// PubkeyAcceptedAlgorithms, AuthenticationMethods, MaxStartups...). They
// come first, and for most keywords sshd uses the first value it reads, so
// they override the defaults below.
func StartConfig(t testing.TB, authorizedKey []byte, extra string) *Server {
	t.Helper()
	Require(t)
	// Privilege separation needs /run/sshd, which the package creates at
	// boot and a container never booted.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Skipf("cannot create /run/sshd (need root?): %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), authorizedKey, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{Port: port, dir: dir, conf: filepath.Join(dir, "sshd_config"), extra: extra}
	s.genKeys(t)
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

func (s *Server) writeConfig(t testing.TB) {
	t.Helper()
	var keys string
	for _, typ := range HostKeyTypes {
		keys += "HostKey " + s.HostKeyPath(typ) + "\n"
		if s.certs {
			keys += "HostCertificate " + s.HostKeyPath(typ) + "-cert.pub\n"
		}
	}
	cfg := s.extra + "\n" + fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
%sPidFile %s
AuthorizedKeysFile %s
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
LogLevel VERBOSE
`, s.Port, keys, filepath.Join(s.dir, "sshd.pid"), filepath.Join(s.dir, "authorized_keys"))
	if err := os.WriteFile(s.conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// HostKeyPath is the private host key file of typ (one of HostKeyTypes);
// the public key is beside it with ".pub" appended.
func (s *Server) HostKeyPath(typ string) string {
	return filepath.Join(s.dir, "host_"+typ)
}

// CertifyHostKeys signs every host key with the CA private key at caKey
// (ssh-keygen -s -h) for the given principals (comma-separated) and
// validity interval (ssh-keygen -V syntax, e.g. "-5m:+1h"), then restarts
// sshd with HostCertificate lines, so it offers certificates as well as
// the plain keys.
func (s *Server) CertifyHostKeys(t testing.TB, caKey, principals, validity string) {
	t.Helper()
	for _, typ := range HostKeyTypes {
		args := []string{"-q", "-s", caKey, "-h", "-I", "sshtest-" + typ, "-V", validity}
		if principals != "" {
			args = append(args, "-n", principals)
		}
		args = append(args, s.HostKeyPath(typ)+".pub")
		if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %v: %v: %s", args, err, out)
		}
	}
	s.certs = true
	s.stop()
	s.start(t)
}

// RegenerateHostKey restarts sshd with a new host key, as a reinstalled
// server at the same address would present.
func (s *Server) RegenerateHostKey(t testing.TB) {
	t.Helper()
	s.stop()
	s.genKeys(t)
	s.start(t)
}

// Log returns what sshd has logged, for failure messages.
func (s *Server) Log() string { return s.log.String() }

// genKeys makes fresh host keys of every type (RSA at 2048 bits: key
// generation time is test time, and the size does not matter here) and
// drops any certificates.
func (s *Server) genKeys(t testing.TB) {
	t.Helper()
	for _, typ := range HostKeyTypes {
		key := s.HostKeyPath(typ)
		_ = os.Remove(key)
		_ = os.Remove(key + ".pub")
		_ = os.Remove(key + "-cert.pub")
		args := []string{"-q", "-t", typ, "-N", "", "-f", key}
		if typ == "rsa" {
			args = append(args, "-b", "2048")
		}
		if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	s.certs = false
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	s.writeConfig(t)
	s.cmd = exec.Command(SSHDPath, "-D", "-e", "-f", s.conf)
	s.cmd.Stderr = &s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s: %v\nsshd log:\n%s", addr, err, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// lockedBuffer collects sshd's log; sshd writes from its own goroutine.
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

// Keyscan returns `ssh-keyscan -p PORT 127.0.0.1` output: one line per host
// key, named "[127.0.0.1]:PORT" as ssh-keyscan writes it.
func (s *Server) Keyscan(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("ssh-keyscan", "-p", strconv.Itoa(s.Port), "127.0.0.1").Output()
	if err != nil {
		t.Fatalf("ssh-keyscan: %v", err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) != len(HostKeyTypes) {
		t.Fatalf("ssh-keyscan: want %d keys, got %q", len(HostKeyTypes), out)
	}
	return lines
}

// SSH runs the real OpenSSH client against the server the way the issue
// compares heartbeat with it: `ssh -o BatchMode=yes -o
// StrictHostKeyChecking=yes -o UserKnownHostsFile=knownHosts` (no global
// known_hosts, no ssh_config), logging in as user with the private key
// file identity and running `true`. host is what is dialled (usually
// "127.0.0.1"). It returns nil when ssh exits 0, else an error carrying
// ssh's stderr.
func (s *Server) SSH(t testing.TB, host, user, identity, knownHosts string) error {
	t.Helper()
	cmd := exec.Command("ssh", "-F", "/dev/null", "-i", identity,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
		"-p", strconv.Itoa(s.Port), user+"@"+host, "true")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ssh: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
