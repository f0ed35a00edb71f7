package probe

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/stacksense/heartbeat/pkg/failure"
	"github.com/stacksense/heartbeat/pkg/hostkey"
	"github.com/stacksense/heartbeat/pkg/sshtest"
	"github.com/stacksense/heartbeat/pkg/sshtest/openssh"
)

// hostKeyFixture is a real sshd with Ed25519, ECDSA and RSA host keys, a
// client key on disk for the real ssh, and the ssh-keyscan output.
type hostKeyFixture struct {
	d        *openssh.Server
	user     string
	identity string
	auth     *Auth
	scan     map[string]string // key type ("ssh-rsa", ...) -> keyscan line
	dir      string
}

func newHostKeyFixture(t *testing.T) *hostKeyFixture {
	t.Helper()
	openssh.Require(t)
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("ssh client not installed")
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	key, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &hostKeyFixture{user: me.Username, dir: t.TempDir(), auth: NewAuth("test key", key.Signer), scan: map[string]string{}}
	f.identity = filepath.Join(f.dir, "id_ed25519")
	if err := key.WriteFile(f.identity, nil); err != nil {
		t.Fatal(err)
	}
	f.d = openssh.Start(t, key.AuthorizedKey())
	for _, l := range f.d.Keyscan(t) {
		f.scan[strings.Fields(l)[1]] = l
	}
	return f
}

// file writes known_hosts lines to a fresh file.
func (f *hostKeyFixture) file(t *testing.T, lines ...string) string {
	t.Helper()
	p, err := os.CreateTemp(f.dir, "known_hosts")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
	p.Close()
	return p.Name()
}

// hostPub is the server's public host key of one ssh-keygen type.
func (f *hostKeyFixture) hostPub(t *testing.T, typ string) ssh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(f.d.HostKeyPath(typ) + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// compare probes with the known-hosts policy and runs the real ssh with
// the same file: both must reach want (true: logged in).
func (f *hostKeyFixture) compare(t *testing.T, name, kh string, want bool, wantClass failure.Class) Result {
	t.Helper()
	sshErr := f.d.SSH(t, "127.0.0.1", f.user, f.identity, kh)
	if (sshErr == nil) != want {
		t.Errorf("%s: real ssh: err %v, want ok=%v", name, sshErr, want)
	}
	checker, err := hostkey.NewChecker(hostkey.PolicyKnownHosts, kh)
	if err != nil {
		t.Fatal(err)
	}
	r := f.probe(checker, nil)
	if r.OK != want || (!want && r.Class != wantClass) {
		t.Errorf("%s: heartbeat %+v, want ok=%v class %q (real ssh: %v)", name, r, want, wantClass, sshErr)
	}
	return r
}

func (f *hostKeyFixture) probe(checker *hostkey.Checker, pinned []byte) Result {
	target := Target{ServerID: 1, Host: "127.0.0.1", Port: f.d.Port, User: f.user, PinnedHostKey: pinned}
	return f.probeTarget(checker, &target)
}

func (f *hostKeyFixture) probeTarget(checker *hostkey.Checker, target *Target) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return NewProber(Options{Auth: f.auth, HostKeys: checker, Timeout: 10 * time.Second}).Probe(ctx, target)
}

func presentedType(r Result) string {
	k, err := ssh.ParsePublicKey(r.HostKey)
	if err != nil {
		return "none"
	}
	return k.Type()
}

// Issue 9 item 1: a known_hosts file holding only one of the server's key
// types; ssh offers that type first (order_hostkeyalgs) and so must we.
func TestOpenSSHKnownHostsOneKeyType(t *testing.T) {
	t.Parallel()
	f := newHostKeyFixture(t)
	for _, typ := range []string{ssh.KeyAlgoRSA, ssh.KeyAlgoECDSA256, ssh.KeyAlgoED25519} {
		r := f.compare(t, "only "+typ, f.file(t, f.scan[typ]), true, "")
		if got := presentedType(r); got != typ {
			t.Errorf("only %s: server presented %s", typ, got)
		}
	}
	// A wrong RSA key for the host is refused by both, as changed.
	other := f.file(t, "[127.0.0.1]:"+strconv.Itoa(f.d.Port)+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(rsaKey(t)))))
	f.compare(t, "wrong rsa", other, false, failure.HostKeyMismatch)
}

// Issue 9 item 1, pin policy: a server pinned with its RSA (or ECDSA) key
// keeps matching although it would present Ed25519 first.
func TestOpenSSHPinnedKeyType(t *testing.T) {
	t.Parallel()
	f := newHostKeyFixture(t)
	pin, _ := hostkey.NewChecker(hostkey.PolicyPin)
	for _, typ := range openssh.HostKeyTypes {
		k := f.hostPub(t, typ)
		r := f.probe(pin, k.Marshal())
		if !r.OK || presentedType(r) != k.Type() {
			t.Errorf("pinned %s: %+v presented %s", typ, r, presentedType(r))
		}
	}
	if r := f.probe(pin, rsaKey(t).Marshal()); r.Class != failure.HostKeyMismatch || presentedType(r) != ssh.KeyAlgoRSA {
		t.Errorf("pinned another rsa key: %+v", r)
	}
}

