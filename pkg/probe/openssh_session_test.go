package probe

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/stacksense/heartbeat/pkg/failure"
	"github.com/stacksense/heartbeat/pkg/sshtest"
	"github.com/stacksense/heartbeat/pkg/sshtest/openssh"
)

// currentUser is the login the real sshd accepts in these tests.
func currentUser(t *testing.T) string {
	t.Helper()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return me.Username
}

// waitForLog waits (bounded) until sshd's log matches re: sshd logs the
// end of a session from its own process after the client has gone.
func waitForLog(t *testing.T, d *openssh.Server, re *regexp.Regexp) bool {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if re.MatchString(d.Log()) {
			return true
		}
	}
	return false
}

// A probe ends its session the way `ssh host true` does, with
// SSH_MSG_DISCONNECT (reason 11, "disconnected by user"), so sshd logs a
// clean disconnect at its default level instead of a broken pipe or a
// reset on every probe.
func TestOpenSSHCleanDisconnect(t *testing.T) {
	openssh.Require(t)
	t.Parallel()
	key, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, exec := range []string{"", "true"} {
		t.Run("exec="+exec, func(t *testing.T) {
			t.Parallel()
			d := openssh.StartConfig(t, key.AuthorizedKey(), "LogLevel INFO")
			target := Target{ServerID: 1, Host: "127.0.0.1", Port: d.Port, User: currentUser(t)}
			r := NewProber(Options{Auth: NewAuth("test key", key.Signer), Exec: exec}).Probe(context.Background(), &target)
			if !r.OK {
				t.Fatalf("probe: %+v\nsshd log:\n%s", r, d.Log())
			}
			clean := regexp.MustCompile(`Received disconnect from 127\.0\.0\.1 port \d+:11: disconnected by user`)
			if !waitForLog(t, d, clean) {
				t.Errorf("sshd logged no clean disconnect:\n%s", d.Log())
			}
			// sshd logs the teardown right after the disconnect line; give
			// a broken pipe the same chance to appear.
			waitForLog(t, d, regexp.MustCompile(`Disconnected from user`))
			// Only the probe's session counts. The helper's own readiness
			// dial logs "Connection closed" too, and on a loaded machine
			// sshd's pre-auth child may log it after the probe's login:
			// lines naming another client port, and the readiness dial's
			// kex_exchange_identification line, are not the probe's.
			_, session, _ := strings.Cut(d.Log(), "Accepted publickey")
			port := regexp.MustCompile(`port (\d+)`).FindStringSubmatch(session)
			for _, line := range strings.Split(session, "\n") {
				if m := regexp.MustCompile(`port (\d+)`).FindStringSubmatch(line); (m != nil && port != nil && m[1] != port[1]) ||
					strings.Contains(line, "kex_exchange_identification") {
					continue
				}
				for _, noise := range []string{"Broken pipe", "Connection reset", "Connection closed"} {
					if strings.Contains(line, noise) {
						t.Errorf("sshd logged %q for the probe's session:\n%s", noise, d.Log())
					}
				}
			}
		})
	}
}

// keygen writes a new private key of the given type with ssh-keygen and
// returns its path and authorized_keys line.
func keygen(t *testing.T, typ string) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "id_"+typ)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", typ, "-N", "", "-f", p).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -t %s: %v: %s", typ, err, out)
	}
	pub, err := os.ReadFile(p + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return p, pub
}

