package probe

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/sshtest"
)

const sshdPath = "/usr/sbin/sshd" // sshd refuses to start from a relative path

// requireSSHD skips the test when OpenSSH's sshd is not installed, unless
// CI=true, where a missing prerequisite must fail loudly.
func requireSSHD(t *testing.T) {
	t.Helper()
	_, err := os.Stat(sshdPath)
	_, kerr := exec.LookPath("ssh-keygen")
	if err == nil && kerr == nil {
		return
	}
	msg := fmt.Sprintf("OpenSSH server not available (%s: %v; ssh-keygen: %v): apt-get install openssh-server", sshdPath, err, kerr)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// lockedBuffer collects sshd's log output for failure messages.
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

type sshd struct {
	dir, config string
	port        int
	log         *lockedBuffer
	cmd         *exec.Cmd
}

func newSSHD(t *testing.T, authorizedKey []byte) *sshd {
	t.Helper()
	// Privilege separation needs /run/sshd; the package creates it at boot,
	// which a container never had.
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
	s := &sshd{dir: dir, config: filepath.Join(dir, "sshd_config"), port: port, log: &lockedBuffer{}}
	cfg := fmt.Sprintf(`Port %d
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
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// start generates a fresh host key and runs sshd until stop or test end.
func (s *sshd) start(t *testing.T) {
	t.Helper()
	key := filepath.Join(s.dir, "host_ed25519")
	_ = os.Remove(key)
	_ = os.Remove(key + ".pub")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	s.cmd = exec.Command(sshdPath, "-D", "-e", "-f", s.config)
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(s.stop)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
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

func (s *sshd) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func TestOpenSSHIntegration(t *testing.T) {
	requireSSHD(t)
	t.Parallel()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	key, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	d := newSSHD(t, key.AuthorizedKey())
	d.start(t)
	target := Target{ServerID: 1, Name: "openssh", Host: "127.0.0.1", Port: d.port, User: me.Username}
	opts := Options{Auth: NewAuth("test key", key.Signer), Exec: "true", Timeout: 10 * time.Second}
	ctx := context.Background()

	r := NewProber(opts).Probe(ctx, &target)
	if !r.OK || len(r.HostKey) == 0 {
		t.Fatalf("probe real sshd as %s: %+v\nsshd log:\n%s", me.Username, r, d.log.String())
	}
	t.Logf("ok: latency %v phases %+v", r.Latency, r.Phases)
	target.PinnedHostKey = r.HostKey

	wrong, _ := sshtest.NewClientKey()
	r = NewProber(Options{Auth: NewAuth("wrong key", wrong.Signer)}).Probe(ctx, &target)
	if r.Class != ClassAuth {
		t.Errorf("wrong user key: %+v", r)
	}

	// A reinstalled server: same address, new host key.
	d.stop()
	d.start(t)
	r = NewProber(opts).Probe(ctx, &target)
	if r.Class != ClassHostKeyMismatch || bytes.Equal(r.HostKey, target.PinnedHostKey) || len(r.HostKey) == 0 {
		t.Errorf("after host key change: %+v", r)
	}
}
