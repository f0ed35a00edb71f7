package probe

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/stacksense/heartbeat/pkg/failure"
	"github.com/stacksense/heartbeat/pkg/hostkey"
)

// Issue 9 item 2, `servers trust --ca`: a CA pin against a real sshd with
// HostCertificate lines, compared with the real ssh given a known_hosts
// file holding only "@cert-authority [127.0.0.1]:PORT CA" (what a CA pin
// means to ssh). Both must agree, except where the pin is deliberately
// stricter: a certificate that lists no principals, which ssh 9.2 takes as
// valid for any host.
func TestOpenSSHPinnedCA(t *testing.T) {
	t.Parallel()
	f := newHostKeyFixture(t)
	port := strconv.Itoa(f.d.Port)
	newCA := func(name string) (path string, pub ssh.PublicKey) {
		t.Helper()
		path = filepath.Join(f.dir, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
		b, err := os.ReadFile(path + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		wire, err := hostkey.ParseCAKey(b)
		if err != nil {
			t.Fatal(err)
		}
		if pub, err = ssh.ParsePublicKey(wire); err != nil {
			t.Fatal(err)
		}
		return path, pub
	}
	ca, caPub := newCA("host_ca")
	other, _ := newCA("other_ca")
	kh := f.file(t, "@cert-authority [127.0.0.1]:"+port+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(caPub))))
	checker, err := hostkey.NewChecker(hostkey.PolicyPin)
	if err != nil {
		t.Fatal(err)
	}
	compare := func(name string, want bool, inMessage string) {
		t.Helper()
		sshErr := f.d.SSH(t, "127.0.0.1", f.user, f.identity, kh)
		r := f.probeCA(checker, caPub.Marshal())
		if (sshErr == nil) != want {
			t.Errorf("%s: real ssh: err %v, want ok=%v", name, sshErr, want)
		}
		if r.OK != want || (!want && (r.Class != failure.HostKeyMismatch || !strings.Contains(r.Message, inMessage))) {
			t.Errorf("%s: heartbeat %+v, want ok=%v (else %s with %q); real ssh: %v", name, r, want, failure.HostKeyMismatch, inMessage, sshErr)
		}
		if want && presentedType(r) != ssh.CertAlgoED25519v01 {
			t.Errorf("%s: server presented %s, want the Ed25519 certificate", name, presentedType(r))
		}
	}

	// No certificate yet: sshd has only plain keys.
	compare("plain keys only", false, "a plain key, not a certificate from the pinned CA")
	f.d.CertifyHostKeys(t, ca, "127.0.0.1,web1.example", "-5m:+1h")
	compare("valid certificate", true, "")
	f.d.CertifyHostKeys(t, ca, "web2.example", "-5m:+1h")
	compare("wrong principal", false, "issued for web2.example, not 127.0.0.1")
	f.d.CertifyHostKeys(t, ca, "127.0.0.1", "-2d:-1d")
	compare("expired", false, "certificate not valid: expired")
	f.d.CertifyHostKeys(t, ca, "127.0.0.1", "+1d:+2d")
	compare("not yet valid", false, "not valid before")
	f.d.CertifyHostKeys(t, other, "127.0.0.1", "-5m:+1h")
	compare("another CA", false, "certificate not from the pinned CA")

	// The deliberate difference: ssh 9.2 accepts a certificate without
	// principals for any host; the pin refuses it.
	f.d.CertifyHostKeys(t, ca, "", "-5m:+1h")
	if err := f.d.SSH(t, "127.0.0.1", f.user, f.identity, kh); err != nil {
		t.Logf("real ssh now refuses a certificate without principals too: %v", err)
	}
	if r := f.probeCA(checker, caPub.Marshal()); r.OK || r.Class != failure.HostKeyMismatch || !strings.Contains(r.Message, "lists no principals") {
		t.Errorf("no principals: heartbeat %+v, want a mismatch", r)
	}
}

func (f *hostKeyFixture) probeCA(checker *hostkey.Checker, ca []byte) Result {
	target := Target{ServerID: 1, Host: "127.0.0.1", Port: f.d.Port, User: f.user, PinnedHostKey: ca, PinnedIsCA: true}
	return f.probeTarget(checker, &target)
}