// sshVerdict runs OpenSSH's client against d as ssh -o BatchMode=yes
// would in cron, with extra options, and reports whether it logged in.
func sshVerdict(t *testing.T, d *openssh.Server, env []string, args ...string) (bool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := []string{"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-p", strconv.Itoa(d.Port), "-l", currentUser(t)}
	cmd := exec.CommandContext(ctx, "ssh", append(append(base, args...), "127.0.0.1", "true")...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return err == nil, string(out)
}

// An RSA key on a server that accepts one RSA signature algorithm: the
// probe reaches ssh's verdict. OpenSSH 9.2's client signs with the first of
// its own preference (rsa-sha2-512, then rsa-sha2-256) that the server lists
// in server-sig-algs, and sshd 9.2 lists both whatever its
// PubkeyAcceptedAlgorithms, so ssh gets into an rsa-sha2-512-only server
// and is refused by an rsa-sha2-256-only one.
func TestOpenSSHRSAKeyOneSignatureAlgorithm(t *testing.T) {
	openssh.Require(t)
	t.Parallel()
	keyPath, pub := keygen(t, "rsa")
	for _, algo := range []string{"rsa-sha2-512", "rsa-sha2-256"} {
		t.Run(algo, func(t *testing.T) {
			t.Parallel()
			d := openssh.StartConfig(t, pub, "PubkeyAcceptedAlgorithms "+algo+",ssh-ed25519")
			sshOK, out := sshVerdict(t, d, nil, "-i", keyPath, "-o", "IdentitiesOnly=yes")
			if algo == "rsa-sha2-512" && !sshOK {
				t.Fatalf("the reference, ssh -i %s, did not log in: %s\nsshd log:\n%s", keyPath, out, d.Log())
			}
			auth, err := LoadAuth(context.Background(), AuthConfig{KeyPath: keyPath})
			if err != nil {
				t.Fatal(err)
			}
			defer auth.Close()
			target := Target{ServerID: 1, Host: "127.0.0.1", Port: d.Port, User: currentUser(t)}
			if r := NewProber(Options{Auth: auth}).Probe(context.Background(), &target); r.OK != sshOK {
				t.Errorf("server accepting only %s: ssh logged in: %v (%s); probe: %+v\nsshd log:\n%s", algo, sshOK, out, r, d.Log())
			}
		})
	}
}

// A key accepted as the first of two required methods: the message says
// so, where it used to say "tried none". ssh -o BatchMode=yes is refused
// too.
func TestOpenSSHPartialSuccess(t *testing.T) {
	openssh.Require(t)
	t.Parallel()
	key, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	d := openssh.StartConfig(t, key.AuthorizedKey(), "KbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive")
	target := Target{ServerID: 1, Host: "127.0.0.1", Port: d.Port, User: currentUser(t)}
	r := NewProber(Options{Auth: NewAuth("test key", key.Signer)}).Probe(context.Background(), &target)
	want := "publickey accepted, server also requires keyboard-interactive (not supported for monitoring)"
	if r.OK || r.Class != failure.Auth || r.Message != want {
		t.Errorf("probe: class %q message %q; want auth, %q\nsshd log:\n%s", r.Class, r.Message, want, d.Log())
	}
	// sshd writes its log line after answering, so the probe can be back
	// before the line is in the file.
	if !waitForLog(t, d, regexp.MustCompile(`Partial publickey for`)) {
		t.Errorf("sshd did not accept the key in part:\n%s", d.Log())
	}
}

// A failed --exec keeps what the command said: here the probe user's
// shell is nologin (sshd's ForceCommand runs it for every command).
func TestOpenSSHExecFailureKeepsOutput(t *testing.T) {
	openssh.Require(t)
	t.Parallel()
	key, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	d := openssh.StartConfig(t, key.AuthorizedKey(), "ForceCommand /usr/sbin/nologin")
	target := Target{ServerID: 1, Host: "127.0.0.1", Port: d.Port, User: currentUser(t)}
	r := NewProber(Options{Auth: NewAuth("test key", key.Signer), Exec: "true"}).Probe(context.Background(), &target)
	want := `command exited with status 1: "This account is currently not available."`
	if r.Class != failure.Exec || r.Message != want {
		t.Errorf("probe: class %q message %q; want exec, %q", r.Class, r.Message, want)
	}
}

// sshd past its MaxStartups limit drops new connections (after writing
// "Exceeded MaxStartups"): the server is up, so this is throttled, not
// "not SSH".
func TestOpenSSHMaxStartupsThrottled(t *testing.T) {
	openssh.Require(t)
	t.Parallel()
	key, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	// 1:100:1: with one unauthenticated connection open, drop every new
	// one.
	d := openssh.StartConfig(t, key.AuthorizedKey(), "MaxStartups 1:100:1")
	// Hold one unauthenticated connection. Reading its banner proves sshd
	// has accepted and counted it; until sshd has reaped the helper's own
	// readiness dial, the held one may be dropped itself, so retry.
	var held net.Conn
	for deadline := time.Now().Add(5 * time.Second); held == nil; {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(d.Port)))
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && strings.HasPrefix(line, "SSH-") {
			held = c
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("could not hold a connection: %q %v", line, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer held.Close()
	target := Target{ServerID: 1, Host: "127.0.0.1", Port: d.Port, User: currentUser(t)}
	r := NewProber(Options{Auth: NewAuth("test key", key.Signer)}).Probe(context.Background(), &target)
	if r.Class != failure.Throttled || !strings.Contains(r.Message, "MaxStartups") {
		t.Errorf("probe past MaxStartups: %+v\nsshd log:\n%s", r, d.Log())
	}
	if ok, out := sshVerdict(t, d, nil); ok {
		t.Errorf("the reference, ssh, logged in past MaxStartups: %s", out)
	}
}

// startSSHAgent runs a real ssh-agent on a socket in the test's temp dir
// holding the given key files (ssh-add), and returns the socket.
func startSSHAgent(t *testing.T, keyFiles ...string) string {
	t.Helper()
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agentCmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agentCmd.Start(); err != nil {
		t.Fatalf("ssh-agent: %v", err)
	}
	t.Cleanup(func() { _ = agentCmd.Process.Kill(); _ = agentCmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent did not create its socket")
		}
	}
	for _, f := range keyFiles {
		add := exec.Command("ssh-add", f)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add %s: %v: %s", f, err, out)
		}
	}
	return sock
}

// With an agent holding a key the server refuses, the key file in
// ~/.ssh is still offered after it, as ssh does; a refusal names every
// key offered.
func TestOpenSSHAgentThenKeyFiles(t *testing.T) {
	openssh.Require(t)
	t.Parallel()
	agentKey, _ := keygen(t, "ed25519")
	sock := startSSHAgent(t, agentKey)
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	fileKey, filePub := keygen(t, "ed25519")
	homeKey := filepath.Join(home, ".ssh", "id_ed25519")
	data, _ := os.ReadFile(fileKey)
	if err := os.WriteFile(homeKey, data, 0o600); err != nil {
		t.Fatal(err)
	}
	d := openssh.StartConfig(t, filePub, "LogLevel INFO")
	// ssh finds ~/.ssh through the password database, not $HOME, so the
	// reference names the same file.
	if ok, out := sshVerdict(t, d, []string{"SSH_AUTH_SOCK=" + sock}, "-o", "IdentityFile="+homeKey); !ok {
		t.Fatalf("the reference, ssh with the agent and %s, did not log in: %s\nsshd log:\n%s", homeKey, out, d.Log())
	}
	auth, err := LoadAuth(context.Background(), AuthConfig{AgentSocket: sock, HomeDir: home})
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	target := Target{ServerID: 1, Host: "127.0.0.1", Port: d.Port, User: currentUser(t)}
	if r := NewProber(Options{Auth: auth}).Probe(context.Background(), &target); !r.OK {
		t.Errorf("probe with the agent's key refused and ~/.ssh/id_ed25519 accepted: %+v (credentials %s)\nsshd log:\n%s", r, auth.Source(), d.Log())
	}

	// A server that accepts neither: the message names both.
	other, _ := sshtest.NewClientKey()
	d2 := openssh.StartConfig(t, other.AuthorizedKey(), "")
	target.Port = d2.Port
	r := NewProber(Options{Auth: auth}).Probe(context.Background(), &target)
	agentPub, _ := os.ReadFile(agentKey + ".pub")
	pk, _, _, _, _ := ssh.ParseAuthorizedKey(agentPub)
	for _, want := range []string{"authentication rejected", "agent " + ssh.FingerprintSHA256(pk), homeKey} {
		if r.Class != failure.Auth || !strings.Contains(r.Message, want) {
			t.Errorf("refused by both: %+v; want auth naming %s", r, want)
		}
	}
}