// Issue 9 item 3: entries without a port for a server on another port.
// ssh looks up "[host]:port"; when that knows no key of the presented type
// it checks the bare host once more ("found matching key w/out port").
// Algorithms are ordered by the "[host]:port" entries only, so a bare RSA
// entry alone does not make ssh offer RSA.
func TestOpenSSHPortlessEntries(t *testing.T) {
	t.Parallel()
	f := newHostKeyFixture(t)
	port := strconv.Itoa(f.d.Port)
	bare := func(typ string) string {
		return strings.Replace(f.scan[typ], "[127.0.0.1]:"+port, "127.0.0.1", 1)
	}
	wrongEd := "127.0.0.1 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(edKey(t))))
	cases := []struct {
		name  string
		lines []string
		want  bool
		class failure.Class
	}{
		{"bare host, all keys", []string{bare(ssh.KeyAlgoED25519), bare(ssh.KeyAlgoRSA), bare(ssh.KeyAlgoECDSA256)}, true, ""},
		{"bare host, ed25519", []string{bare(ssh.KeyAlgoED25519)}, true, ""},
		{"bare host, rsa only", []string{bare(ssh.KeyAlgoRSA)}, false, failure.HostKeyUnknown},
		{"[host]:port rsa, bare ed25519", []string{f.scan[ssh.KeyAlgoRSA], bare(ssh.KeyAlgoED25519)}, true, ""},
		{"bare host, wrong ed25519", []string{wrongEd}, false, failure.HostKeyUnknown},
		{"[host]:port entry", []string{f.scan[ssh.KeyAlgoED25519]}, true, ""},
		{"other port", []string{strings.Replace(f.scan[ssh.KeyAlgoED25519], ":"+port, ":1", 1)}, false, failure.HostKeyUnknown},
		{"wildcard, rsa", []string{strings.Replace(f.scan[ssh.KeyAlgoRSA], "[127.0.0.1]:"+port, "*", 1)}, true, ""},
		// "*" still matches the bare name ssh falls back to.
		{"negated [host]:port", []string{strings.Replace(f.scan[ssh.KeyAlgoED25519], "[127.0.0.1]:"+port, "*,![127.0.0.1]:"+port, 1)}, true, ""},
		{"negated both", []string{strings.Replace(f.scan[ssh.KeyAlgoED25519], "[127.0.0.1]:"+port, "*,![127.0.0.1]:"+port+",!127.0.0.1", 1)}, false, failure.HostKeyUnknown},
		{"hashed, ecdsa", []string{strings.Replace(f.scan[ssh.KeyAlgoECDSA256], "[127.0.0.1]:"+port, knownhosts.HashHostname("[127.0.0.1]:"+port), 1)}, true, ""},
	}
	for _, c := range cases {
		f.compare(t, c.name, f.file(t, c.lines...), c.want, c.class)
	}
}

func edKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	k, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey()
}

func rsaKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Issue 9 item 2: host certificates signed by a CA that a @cert-authority
// line trusts, compared with the real ssh for each way a certificate can
// be right or wrong.
func TestOpenSSHHostCertificates(t *testing.T) {
	t.Parallel()
	f := newHostKeyFixture(t)
	port := strconv.Itoa(f.d.Port)
	ca := filepath.Join(f.dir, "host_ca")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", ca).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	caPub, err := os.ReadFile(ca + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	caLine := func(patterns string) string {
		return "@cert-authority " + patterns + " " + strings.TrimSpace(string(caPub))
	}
	otherCA := "@cert-authority * " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(edKey(t))))
	edPlain := "@revoked * " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(f.hostPub(t, "ed25519"))))

	f.d.CertifyHostKeys(t, ca, "127.0.0.1,web1.example", "-5m:+1h")
	r := f.compare(t, "CA for [host]:port", f.file(t, caLine("[127.0.0.1]:"+port)), true, "")
	if got := presentedType(r); got != ssh.CertAlgoED25519v01 {
		t.Errorf("CA for [host]:port: server presented %s, want a certificate", got)
	}
	f.compare(t, "CA for *", f.file(t, caLine("*")), true, "")
	f.compare(t, "CA for another host", f.file(t, caLine("[10.9.9.9]:"+port)), false, failure.HostKeyUnknown)
	f.compare(t, "another CA", f.file(t, otherCA), false, failure.HostKeyUnknown)
	f.compare(t, "certified key revoked", f.file(t, caLine("*"), edPlain), false, failure.HostKeyMismatch)
	// ssh retries a certificate it cannot use as the plain key inside.
	f.compare(t, "another CA, plain key known", f.file(t, otherCA, f.scan[ssh.KeyAlgoED25519]), true, "")

	f.d.CertifyHostKeys(t, ca, "web2.example", "-5m:+1h")
	r = f.compare(t, "wrong principal", f.file(t, caLine("*")), false, failure.HostKeyUnknown)
	if !strings.Contains(r.Message, "issued for web2.example, not 127.0.0.1") {
		t.Errorf("wrong principal: message %q does not say why", r.Message)
	}

	// A certificate without principals is valid for any host name.
	f.d.CertifyHostKeys(t, ca, "", "-5m:+1h")
	f.compare(t, "no principals", f.file(t, caLine("*")), true, "")

	// Principals are names, not patterns, for ssh 9.2.
	f.d.CertifyHostKeys(t, ca, "127.0.0.*", "-5m:+1h")
	f.compare(t, "wildcard principal", f.file(t, caLine("*")), false, failure.HostKeyUnknown)

	f.d.CertifyHostKeys(t, ca, "127.0.0.1", "-2d:-1d")
	if r := f.compare(t, "expired", f.file(t, caLine("*")), false, failure.HostKeyUnknown); !strings.Contains(r.Message, "not valid: expired") {
		t.Errorf("expired: message %q does not say why", r.Message)
	}
}
