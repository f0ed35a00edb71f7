package hostkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func caSigner(t *testing.T) ssh.Signer {
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

// TestCheckPinnedCA: a CA pin accepts a host certificate that CA signed,
// valid now, for the host as dialled, and refuses everything else with a
// message naming the reason and the pinned CA.
func TestCheckPinnedCA(t *testing.T) {
	t.Parallel()
	ca, other := caSigner(t), caSigner(t)
	pin := ca.PublicKey().Marshal()
	now := time.Now()
	type certOpt func(*ssh.Certificate)
	certify := func(signer ssh.Signer, opts ...certOpt) *ssh.Certificate {
		t.Helper()
		c := &ssh.Certificate{Key: edKey(t), CertType: ssh.HostCert, ValidPrincipals: []string{"web1.example.com"},
			ValidAfter: uint64(now.Add(-time.Hour).Unix()), ValidBefore: uint64(now.Add(time.Hour).Unix())}
		for _, o := range opts {
			o(c)
		}
		if err := c.SignCert(rand.Reader, signer); err != nil {
			t.Fatal(err)
		}
		return c
	}
	principals := func(p ...string) certOpt { return func(c *ssh.Certificate) { c.ValidPrincipals = p } }
	expired := func(c *ssh.Certificate) {
		c.ValidAfter, c.ValidBefore = uint64(now.Add(-2*time.Hour).Unix()), uint64(now.Add(-time.Minute).Unix())
	}
	notYet := func(c *ssh.Certificate) { c.ValidAfter = uint64(now.Add(time.Hour).Unix()) }
	forever := func(c *ssh.Certificate) { c.ValidAfter, c.ValidBefore = 0, ssh.CertTimeInfinity }
	userCert := func(c *ssh.Certificate) { c.CertType = ssh.UserCert }
	critical := func(c *ssh.Certificate) { c.CriticalOptions = map[string]string{"force-command": "true"} }
	tampered := certify(ca)
	tampered.Serial = 42 // changed after signing

	cases := []struct {
		name string
		addr string
		key  ssh.PublicKey
		want string // "" accepted; else a part of the message
	}{
		{"valid", "web1.example.com:22", certify(ca), ""},
		{"host compared case-insensitively", "WEB1.example.com:22", certify(ca), ""},
		{"no validity limits", "web1.example.com:22", certify(ca, forever), ""},
		{"non-default port: principal is the host", "10.0.0.1:2222", certify(ca, principals("db", "10.0.0.1")), ""},
		{"principal [host]:port is not the host", "10.0.0.1:2222", certify(ca, principals("[10.0.0.1]:2222")), "issued for [10.0.0.1]:2222, not 10.0.0.1"},
		{"wrong principal", "web2.example.com:22", certify(ca), "issued for web1.example.com, not web2.example.com"},
		{"wildcard principal is literal", "web1.example.com:22", certify(ca, principals("*.example.com")), "issued for *.example.com"},
		{"no principals", "web1.example.com:22", certify(ca, principals()), "lists no principals"},
		{"expired", "web1.example.com:22", certify(ca, expired), "certificate not valid: expired"},
		{"not yet valid", "web1.example.com:22", certify(ca, notYet), "not valid before"},
		{"other CA", "web1.example.com:22", certify(other), "certificate not from the pinned CA: signed by " + ssh.FingerprintSHA256(other.PublicKey())},
		{"user certificate", "web1.example.com:22", certify(ca, userCert), "a user certificate"},
		{"unknown critical option", "web1.example.com:22", certify(ca, critical), "critical option"},
		{"signature does not verify", "web1.example.com:22", tampered, "signature does not verify"},
		{"plain key", "web1.example.com:22", edKey(t), "a plain key, not a certificate from the pinned CA"},
		{"the CA key itself", "web1.example.com:22", ca.PublicKey(), "a plain key"},
	}
	for _, tc := range cases {
		err := CheckPinnedCA(tc.addr, pin, tc.key)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", tc.name, err)
			}
			continue
		}
		if kindOf(err) != KindMismatch || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v (kind %q), want a mismatch containing %q", tc.name, err, kindOf(err), tc.want)
		}
	}
}

// TestCheckerHostCA: under the pin policy a CA pin offers the certificate
// algorithms first and checks with CheckPinnedCA; a plain pin with the
// same bytes does not accept a certificate; other policies ignore the pin.
func TestCheckerHostCA(t *testing.T) {
	t.Parallel()
	ca := caSigner(t)
	pin := ca.PublicKey().Marshal()
	cert := &ssh.Certificate{Key: edKey(t), CertType: ssh.HostCert, ValidPrincipals: []string{"127.0.0.1"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	c, err := NewChecker(PolicyPin)
	if err != nil {
		t.Fatal(err)
	}
	h := c.HostCA("127.0.0.1", 2222, pin)
	algs := h.Algorithms()
	if !slices.Equal(algs[:len(certAlgorithms)], certAlgorithms) || !slices.Contains(algs, ssh.KeyAlgoED25519) {
		t.Errorf("CA pin algorithms = %v, want the certificate algorithms first, then the plain ones", algs)
	}
	if err := h.Check(cert); err != nil {
		t.Errorf("CA pin refused a valid certificate: %v", err)
	}
	if err := h.Check(cert.Key); kindOf(err) != KindMismatch {
		t.Errorf("CA pin, plain key: %v, want a mismatch", err)
	}
	plain := c.Host("127.0.0.1", 2222, pin)
	if slices.Contains(plain.Algorithms(), ssh.CertAlgoED25519v01) {
		t.Errorf("plain pin offers certificate algorithms: %v", plain.Algorithms())
	}
	if err := plain.Check(cert); kindOf(err) != KindMismatch {
		t.Errorf("plain pin of the CA's key accepted a certificate: %v", err)
	}
	// Without a pin (HostCA with nil), the first key is accepted as usual.
	if none := c.HostCA("127.0.0.1", 2222, nil); none.Check(cert.Key) != nil || slices.Contains(none.Algorithms(), ssh.CertAlgoED25519v01) {
		t.Errorf("HostCA(nil) behaves unlike an unpinned host")
	}
	insecure, _ := NewChecker(PolicyInsecure)
	if ih := insecure.HostCA("127.0.0.1", 2222, pin); ih.Check(cert.Key) != nil {
		t.Errorf("insecure policy applied a CA pin")
	}
}

// TestParseCAKey: a CA's .pub line (with comments around it, or as a
// known_hosts @cert-authority line) is read; no key, two keys, a
// certificate or garbage are refused with the line number.
func TestParseCAKey(t *testing.T) {
	t.Parallel()
	ca := caSigner(t)
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca.PublicKey())))
	cert := &ssh.Certificate{Key: edKey(t), CertType: ssh.HostCert, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{
		line + "\n",
		"# fleet host CA\n\n" + line + " ca@example\n",
		"@cert-authority *.example.com " + line + "\n",
	} {
		got, err := ParseCAKey([]byte(in))
		if err != nil || string(got) != string(ca.PublicKey().Marshal()) {
			t.Errorf("ParseCAKey(%q) = %x, %v; want the CA's key", in, got, err)
		}
	}
	for in, want := range map[string]string{
		"":                                     "no public key",
		"# only a comment\n":                   "no public key",
		"not a key\n":                          "line 1: not an OpenSSH public key",
		line + "\n" + line:                     "line 2: more than one key",
		string(ssh.MarshalAuthorizedKey(cert)): "line 1: a certificate",
	} {
		if _, err := ParseCAKey([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCAKey(%.30q) error %v, want %q", in, err, want)
		}
	}
}
