// Package hostkey builds ssh.HostKeyCallback values for the three host-key
// policies heartbeat supports: pin (trust on first use), known-hosts
// (OpenSSH known_hosts files) and insecure (accept anything).
//
// Callbacks report failures as *Error so that callers can classify them with
// errors.As instead of matching message text.
package hostkey

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Policy names a host-key verification policy.
type Policy string

// The supported policies.
const (
	// PolicyPin trusts the first key a server presents and rejects any
	// other key afterwards. The caller stores the pinned key.
	PolicyPin Policy = "pin"
	// PolicyKnownHosts verifies keys against OpenSSH known_hosts files.
	PolicyKnownHosts Policy = "known-hosts"
	// PolicyInsecure accepts any key. Callers should warn on every run.
	PolicyInsecure Policy = "insecure"
)

// ParsePolicy parses "pin", "known-hosts" or "insecure".
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(strings.TrimSpace(s)); p {
	case PolicyPin, PolicyKnownHosts, PolicyInsecure:
		return p, nil
	}
	return "", fmt.Errorf("unknown host-key policy %q: want pin, known-hosts or insecure", s)
}

// String returns the policy name.
func (p Policy) String() string { return string(p) }

// Kind says why a host key was refused.
type Kind string

// The kinds of refusal.
const (
	// KindUnknown means no key is recorded for the host.
	KindUnknown Kind = "unknown"
	// KindMismatch means a different key is recorded (or the key is revoked).
	KindMismatch Kind = "mismatch"
)

// Error is returned by the callbacks built here when a host key is refused.
// Its message names the host and fingerprints, never key material.
type Error struct {
	Kind Kind
	// Host is the address the client dialled (host:port).
	Host string
	// Presented is the key the server presented; callers record it as
	// "last seen" so an admin can compare fingerprints.
	Presented ssh.PublicKey
	// Detail is a short explanation.
	Detail string
}

// Error implements error.
func (e *Error) Error() string {
	fp := ""
	if e.Presented != nil {
		fp = e.Presented.Type() + " " + ssh.FingerprintSHA256(e.Presented)
	}
	switch e.Kind {
	case KindUnknown:
		return fmt.Sprintf("host key unknown for %s (presented %s)%s", e.Host, fp, detail(e.Detail))
	default:
		return fmt.Sprintf("host key mismatch for %s (presented %s)%s", e.Host, fp, detail(e.Detail))
	}
}

func detail(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// Pin returns a trust-on-first-use callback. pinned is the wire form
// (ssh.PublicKey.Marshal) of the recorded key, or nil if none is recorded:
// then any key is accepted and the caller is expected to pin the key it was
// shown. A different key yields *Error with KindMismatch.
func Pin(pinned []byte) ssh.HostKeyCallback {
	return func(hostname string, _ net.Addr, key ssh.PublicKey) error {
		return CheckPinned(hostname, pinned, key)
	}
}

// CheckPinned is the comparison behind Pin, exposed so a prober that already
// wraps the callback need not allocate a closure per target.
func CheckPinned(hostname string, pinned []byte, key ssh.PublicKey) error {
	if len(pinned) == 0 {
		return nil
	}
	if bytes.Equal(pinned, key.Marshal()) {
		return nil
	}
	d := "differs from pinned key"
	if old, err := ssh.ParsePublicKey(pinned); err == nil {
		d = "pinned " + old.Type() + " " + ssh.FingerprintSHA256(old)
	}
	return &Error{Kind: KindMismatch, Host: hostname, Presented: key, Detail: d}
}

// Insecure returns a callback that accepts every key.
func Insecure() ssh.HostKeyCallback {
	return func(string, net.Addr, ssh.PublicKey) error { return nil }
}

// KnownHosts parses the given OpenSSH known_hosts files (hashed |1| entries
// and [host]:port entries included) and returns a callback that checks keys
// against them. Parse once per run and share the callback: it is safe for
// concurrent use.
func KnownHosts(files ...string) (ssh.HostKeyCallback, error) {
	if len(files) == 0 {
		return nil, errors.New("known-hosts policy: no known_hosts file given")
	}
	db, err := knownhosts.New(files...)
	if err != nil {
		return nil, fmt.Errorf("read known_hosts %s: %w", strings.Join(files, ", "), err)
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := db(hostname, remote, key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) == 0 {
				return &Error{Kind: KindUnknown, Host: hostname, Presented: key, Detail: "not in known_hosts"}
			}
			// known_hosts often lists one key type per host; we do not
			// negotiate host-key algorithms from the file, so a key of a
			// type the file does not list is unknown rather than wrong.
			for _, w := range ke.Want {
				if w.Key.Type() == key.Type() {
					return &Error{Kind: KindMismatch, Host: hostname, Presented: key,
						Detail: fmt.Sprintf("known_hosts %s:%d has %s", w.Filename, w.Line, ssh.FingerprintSHA256(w.Key))}
				}
			}
			return &Error{Kind: KindUnknown, Host: hostname, Presented: key,
				Detail: "known_hosts has no " + key.Type() + " key for this host"}
		}
		var re *knownhosts.RevokedError
		if errors.As(err, &re) {
			return &Error{Kind: KindMismatch, Host: hostname, Presented: key, Detail: "key is revoked in known_hosts"}
		}
		return fmt.Errorf("check known_hosts for %s: %w", hostname, err)
	}, nil
}

// Checker hands out callbacks for one policy. Build it once per run; for
// known-hosts the files are parsed in NewChecker and never again.
type Checker struct {
	policy Policy
	shared ssh.HostKeyCallback
}

// NewChecker builds a Checker. knownHostsFiles is used only by PolicyKnownHosts.
func NewChecker(p Policy, knownHostsFiles ...string) (*Checker, error) {
	c := &Checker{policy: p}
	switch p {
	case PolicyPin:
	case PolicyInsecure:
		c.shared = Insecure()
	case PolicyKnownHosts:
		cb, err := KnownHosts(knownHostsFiles...)
		if err != nil {
			return nil, err
		}
		c.shared = cb
	default:
		_, err := ParsePolicy(string(p))
		return nil, err
	}
	return c, nil
}

// Policy returns the checker's policy.
func (c *Checker) Policy() Policy { return c.policy }

// Check verifies key for hostname; pinned is used only by PolicyPin.
func (c *Checker) Check(hostname string, remote net.Addr, key ssh.PublicKey, pinned []byte) error {
	if c.shared != nil {
		return c.shared(hostname, remote, key)
	}
	return CheckPinned(hostname, pinned, key)
}

// Callback returns a callback for one target; pinned is used only by PolicyPin.
func (c *Checker) Callback(pinned []byte) ssh.HostKeyCallback {
	if c.shared != nil {
		return c.shared
	}
	return Pin(pinned)
}
