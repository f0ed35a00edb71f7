package cli_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestServersTrustCA: `servers trust NAME --ca FILE` pins a certificate
// authority; probes then accept the host certificate it signed and refuse
// anything else as a mismatch, a probe never replaces the CA pin, doctor
// tells a refused certificate from a changed key and stays quiet for a
// server whose certificate passes, and clearing the pin ends it. A bad
// --ca is one line and exit 64, changing nothing.
func TestServersTrustCA(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		fleet := healthyDoctor(t, e)
		certified, plain := fleet.Server(0), fleet.Server(1)
		plainFP := ssh.FingerprintSHA256(certified.HostKey())

		_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
		ca, err := ssh.NewSignerFromKey(caPriv)
		if err != nil {
			t.Fatal(err)
		}
		caPub := string(ssh.MarshalAuthorizedKey(ca.PublicKey()))
		caFP := ssh.FingerprintSHA256(ca.PublicKey())
		dir := t.TempDir()
		write := func(name, content string) string {
			t.Helper()
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		caFile := write("ca.pub", "# the fleet's host CA\n"+strings.TrimSpace(caPub)+" host-ca@example\n")

		// Bad input: one line, exit 64, nothing written.
		cert := &ssh.Certificate{Key: ca.PublicKey(), CertType: ssh.HostCert, ValidBefore: ssh.CertTimeInfinity}
		if err := cert.SignCert(rand.Reader, ca); err != nil {
			t.Fatal(err)
		}
		e.expectFail(64, "no such file", "servers", "trust", certified.Name, "--ca", filepath.Join(dir, "missing.pub"))
		e.expectFail(64, "not an OpenSSH public key", "servers", "trust", certified.Name, "--ca", write("garbage.pub", "not a key\n"))
		e.expectFail(64, "a certificate, not a CA's public key", "servers", "trust", certified.Name, "--ca", write("host-cert.pub", string(ssh.MarshalAuthorizedKey(cert))))
		e.expectFail(64, "more than one key", "servers", "trust", certified.Name, "--ca", write("two.pub", caPub+caPub))
		e.expectFail(64, "--ca stdin: no public key", "servers", "trust", certified.Name, "--ca", "-")
		e.expectFail(64, "not both", "servers", "trust", certified.Name, "--ca", caFile, "--fingerprint", plainFP)
		if show := e.mustRun("servers", "show", certified.Name); !strings.Contains(show, plainFP) || strings.Contains(show, "pinned CA") {
			t.Fatalf("a refused --ca changed the pin:\n%s", show)
		}

		// A valid certificate from the pinned CA is accepted.
		if _, err := fleet.CertifyHostKey(0, ca, []string{"db.internal", certified.Host}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		out := e.mustRun("servers", "trust", certified.Name, "--ca", caFile)
		if !strings.Contains(out, "pinned key") || !strings.Contains(out, plainFP) || !strings.Contains(out, "pinned CA ssh-ed25519 "+caFP) {
			t.Errorf("servers trust --ca printed:\n%s", out)
		}
		e.stdin = caPub
		e.mustRun("servers", "trust", plain.Name, "--ca", "-")
		e.stdin = ""
		run := e.probe()
		if run.classOf(certified.Name) != "ok" || run.classOf(plain.Name) != "hostkey-mismatch" {
			t.Fatalf("probe with CA pins: %+v", run)
		}
		if msg := run.errorOf(plain.Name); !strings.Contains(msg, "a plain key, not a certificate from the pinned CA") {
			t.Errorf("plain key under a CA pin: %q", msg)
		}
		// The probe did not replace the CA pin with the certificate.
		show := e.mustRun("servers", "show", certified.Name)
		if !strings.Contains(show, "pinned CA") || !strings.Contains(show, caFP) || strings.Contains(show, "last seen") {
			t.Errorf("servers show after an accepted certificate:\n%s", show)
		}
		if out := e.mustRun("servers", "trust", certified.Name, "--ca", caFile); !strings.Contains(out, "pinned CA ") {
			t.Errorf("servers trust on a CA-pinned server printed:\n%s", out)
		}
		checks, _ := e.doctor()
		expectCheck(t, checks, "host-keys", "warn", "1 server(s) pinned to a CA presented no valid host certificate from it and get no heartbeat: "+plain.Name, "servers trust "+plain.Name+" --ca FILE")
		if c := checkNamed(t, checks, "host-keys"); strings.Contains(c.Message, certified.Name) || strings.Contains(c.Message, "differs from the pinned one") {
			t.Errorf("doctor host-keys: %q", c.Message)
		}

		// An expired certificate is refused and kept as last seen; a
		// renewed one clears the warning.
		if _, err := fleet.CertifyHostKey(0, ca, []string{certified.Host}, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		run = e.probe()
		if run.classOf(certified.Name) != "hostkey-mismatch" || !strings.Contains(run.errorOf(certified.Name), "certificate not valid: expired") {
			t.Errorf("expired certificate: %s %q", run.classOf(certified.Name), run.errorOf(certified.Name))
		}
		if show := e.mustRun("servers", "show", certified.Name); !strings.Contains(show, "last seen") || !strings.Contains(show, "pinned CA") {
			t.Errorf("servers show after an expired certificate:\n%s", show)
		}
		if _, err := fleet.CertifyHostKey(0, ca, []string{certified.Host}, time.Time{}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if run = e.probe(); run.classOf(certified.Name) != "ok" {
			t.Errorf("renewed certificate: %+v", run)
		}
		checks, _ = e.doctor()
		if c := checkNamed(t, checks, "host-keys"); strings.Contains(c.Message, certified.Name) {
			t.Errorf("doctor names a server whose certificate passes: %q", c.Message)
		}

		// Clearing the pin ends the CA pin; the next probe pins a key.
		if out := e.mustRun("servers", "trust", plain.Name); !strings.Contains(out, "pinned CA") || !strings.Contains(out, "cleared the pin") {
			t.Errorf("clearing a CA pin printed:\n%s", out)
		}
		if run = e.probe(); run.classOf(plain.Name) != "ok" {
			t.Errorf("probe after clearing the CA pin: %+v", run)
		}
		if show := e.mustRun("servers", "show", plain.Name); strings.Contains(show, "pinned CA") || !strings.Contains(show, "host key") {
			t.Errorf("servers show after clearing the CA pin:\n%s", show)
		}
		checks, _ = e.doctor()
		expectCheck(t, checks, "host-keys", "ok", "no server presented a changed host key", "")

		// Moving a CA-pinned server to another name says which principal
		// its certificate needs.
		r := e.run("servers", "set", certified.Name, "--host", "WEB1.example")
		if r.code != 0 || !strings.Contains(r.err, "keeps its pinned CA; its host certificate must list web1.example") {
			t.Errorf("servers set on a CA-pinned server: exit %d, stderr %q", r.code, r.err)
		}
	})
}

func (r probeRun) errorOf(name string) string {
	for _, res := range r.Results {
		if res.Name == name {
			return res.Error
		}
	}
	return ""
}
