package hostkey

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func edKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var remote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222}

func kindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"pin", "known-hosts", "insecure"} {
		if p, err := ParsePolicy(s); err != nil || string(p) != s {
			t.Errorf("ParsePolicy(%q) = %q, %v", s, p, err)
		}
	}
	_, err := ParsePolicy("tofu")
	if err == nil || !strings.Contains(err.Error(), "pin, known-hosts or insecure") {
		t.Errorf("bad policy error: %v", err)
	}
}

func TestPin(t *testing.T) {
	t.Parallel()
	a, b := edKey(t), edKey(t)
	if err := Pin(nil)("h:22", remote, a); err != nil {
		t.Errorf("first use: %v", err)
	}
	if err := Pin(a.Marshal())("h:22", remote, a); err != nil {
		t.Errorf("same key: %v", err)
	}
	err := Pin(a.Marshal())("h:22", remote, b)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindMismatch || string(e.Presented.Marshal()) != string(b.Marshal()) {
		t.Fatalf("different key: %v", err)
	}
	if !strings.Contains(err.Error(), ssh.FingerprintSHA256(b)) || strings.Contains(err.Error(), string(b.Marshal())) {
		t.Errorf("message %q", err)
	}
}

func TestKnownHostsCallback(t *testing.T) {
	t.Parallel()
	known, ec, other := edKey(t), ecKey(t), edKey(t)
	hashed := edKey(t)
	lines := []string{
		knownhosts.Line([]string{"[127.0.0.1]:2222"}, known),
		knownhosts.Line([]string{knownhosts.HashHostname("[10.0.0.5]:2200")}, hashed),
		knownhosts.Line([]string{"ec.example"}, ec),
		"@revoked * " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other))),
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cb, err := KnownHosts(path)
	if err != nil {
		t.Fatal(err)
	}
	r2 := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 2200}
	ecAddr := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 6), Port: 22}
	cases := []struct {
		name string
		host string
		addr net.Addr
		key  ssh.PublicKey
		want Kind
	}{
		{"bracketed port entry", "127.0.0.1:2222", remote, known, ""},
		{"hashed entry", "10.0.0.5:2200", r2, hashed, ""},
		{"mismatch", "127.0.0.1:2222", remote, edKey(t), KindMismatch},
		{"unknown host", "192.0.2.9:22", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 22}, edKey(t), KindUnknown},
		{"type not listed", "ec.example:22", ecAddr, edKey(t), KindUnknown},
		{"revoked", "127.0.0.1:2222", remote, other, KindMismatch},
	}
	for _, c := range cases {
		err := cb(c.host, c.addr, c.key)
		if got := kindOf(err); got != c.want || (c.want == "" && err != nil) {
			t.Errorf("%s: kind %q err %v, want %q", c.name, got, err, c.want)
		}
	}
	if _, err := KnownHosts(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: want error")
	}
}

func TestChecker(t *testing.T) {
	t.Parallel()
	k := edKey(t)
	c, err := NewChecker(PolicyInsecure)
	if err != nil || c.Check("h:22", remote, k, edKey(t).Marshal()) != nil {
		t.Errorf("insecure: %v", err)
	}
	c, _ = NewChecker(PolicyPin)
	if kindOf(c.Check("h:22", remote, k, edKey(t).Marshal())) != KindMismatch || c.Callback(k.Marshal())("h:22", remote, k) != nil {
		t.Error("pin checker")
	}
	if _, err := NewChecker(PolicyKnownHosts); err == nil {
		t.Error("known-hosts without files: want error")
	}
	if _, err := NewChecker("bogus"); err == nil {
		t.Error("bogus policy: want error")
	}
}

func TestPinnedAlgorithms(t *testing.T) {
	t.Parallel()
	if got := pinnedAlgorithms(edKey(t).Marshal()); got[0] != ssh.KeyAlgoED25519 {
		t.Errorf("ed25519 pinned: %v", got)
	}
	if got := pinnedAlgorithms(ecKey(t).Marshal()); got[0] != ssh.KeyAlgoECDSA256 || len(got) != len(defaultAlgorithms) {
		t.Errorf("ecdsa pinned: %v", got)
	}
	if got := pinnedAlgorithms(nil); got[0] != ssh.KeyAlgoED25519 {
		t.Errorf("nothing pinned: %v", got)
	}
	rsaWire := ssh.Marshal(struct{ Name string }{ssh.KeyAlgoRSA})
	if got := pinnedAlgorithms(rsaWire); strings.Join(got[:3], ",") != "rsa-sha2-512,rsa-sha2-256,ssh-rsa" || len(got) != len(defaultAlgorithms) {
		t.Errorf("rsa pinned: %v", got)
	}
	if got := pinnedAlgorithms([]byte{0, 0, 0, 200, 'x'}); got[0] != ssh.KeyAlgoED25519 {
		t.Errorf("truncated: %v", got)
	}
}

