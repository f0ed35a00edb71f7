package hostkey

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// ErrNoMatchingKey is what MatchFingerprint returns when no key has the
// fingerprint asked for.
var ErrNoMatchingKey = errors.New("no key has that fingerprint")

// Fingerprint renders a stored host key (SSH wire format) the way OpenSSH
// prints it: its type and its SHA256 fingerprint, "ssh-ed25519 SHA256:…".
func Fingerprint(wire []byte) (string, error) {
	k, err := ssh.ParsePublicKey(wire)
	if err != nil {
		return "", err
	}
	return k.Type() + " " + ssh.FingerprintSHA256(k), nil
}

// MatchFingerprint returns the first of keys (SSH wire format; nil entries
// and unreadable keys are skipped) whose SHA256 fingerprint is fp, exactly
// as ssh-keygen -l prints it ("SHA256:…"). It returns ErrNoMatchingKey
// rather than any key: pinning a key nobody compared would defeat the
// check.
func MatchFingerprint(fp string, keys ...[]byte) ([]byte, error) {
	for _, wire := range keys {
		if wire == nil {
			continue
		}
		if k, err := ssh.ParsePublicKey(wire); err == nil && ssh.FingerprintSHA256(k) == fp {
			return wire, nil
		}
	}
	return nil, ErrNoMatchingKey
}

// ParseCAKey reads a certificate authority's public key for a CA pin
// (servers trust --ca): one OpenSSH public key line, as in the CA's .pub
// file or after "@cert-authority PATTERNS" in known_hosts (a leading
// marker and host patterns are skipped). Blank lines and # comments are
// ignored. It returns the key's wire form, and refuses a file with no key,
// several keys, or a certificate (the -cert.pub file a CA issued, not the
// CA).
func ParseCAKey(data []byte) ([]byte, error) {
	var found ssh.PublicKey
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := parseKeyLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: not an OpenSSH public key: %w", n+1, err)
		}
		if found != nil {
			return nil, fmt.Errorf("line %d: more than one key; give the CA's public key alone", n+1)
		}
		if _, isCert := k.(*ssh.Certificate); isCert {
			return nil, fmt.Errorf("line %d: a certificate, not a CA's public key (give the CA's .pub file)", n+1)
		}
		found = k
	}
	if found == nil {
		return nil, errors.New("no public key in it")
	}
	return found.Marshal(), nil
}

// parseKeyLine parses "TYPE BASE64 [comment]", also after a known_hosts
// "@cert-authority PATTERNS" prefix.
func parseKeyLine(line string) (ssh.PublicKey, error) {
	if strings.HasPrefix(line, "@") {
		_, _, k, _, _, err := ssh.ParseKnownHosts([]byte(line))
		return k, err
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	return k, err
}
