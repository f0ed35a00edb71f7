package hostkey

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// This file reads OpenSSH known_hosts files and answers the two questions
// ssh(1) asks of them for one connection, following OpenSSH 9.2's
// sshconnect.c and hostfile.c rather than x/crypto/ssh/knownhosts, which
// differs in ways that turn healthy servers into failures:
//
//   - The lookup name is the host for port 22 and "[host]:port" for any
//     other port, matched against each line's comma-separated patterns
//     with * and ? wildcards and !negation over the whole name (so "*"
//     matches "[10.0.0.1]:2222"; x/crypto pins "*" to port 22).
//   - Host-key algorithms are ordered like order_hostkeyalgs: certificate
//     algorithms first when a @cert-authority line matches the lookup name,
//     then the algorithms of the keys known for it, then the rest.
//   - When no key of the presented type is known for "[host]:port" on a
//     non-default port, ssh checks the bare host name once more and accepts
//     a matching key ("found matching key w/out port"); a differing key there
//     does not turn the verdict into "changed".
//   - A host certificate is accepted when a @cert-authority line matching
//     the lookup name holds its signing key and the certificate is valid for
//     the host name as dialled (principals, validity window); otherwise the
//     certified plain key is checked like any other key.
//   - @cert-authority lines are never "the expected key" for a plain key.
//
// One deliberate difference: a key on any @revoked line is refused for
// every host (x/crypto's rule and the safer one), where ssh scopes the line
// to its host patterns.

const (
	markerNone = ""
	markerCA   = "cert-authority"
	markerRev  = "revoked"
)

// khLine is one parsed known_hosts line.
type khLine struct {
	marker   string
	patterns []string // lower-cased; nil for a hashed entry
	salt     []byte   // hashed entry: HMAC-SHA1 key
	sum      []byte   // hashed entry: HMAC-SHA1 of the lookup name
	// inner and outer are SHA-1 states with the HMAC key blocks already
	// absorbed, so testing a name costs two short hashes instead of an
	// HMAC set-up (BenchmarkKnownHostsHost: 8.2 ms to 3.5 ms per lookup in a
	// 10,000-line hashed file).
	inner, outer []byte
	key          ssh.PublicKey
	file         string
	line         int
}

// matches reports whether the line's host field matches name the way
// OpenSSH's match_hostname does: a negated pattern that matches excludes the
// line even if another pattern matches.
func (l *khLine) matches(name string, h *hashState) bool {
	if l.salt != nil {
		return h.equal(l, name)
	}
	positive := false
	for _, p := range l.patterns {
		negated := strings.HasPrefix(p, "!")
		if negated {
			p = p[1:]
		}
		if wildcard(p, name) {
			if negated {
				return false
			}
			positive = true
		}
	}
	return positive
}

// hashState is the scratch space for testing hashed lines during one
// lookup.
type hashState struct {
	h   hash.Hash
	buf [sha1.Size]byte
}

// prepareHash precomputes the HMAC-SHA1 key states of a hashed line
// (RFC 2104: the key is at most one block, padded with zeros).
func (l *khLine) prepareHash() error {
	key := l.salt
	if len(key) > sha1.BlockSize {
		k := sha1.Sum(key)
		key = k[:]
	}
	var ipad, opad [sha1.BlockSize]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	state := func(block []byte) ([]byte, error) {
		h := sha1.New()
		h.Write(block)
		return h.(encoding.BinaryMarshaler).MarshalBinary()
	}
	var err error
	if l.inner, err = state(ipad[:]); err != nil {
		return err
	}
	l.outer, err = state(opad[:])
	return err
}

func (s *hashState) equal(l *khLine, name string) bool {
	if s.h == nil {
		s.h = sha1.New()
	}
	u := s.h.(encoding.BinaryUnmarshaler)
	if u.UnmarshalBinary(l.inner) != nil {
		return false
	}
	io.WriteString(s.h, name)
	inner := s.h.Sum(s.buf[:0])
	if u.UnmarshalBinary(l.outer) != nil {
		return false
	}
	s.h.Write(inner)
	return hmac.Equal(s.h.Sum(s.buf[:0]), l.sum)
}

// wildcard matches s against a pattern with * (any run) and ? (one byte).
func wildcard(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if wildcard(p, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
		}
		p, s = p[1:], s[1:]
	}
	return s == ""
}

func literal(p string) bool { return !strings.ContainsAny(p, "*?!") }

