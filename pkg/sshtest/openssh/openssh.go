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
}

// Start runs sshd on a free loopback port, accepting authorizedKey (an
// authorized_keys line) for any user including root, with a fresh Ed25519
// host key. It stops when the test ends.
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
	s := &Server{Port: port, dir: dir, conf: filepath.Join(dir, "sshd_config")}
	cfg := extra + "\n" + fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
LogLevel VERBOSE
`, port, filepath.Join(dir, "host_ed25519"), filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys"))
	if err := os.WriteFile(s.conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

// RegenerateHostKey restarts sshd with a new host key, as a reinstalled
// server at the same address would present.
func (s *Server) RegenerateHostKey(t testing.TB) {
	t.Helper()
	s.stop()
	s.start(t)
}

// Log returns what sshd has logged, for failure messages.
func (s *Server) Log() string { return s.log.String() }

func (s *Server) start(t testing.TB) {
	t.Helper()
	key := filepath.Join(s.dir, "host_ed25519")
	_ = os.Remove(key)
	_ = os.Remove(key + ".pub")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
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
