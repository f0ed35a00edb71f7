package probe

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/stacksense/heartbeat/pkg/failure"
	"github.com/stacksense/heartbeat/pkg/sshtest"
)

func newCA(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPinnedCA probes in-process servers that offer a host certificate
// beside their plain key: with a CA pin the probe asks for the certificate
// first and accepts it when the pinned CA signed it for the host, valid
// now; any other certificate, or a server with no certificate, is a
// host-key mismatch whose message says why.
func TestPinnedCA(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sshtest.Group{Mode: sshtest.ModeOK, Count: 6})
	ca, other := newCA(t), newCA(t)
	now := time.Now()
	host := e.fleet.Server(0).Host
	certify := func(i int, signer ssh.Signer, principals []string, after, before time.Time) *ssh.Certificate {
		t.Helper()
		c, err := e.fleet.CertifyHostKey(i, signer, principals, after, before)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	valid := certify(0, ca, []string{"db.internal", host}, now.Add(-time.Hour), now.Add(time.Hour))
	certify(1, ca, []string{host}, now.Add(-2*time.Hour), now.Add(-time.Hour))
	certify(2, ca, []string{"db.internal"}, time.Time{}, time.Time{})
	certify(3, other, []string{host}, time.Time{}, time.Time{})
	certify(5, ca, nil, time.Time{}, time.Time{})
	// Server 4 has no certificate: it can only present its plain key.
	cases := []struct {
		i    int
		name string
		want string // "" accepted; else a part of the mismatch message
	}{
		{0, "valid certificate", ""},
		{1, "expired certificate", "certificate not valid: expired"},
		{2, "wrong principal", "issued for db.internal, not " + host},
		{3, "another CA", "certificate not from the pinned CA: signed by " + ssh.FingerprintSHA256(other.PublicKey())[:12]},
		{4, "plain key", "a plain key, not a certificate from the pinned CA"},
		{5, "no principals", "lists no principals"},
	}
	for _, tc := range cases {
		tg := e.target(tc.i)
		tg.PinnedHostKey, tg.PinnedIsCA = ca.PublicKey().Marshal(), true
		r := probeOne(t, Options{Auth: e.auth}, tg)
		if tc.want == "" {
			if !r.OK || !bytes.Equal(r.HostKey, valid.Marshal()) {
				t.Errorf("%s: %+v, want OK with the certificate as the key seen", tc.name, r)
			}
			continue
		}
		if r.OK || r.Class != failure.HostKeyMismatch || !strings.Contains(r.Message, tc.want) {
			t.Errorf("%s: class %q message %q, want %s containing %q", tc.name, r.Class, r.Message, failure.HostKeyMismatch, tc.want)
		}
		if len(r.HostKey) == 0 {
			t.Errorf("%s: no presented key to keep as last seen", tc.name)
		}
	}
	// The same server without the CA flag: the CA's key as a plain pin
	// matches nothing the server presents.
	tg := e.target(0)
	tg.PinnedHostKey = ca.PublicKey().Marshal()
	if r := probeOne(t, Options{Auth: e.auth}, tg); r.Class != failure.HostKeyMismatch {
		t.Errorf("CA key as a plain pin: %+v, want a mismatch", r)
	}
}