func TestWildcard(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "[10.0.0.1]:2222", true},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "example.com", false},
		{"10.0.0.?", "10.0.0.7", true},
		{"10.0.0.?", "10.0.0.17", false},
		{"[10.0.0.1]:*", "[10.0.0.1]:2222", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"", "", true},
	} {
		if got := wildcard(c.p, c.s); got != c.want {
			t.Errorf("wildcard(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

// TestKnownHostsAlgorithms: ssh's order_hostkeyalgs, including that bare
// entries do not reorder for another port and that a @cert-authority line
// puts certificate algorithms first.
func TestKnownHostsAlgorithms(t *testing.T) {
	t.Parallel()
	ec, ca := ecKey(t), edKey(t)
	lines := []string{
		knownhosts.Line([]string{"[10.0.0.1]:2222"}, ec),
		knownhosts.Line([]string{"10.0.0.2"}, ec),
		"@cert-authority *.ca.example " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca))),
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := NewChecker(PolicyKnownHosts, path)
	if err != nil {
		t.Fatal(err)
	}
	first := func(host string, port int) string {
		h := c.Host(host, port, nil)
		return h.Algorithms()[0]
	}
	if got := first("10.0.0.1", 2222); got != ssh.KeyAlgoECDSA256 {
		t.Errorf("[host]:port ecdsa: %s", got)
	}
	if got := first("10.0.0.2", 2222); got != ssh.KeyAlgoED25519 {
		t.Errorf("bare entry, other port: %s", got)
	}
	if got := first("10.0.0.2", 22); got != ssh.KeyAlgoECDSA256 {
		t.Errorf("bare entry, port 22: %s", got)
	}
	if got := first("db.ca.example", 22); got != ssh.CertAlgoED25519v01 {
		t.Errorf("cert authority: %s", got)
	}
	// The CA key is no "expected key" for a plain key of its type.
	if err := c.Check("db.ca.example:22", remote, edKey(t), nil); kindOf(err) != KindUnknown {
		t.Errorf("plain key, CA-only host: %v", err)
	}
}

// TestKnownHostsCertificates covers what the real-sshd test cannot make
// cheaply: a user certificate presented as a host key, a revoked CA, and
// the principal compared with the host as dialled, not "[host]:port".
func TestKnownHostsCertificates(t *testing.T) {
	t.Parallel()
	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	caSigner, err := ssh.NewSignerFromKey(caPriv)
	if err != nil {
		t.Fatal(err)
	}
	_, revPriv, _ := ed25519.GenerateKey(rand.Reader)
	revSigner, _ := ssh.NewSignerFromKey(revPriv)
	certify := func(signer ssh.Signer, typ uint32, principals ...string) *ssh.Certificate {
		t.Helper()
		c := &ssh.Certificate{Key: edKey(t), CertType: typ, ValidPrincipals: principals, ValidBefore: ssh.CertTimeInfinity}
		if err := c.SignCert(rand.Reader, signer); err != nil {
			t.Fatal(err)
		}
		return c
	}
	authorized := func(k ssh.PublicKey) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) }
	lines := []string{
		"@cert-authority *.example.com,[10.0.0.1]:2222 " + authorized(caSigner.PublicKey()),
		"@cert-authority * " + authorized(revSigner.PublicKey()),
		"@revoked * " + authorized(revSigner.PublicKey()),
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := NewChecker(PolicyKnownHosts, path)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		addr string
		key  ssh.PublicKey
		want Kind
	}{
		{"valid", "web1.example.com:22", certify(caSigner, ssh.HostCert, "web1.example.com"), ""},
		{"principal is the host without port", "10.0.0.1:2222", certify(caSigner, ssh.HostCert, "10.0.0.1"), ""},
		{"principal [host]:port is not the host", "10.0.0.1:2222", certify(caSigner, ssh.HostCert, "[10.0.0.1]:2222"), KindUnknown},
		{"no principals: any host", "db.example.com:22", certify(caSigner, ssh.HostCert), ""},
		{"CA not trusted for this host", "10.0.0.2:22", certify(caSigner, ssh.HostCert, "10.0.0.2"), KindUnknown},
		{"user certificate", "web1.example.com:22", certify(caSigner, ssh.UserCert, "web1.example.com"), KindMismatch},
		{"revoked CA", "web1.example.com:22", certify(revSigner, ssh.HostCert, "web1.example.com"), KindMismatch},
	}
	for _, tc := range cases {
		err := c.Check(tc.addr, remote, tc.key, nil)
		if got := kindOf(err); got != tc.want || (tc.want == "" && err != nil) {
			t.Errorf("%s: kind %q err %v, want %q", tc.name, got, err, tc.want)
		}
	}
}
