package hostkey

import (
	"errors"

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