// knownHostsDB is a parsed set of known_hosts files. It is read-only after
// parsing, so one value serves every probe of a run concurrently.
type knownHostsDB struct {
	lines []khLine
	// byName indexes lines whose patterns are all literal names, so a
	// fleet-sized file is not scanned per probe; every other line (hashed,
	// wildcard, negated) is in slow and is tested one by one, as ssh does.
	byName  map[string][]int
	slow    []int
	revoked map[string]*khLine // key wire form -> line
}

func readKnownHosts(files ...string) (*knownHostsDB, error) {
	if len(files) == 0 {
		return nil, errors.New("known-hosts policy: no known_hosts file given")
	}
	db := &knownHostsDB{byName: map[string][]int{}, revoked: map[string]*khLine{}}
	for _, fn := range files {
		f, err := os.Open(fn)
		if err != nil {
			return nil, fmt.Errorf("read known_hosts %s: %w", fn, err)
		}
		err = db.read(f, fn)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read known_hosts %s: %w", fn, err)
		}
	}
	for i := range db.lines {
		l := &db.lines[i]
		if l.marker == markerRev {
			db.revoked[string(l.key.Marshal())] = l
			continue
		}
		if l.salt == nil && allLiteral(l.patterns) {
			for _, p := range l.patterns {
				db.byName[p] = append(db.byName[p], i)
			}
			continue
		}
		db.slow = append(db.slow, i)
	}
	return db, nil
}

func allLiteral(ps []string) bool {
	for _, p := range ps {
		if !literal(p) {
			return false
		}
	}
	return true
}

func (db *knownHostsDB) read(r io.Reader, fn string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		marker, hosts, key, _, _, err := ssh.ParseKnownHosts(sc.Bytes())
		if errors.Is(err, io.EOF) {
			continue // blank line or comment
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		l := khLine{marker: marker, key: key, file: fn, line: n}
		if len(hosts) == 1 && strings.HasPrefix(hosts[0], "|1|") {
			parts := strings.Split(hosts[0], "|")
			if len(parts) != 4 {
				return fmt.Errorf("line %d: malformed hashed host", n)
			}
			if l.salt, err = base64.StdEncoding.DecodeString(parts[2]); err != nil {
				return fmt.Errorf("line %d: hashed host salt: %w", n, err)
			}
			if l.sum, err = base64.StdEncoding.DecodeString(parts[3]); err != nil {
				return fmt.Errorf("line %d: hashed host: %w", n, err)
			}
			if err := l.prepareHash(); err != nil {
				return fmt.Errorf("line %d: hashed host: %w", n, err)
			}
		} else {
			for _, h := range hosts {
				l.patterns = append(l.patterns, strings.ToLower(h))
			}
		}
		db.lines = append(db.lines, l)
	}
	return sc.Err()
}

// lookupName is the name ssh looks up for host:port (put_host_port).
func lookupName(host string, port int) string {
	host = strings.ToLower(host)
	if port == 0 || port == 22 {
		return host
	}
	return "[" + host + "]:" + strconv.Itoa(port)
}

