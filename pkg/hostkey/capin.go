package hostkey

import (
	"bytes"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// CheckPinnedCA is the check for a server whose pin is a certificate
// authority (ca: the wire form of the CA's public key), as ssh does for a
// @cert-authority line: the server must present a host certificate signed
// by ca, valid now, whose principals include the host as dialled (from
// hostname, "host:port"; compared literally and lower-cased, as ssh
// lower-cases the host name). One deliberate difference from OpenSSH 9.2:
// a certificate that lists no principals is refused, where ssh 9.2 takes
// it as valid for every host; a pin names one server, and a certificate a
// CA issued for "any host" should not stand in for it.
//
// Messages stay short (the prober cuts them at 200 bytes, after the
// presented certificate's type and fingerprint); `servers show` prints the
// pinned CA's fingerprint. Every refusal is KindMismatch: the server presented something other than
// what its pin asks for, so the fix is the same as for a changed key
// (check, then servers trust), and the certificate is kept as last seen.
// Unlike the known-hosts path there is no fallback to the certified plain
// key: a CA pin trusts no key on its own.
func CheckPinnedCA(hostname string, ca []byte, key ssh.PublicKey) error {
	host, _, err := splitHostPort(hostname)
	if err != nil {
		return err
	}
	refuse := func(format string, args ...any) error {
		return &Error{Kind: KindMismatch, Host: hostname, Presented: key, Detail: fmt.Sprintf(format, args...)}
	}
	cert, ok := key.(*ssh.Certificate)
	switch {
	case !ok:
		return refuse("a plain key, not a certificate from the pinned CA")
	case cert.CertType != ssh.HostCert:
		return refuse("a user certificate, not a host certificate")
	case !bytes.Equal(cert.SignatureKey.Marshal(), ca):
		return refuse("certificate not from the pinned CA: signed by %s", ssh.FingerprintSHA256(cert.SignatureKey))
	case len(cert.ValidPrincipals) == 0:
		return refuse("certificate not valid: it lists no principals")
	}
	principal := strings.ToLower(host)
	// CheckCert verifies the CA's signature, the principal, the validity
	// window and refuses unknown critical options.
	var cc ssh.CertChecker
	if err := cc.CheckCert(principal, cert); err != nil {
		return refuse("certificate not valid: %s", certReason(cert, principal, err))
	}
	return nil
}
