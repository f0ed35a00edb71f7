package hostkey

import "golang.org/x/crypto/ssh"

// defaultAlgorithms is the host-key algorithm preference when nothing is
// known about a host: Ed25519 is the cheapest to verify. Plain ssh-rsa
// (SHA-1) stays last, as in the library defaults, so very old servers
// remain reachable.
var defaultAlgorithms = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256,
	ssh.KeyAlgoECDSA384,
	ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512,
	ssh.KeyAlgoRSASHA256,
	ssh.KeyAlgoRSA,
}

// certAlgorithms are offered first, in this order, for a host that a
// @cert-authority line matches (as OpenSSH does).
var certAlgorithms = []string{
	ssh.CertAlgoED25519v01,
	ssh.CertAlgoECDSA256v01,
	ssh.CertAlgoECDSA384v01,
	ssh.CertAlgoECDSA521v01,
	ssh.CertAlgoRSASHA512v01,
	ssh.CertAlgoRSASHA256v01,
	ssh.CertAlgoRSAv01,
}

// caPinAlgorithms is the preference for a server whose pin is a CA: the
// certificate algorithms first, so a server that has a host certificate
// presents it; the plain ones after, so a server without one still
// completes the key exchange and is refused with a message that says so
// instead of "no common algorithm".
var caPinAlgorithms = append(append([]string(nil), certAlgorithms...), defaultAlgorithms...)

// keyTypeOf maps a host-key algorithm to the type of key it uses: the RSA
// signature algorithms all use ssh-rsa keys.
func keyTypeOf(algo string) string {
	switch algo {
	case ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256:
		return ssh.KeyAlgoRSA
	}
	return algo
}

// pinnedOrder maps a pinned key's type to an algorithm list with that type
// first, so a server with several host keys presents the pinned one. Built
// once; the lists are read-only.
var pinnedOrder = func() map[string][]string {
	m := map[string][]string{}
	for _, a := range defaultAlgorithms {
		typ := keyTypeOf(a)
		if _, done := m[typ]; done {
			continue
		}
		var first, last []string
		for _, b := range defaultAlgorithms {
			if keyTypeOf(b) == typ {
				first = append(first, b)
			} else {
				last = append(last, b)
			}
		}
		m[typ] = append(first, last...)
	}
	return m
}()

// pinnedAlgorithms returns the preference for a pinned key, reading the
// type name from the wire form without parsing the key (once per probe).
func pinnedAlgorithms(pinned []byte) []string {
	if len(pinned) > 4 {
		n := int(pinned[0])<<24 | int(pinned[1])<<16 | int(pinned[2])<<8 | int(pinned[3])
		if n > 0 && 4+n <= len(pinned) {
			if l, ok := pinnedOrder[string(pinned[4:4+n])]; ok {
				return l
			}
		}
	}
	return defaultAlgorithms
}