// lookup returns the non-revoked lines matching name, in file order.
func (db *knownHostsDB) lookup(name string) []*khLine {
	var idx []int
	for _, i := range db.byName[name] {
		idx = append(idx, i)
	}
	var h hashState
	for _, i := range db.slow {
		if db.lines[i].matches(name, &h) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	sort.Ints(idx)
	out := make([]*khLine, 0, len(idx))
	for j, i := range idx {
		if j > 0 && idx[j-1] == i {
			continue // a line listing the same name twice
		}
		out = append(out, &db.lines[i])
	}
	return out
}

func (db *knownHostsDB) isRevoked(k ssh.PublicKey) bool {
	_, ok := db.revoked[string(k.Marshal())]
	return ok
}

// algorithms orders host-key algorithms for the lines known for a host.
func knownAlgorithms(lines []*khLine) []string {
	if len(lines) == 0 {
		return defaultAlgorithms
	}
	var first, last []string
	ca := false
	types := map[string]bool{}
	for _, l := range lines {
		if l.marker == markerCA {
			ca = true
		} else {
			types[l.key.Type()] = true
		}
	}
	if ca {
		first = append(first, certAlgorithms...)
	}
	for _, a := range defaultAlgorithms {
		if types[keyTypeOf(a)] {
			first = append(first, a)
		} else {
			last = append(last, a)
		}
	}
	return append(first, last...)
}

// check verifies key for host:port against the lines matching the lookup
// name (lines) and, where ssh would, the bare host name.
func (db *knownHostsDB) check(host string, port int, lines []*khLine, key ssh.PublicKey) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	name := lookupName(host, port)
	if db.isRevoked(key) {
		return &Error{Kind: KindMismatch, Host: addr, Presented: key, Detail: "key is revoked in known_hosts"}
	}
	cert, isCert := key.(*ssh.Certificate)
	if !isCert {
		return db.checkPlain(host, port, lines, key, key)
	}
	if db.isRevoked(cert.SignatureKey) || db.isRevoked(cert.Key) {
		return &Error{Kind: KindMismatch, Host: addr, Presented: key, Detail: "key is revoked in known_hosts"}
	}
	var certErr *Error
	switch ca := findCA(lines, cert.SignatureKey); {
	case cert.CertType != ssh.HostCert:
		certErr = &Error{Kind: KindMismatch, Host: addr, Presented: key, Detail: "the server presented a user certificate as its host key"}
	case ca == nil:
		certErr = &Error{Kind: KindUnknown, Host: addr, Presented: key,
			Detail: fmt.Sprintf("host certificate signed by CA %s, which no @cert-authority line trusts for %s", ssh.FingerprintSHA256(cert.SignatureKey), name)}
	default:
		// Principals are checked against the host name as dialled, not
		// the "[host]:port" lookup name, as ssh does. ssh treats an
		// invalid certificate as no key at all ("No ED25519-CERT host key
		// is known"): unknown, not changed. The reason comes first, as
		// messages are cut to one short line.
		var cc ssh.CertChecker
		// Principals are compared literally: ssh 9.2 refuses a host
		// certificate for "127.0.0.*" when dialling 127.0.0.1 (tested).
		principal := strings.ToLower(host)
		err := cc.CheckCert(principal, cert)
		if err == nil {
			return nil
		}
		certErr = &Error{Kind: KindUnknown, Host: addr, Presented: key,
			Detail: fmt.Sprintf("certificate not valid: %s (CA %s:%d)", certReason(cert, principal, err), ca.file, ca.line)}
	}
	// ssh retries a refused certificate as the plain key it certifies.
	if err := db.checkPlain(host, port, lines, cert.Key, key); err == nil {
		return nil
	}
	return certErr
}

func findCA(lines []*khLine, signer ssh.PublicKey) *khLine {
	blob := signer.Marshal()
	for _, l := range lines {
		if l.marker == markerCA && bytes.Equal(l.key.Marshal(), blob) {
			return l
		}
	}
	return nil
}

// checkPlain checks a plain key; presented is what the server sent (the
// key or the certificate carrying it), for the error.
func (db *knownHostsDB) checkPlain(host string, port int, lines []*khLine, key, presented ssh.PublicKey) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	name := lookupName(host, port)
	blob := key.Marshal()
	var sameType *khLine
	plain := 0
	for _, l := range lines {
		if l.marker != markerNone {
			continue
		}
		plain++
		if bytes.Equal(l.key.Marshal(), blob) {
			return nil
		}
		if sameType == nil && l.key.Type() == key.Type() {
			sameType = l
		}
	}
	if sameType != nil {
		return &Error{Kind: KindMismatch, Host: addr, Presented: presented,
			Detail: fmt.Sprintf("known_hosts %s:%d has %s", sameType.file, sameType.line, ssh.FingerprintSHA256(sameType.key))}
	}
	if bare := lookupName(host, 22); bare != name {
		// sshconnect.c, HOST_NEW on a non-default port: "checking without
		// port identifier". Only an equal key counts there.
		for _, l := range db.lookup(bare) {
			if l.marker == markerNone && bytes.Equal(l.key.Marshal(), blob) {
				return nil
			}
		}
	}
	if plain == 0 {
		return &Error{Kind: KindUnknown, Host: addr, Presented: presented, Detail: name + " not in known_hosts"}
	}
	return &Error{Kind: KindUnknown, Host: addr, Presented: presented,
		Detail: "known_hosts has no " + key.Type() + " key for " + name}
}

// certReason says briefly why CheckCert refused a certificate.
func certReason(cert *ssh.Certificate, host string, err error) string {
	now := uint64(time.Now().Unix())
	switch {
	case len(cert.ValidPrincipals) > 0 && !containsString(cert.ValidPrincipals, host):
		return fmt.Sprintf("issued for %s, not %s", strings.Join(cert.ValidPrincipals, ","), host)
	case cert.ValidBefore != ssh.CertTimeInfinity && now >= cert.ValidBefore:
		return "expired " + time.Unix(int64(cert.ValidBefore), 0).UTC().Format(time.RFC3339)
	case now < cert.ValidAfter:
		return "not valid before " + time.Unix(int64(cert.ValidAfter), 0).UTC().Format(time.RFC3339)
	}
	return strings.TrimPrefix(err.Error(), "ssh: ")
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
