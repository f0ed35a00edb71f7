// Package hostkey builds ssh.HostKeyCallback values for the three host-key
// policies heartbeat supports: pin (trust on first use), known-hosts
// (OpenSSH known_hosts files) and insecure (accept anything).
//
// Callbacks report failures as *Error so that callers can classify them with
// errors.As instead of matching message text.
package hostkey

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
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

// KnownHosts parses the given OpenSSH known_hosts files (hashed |1|
// entries, [host]:port entries, wildcards, negation, @cert-authority and
// @revoked lines) and returns a callback that checks keys against them the
// way ssh(1) does (see knownhosts.go). Parse once per run and share the
// callback: it is safe for concurrent use.
func KnownHosts(files ...string) (ssh.HostKeyCallback, error) {
	db, err := readKnownHosts(files...)
	if err != nil {
		return nil, err
	}
	return func(hostname string, _ net.Addr, key ssh.PublicKey) error {
		host, port, err := splitHostPort(hostname)
		if err != nil {
			return err
		}
		return db.check(host, port, db.lookup(lookupName(host, port)), key)
	}, nil
}

func splitHostPort(hostport string) (string, int, error) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, fmt.Errorf("check host key: %w", err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("check host key for %s: bad port: %w", hostport, err)
	}
	return h, port, nil
}

// Checker hands out host-key checks for one policy. Build it once per run;
// for known-hosts the files are parsed in NewChecker and never again.
type Checker struct {
	policy Policy
	db     *knownHostsDB // known-hosts only
}

// NewChecker builds a Checker. knownHostsFiles is used only by PolicyKnownHosts.
func NewChecker(p Policy, knownHostsFiles ...string) (*Checker, error) {
	c := &Checker{policy: p}
	switch p {
	case PolicyPin, PolicyInsecure:
	case PolicyKnownHosts:
		db, err := readKnownHosts(knownHostsFiles...)
		if err != nil {
			return nil, err
		}
		c.db = db
	default:
		_, err := ParsePolicy(string(p))
		return nil, err
	}
	return c, nil
}

// Policy returns the checker's policy.
func (c *Checker) Policy() Policy { return c.policy }

// Host is what a Checker knows about one target: which host-key algorithms
// to offer and how to verify the key the server presents. Build one per
// probe with Checker.Host; it is not shared between goroutines.
type Host struct {
	c      *Checker
	host   string
	port   int
	pinned []byte
	// pinnedCA: pinned is a certificate authority (HostCA), not a host key.
	pinnedCA bool
	lines    []*khLine // known-hosts: lines matching the lookup name
}

// Host looks host:port up once (known-hosts) or takes the pinned key's wire
// form (pin; nil if none is pinned yet). It returns a value so a prober can
// keep it inside its per-probe state without another allocation.
func (c *Checker) Host(host string, port int, pinned []byte) Host {
	h := Host{c: c, host: host, port: port, pinned: pinned}
	if c.db != nil {
		h.lines = c.db.lookup(lookupName(host, port))
	}
	return h
}

// HostCA is Host for a server whose pin is a certificate authority (the
// wire form of its public key; servers trust --ca): under the pin policy
// the server must present a host certificate ca signed for host (see
// CheckPinnedCA). Other policies ignore the pin, as they ignore a plain one.
func (c *Checker) HostCA(host string, port int, ca []byte) Host {
	h := c.Host(host, port, ca)
	h.pinnedCA = len(ca) > 0
	return h
}

// Algorithms is the host-key algorithm preference to offer, in the spirit
// of ssh's order_hostkeyalgs: algorithms for which a key (or, for
// certificates, a @cert-authority line) is already known come first, so a
// server with several host keys presents one that can be verified.
func (h *Host) Algorithms() []string {
	switch h.c.policy {
	case PolicyKnownHosts:
		return knownAlgorithms(h.lines)
	case PolicyPin:
		if h.pinnedCA {
			return caPinAlgorithms
		}
		return pinnedAlgorithms(h.pinned)
	}
	return defaultAlgorithms
}

// Check verifies the key the server presented; failures are *Error.
func (h *Host) Check(key ssh.PublicKey) error {
	switch h.c.policy {
	case PolicyKnownHosts:
		return h.c.db.check(h.host, h.port, h.lines, key)
	case PolicyPin:
		addr := net.JoinHostPort(h.host, strconv.Itoa(h.port))
		if h.pinnedCA {
			return CheckPinnedCA(addr, h.pinned, key)
		}
		return CheckPinned(addr, h.pinned, key)
	}
	return nil
}

// Check verifies key for hostname ("host:port"); pinned is used only by
// PolicyPin.
func (c *Checker) Check(hostname string, _ net.Addr, key ssh.PublicKey, pinned []byte) error {
	host, port, err := splitHostPort(hostname)
	if err != nil {
		return err
	}
	h := c.Host(host, port, pinned)
	return h.Check(key)
}

// Callback returns a callback for one target; pinned is used only by PolicyPin.
func (c *Checker) Callback(pinned []byte) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		return c.Check(hostname, remote, key, pinned)
	}
}
