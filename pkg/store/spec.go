package store

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what an admin may store. Values are printed in tables, the
// page and logs; unbounded ones once made `servers list` grow to 23 GB.
const (
	MaxNameLen         = 128
	MaxHostLen         = 253 // the longest DNS name
	MaxUserLen         = 32  // useradd's limit
	MaxKeyPathLen      = 4096
	MaxAlertMessageLen = 1024
	// MaxAlertKeyLen bounds an alert's external key, in characters.
	MaxAlertKeyLen = 256
	// MaxAlertSourceLen bounds an alert's source, in characters.
	MaxAlertSourceLen = 32
)

// invalidf returns an error that reads as the message and matches
// ErrInvalid.
func invalidf(format string, a ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, a...)}
}

type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// Validate reports the first problem with a server spec in words an admin
// can act on, naming the field; the error matches ErrInvalid. Both engines
// and the CLI rely on it, so a bad spec is refused the same way whichever
// path it came in by.
func (s ServerSpec) Validate() error {
	if err := checkText("server name", s.Name, MaxNameLen, false); err != nil {
		return err
	}
	if isDigits(s.Name) {
		// Commands take "ID|NAME"; an all-digit name would be ambiguous.
		return invalidf("server name %q is all digits and would be confused with an id", s.Name)
	}
	if err := checkHost(s.Host); err != nil {
		return invalidf("server %q: %v", s.Name, err)
	}
	if s.Port < 0 || s.Port > 65535 {
		return invalidf("server %q: port %d is out of range 1-65535", s.Name, s.Port)
	}
	if s.User != "" {
		if err := checkText("user", s.User, MaxUserLen, false); err != nil {
			return invalidf("server %q: %v", s.Name, err)
		}
		if strings.ContainsFunc(s.User, unicode.IsSpace) {
			return invalidf("server %q: user %q contains a space", s.Name, s.User)
		}
	}
	if s.KeyPath != "" {
		if err := checkText("key path", s.KeyPath, MaxKeyPathLen, false); err != nil {
			return invalidf("server %q: %v", s.Name, err)
		}
	}
	if s.Mode != "" {
		if err := ValidateMode(s.Mode); err != nil {
			return invalidf("server %q: %v", s.Name, err)
		}
	}
	if s.StaleAfter != 0 {
		if err := ValidateStaleAfter(s.StaleAfter); err != nil {
			return invalidf("server %q: %v", s.Name, err)
		}
	}
	return nil
}

// ValidateStaleAfter accepts a freshness window from MinStaleAfter to
// MaxStaleAfter; the error matches ErrInvalid.
func ValidateStaleAfter(d time.Duration) error {
	if d < MinStaleAfter || d > MaxStaleAfter {
		return invalidf("stale-after %s is outside %s-%s", d, MinStaleAfter, "720h")
	}
	return nil
}

// StaleAfterMillis is the stored form of a spec's stale-after: whole
// milliseconds, DefaultStaleAfter for 0.
func StaleAfterMillis(d time.Duration) int64 {
	if d == 0 {
		d = DefaultStaleAfter
	}
	return d.Milliseconds()
}

// ValidateMode accepts ModeSSH and ModePush; anything else is ErrInvalid.
// SetServerMode on both engines and the CLI decide through it.
func ValidateMode(mode string) error {
	if mode != ModeSSH && mode != ModePush {
		return invalidf("mode %q is not %s or %s", mode, ModeSSH, ModePush)
	}
	return nil
}

// checkText accepts a non-empty value of at most max characters, valid
// UTF-8, every character printable (no control characters, so no newline
// or terminal escape sequence can reach a table or a log line), with no
// whitespace at either end. A message is freer: tabs pass, and so does
// whitespace at the ends.
func checkText(field, v string, max int, message bool) error {
	switch {
	case strings.TrimSpace(v) == "":
		return invalidf("%s is empty", field)
	case !utf8.ValidString(v):
		return invalidf("%s %q is not valid UTF-8", field, v)
	case utf8.RuneCountInString(v) > max:
		// The value itself could be megabytes: name its size, not it.
		return invalidf("%s is %d characters long, more than %d", field, utf8.RuneCountInString(v), max)
	case !message && v != strings.TrimSpace(v):
		return invalidf("%s %q has leading or trailing spaces", field, v)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) && !(message && r == '\t') {
			return invalidf("%s %q contains a control or non-printable character %U", field, v, r)
		}
	}
	return nil
}

// checkHost accepts an IP literal as net/netip parses it (IPv4, or IPv6
// without brackets, with or without a zone: ::1, fe80::1%eth0) or a DNS
// hostname of RFC 1123 labels (letters, digits, hyphens inside; at most 63
// characters each; one trailing dot allowed), at most MaxHostLen long.
func checkHost(h string) error {
	switch {
	case h == "":
		return invalidf("host is empty")
	case len(h) > MaxHostLen:
		return invalidf("host is %d characters long, more than %d", len(h), MaxHostLen)
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		return invalidf("host %q: write an IPv6 address without brackets", h)
	}
	name := strings.TrimSuffix(h, ".")
	for _, label := range strings.Split(name, ".") {
		if !validLabel(label) {
			return invalidf("host %q is not a hostname or IP address", h)
		}
	}
	return nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidateImport decides, for both engines, whether a batch of specs may
// be imported: each must pass Validate (ErrInvalid), and no name may
// appear twice (ErrConflict), since "the last row wins" would silently
// drop a line of the file. Errors name the spec's Line when it has one,
// else its 1-based position in the batch.
func ValidateImport(specs []ServerSpec) error {
	where := func(i int) string {
		if specs[i].Line > 0 {
			return fmt.Sprintf("line %d", specs[i].Line)
		}
		return fmt.Sprintf("row %d", i+1)
	}
	first := make(map[string]int, len(specs))
	for i, spec := range specs {
		if err := spec.Validate(); err != nil {
			return fmt.Errorf("%s: %w", where(i), err)
		}
		if j, dup := first[spec.Name]; dup {
			return &conflictError{msg: fmt.Sprintf("server name %q appears twice, on %s and %s", spec.Name, where(j), where(i))}
		}
		first[spec.Name] = i
	}
	return nil
}

type conflictError struct{ msg string }

func (e *conflictError) Error() string        { return e.msg }
func (e *conflictError) Is(target error) bool { return target == ErrConflict }

// Normalized returns the spec with defaults applied.
func (s ServerSpec) Normalized() ServerSpec {
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	if s.Mode == "" {
		s.Mode = ModeSSH
	}
	return s
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Same reports whether the server already matches the spec, so an import
// can count it as unchanged.
func (s Server) Same(spec ServerSpec) bool {
	spec = spec.Normalized()
	return s.Host == spec.Host && s.Port == spec.Port && s.User == spec.User && s.KeyPath == spec.KeyPath
}

// Validate reports the first problem with an alert spec, naming the
// field; the error matches ErrInvalid. Messages are one printable line
// (tabs allowed) of at most MaxAlertMessageLen characters.
func (a AlertSpec) Validate() error {
	switch {
	case a.Kind != KindAlert && a.Kind != KindAnomaly:
		return invalidf("alert kind %q is not %s or %s", a.Kind, KindAlert, KindAnomaly)
	case a.Severity != SeverityInfo && a.Severity != SeverityWarning && a.Severity != SeverityCritical:
		return invalidf("alert severity %q is not %s, %s or %s", a.Severity, SeverityInfo, SeverityWarning, SeverityCritical)
	}
	if a.ExternalKey != "" {
		if err := checkText("alert key", a.ExternalKey, MaxAlertKeyLen, false); err != nil {
			return err
		}
	}
	if a.Source != "" {
		if err := checkText("alert source", a.Source, MaxAlertSourceLen, false); err != nil {
			return err
		}
	}
	return checkText("alert message", a.Message, MaxAlertMessageLen, true)
}

// LastResultPerServer drops all but the last result for each server,
// keeping the order of first appearance. Engines write one row per server
// per batch, and a batch could otherwise name a server twice.
func LastResultPerServer(results []ProbeResult) []ProbeResult {
	index := make(map[int64]int, len(results))
	out := make([]ProbeResult, 0, len(results))
	for _, r := range results {
		if i, ok := index[r.ServerID]; ok {
			out[i] = r
			continue
		}
		index[r.ServerID] = len(out)
		out = append(out, r)
	}
	return out
}

// PushAuth is what a server's pushes are verified against, as stored.
type PushAuth struct {
	// TokenHash is the stored hash of the server's token; nil if none was
	// issued.
	TokenHash []byte
	// TokenlessFrom is the server's token-less allowance (Server's field).
	TokenlessFrom []netip.Prefix
}

// VerifiedPushes checks each push against what is stored for its server
// (by server id; a server missing from stored is unknown): a push with a
// token by its token alone, in constant time; a push without one
// (empty TokenHash) by its RemoteAddr against the server's TokenlessFrom.
// It returns the push to record per server, the last verified push
// winning when a server appears twice, in ascending id order so that
// engines take row locks in a fixed order, and a verdict per push: OK
// (and Tokenless) set for verified ones; engines add ServerName and At once
// the heartbeat is written.
func VerifiedPushes(pushes []Push, stored map[int64]PushAuth) (record []Push, verdicts []PushOutcome) {
	verdicts = make([]PushOutcome, len(pushes))
	last := make(map[int64]Push, len(pushes))
	for i, p := range pushes {
		auth := stored[p.ServerID]
		switch {
		case len(p.TokenHash) == 0:
			verdicts[i] = PushOutcome{OK: TokenlessAllows(auth.TokenlessFrom, p.RemoteAddr), Tokenless: true}
		default:
			// Unknown servers compare against nil, which costs the same as
			// a mismatch: the answer does not reveal whether the id exists.
			verdicts[i].OK = TokenMatches(auth.TokenHash, p.TokenHash)
		}
		if !verdicts[i].OK {
			verdicts[i] = PushOutcome{}
			continue
		}
		last[p.ServerID] = p
	}
	record = make([]Push, 0, len(last))
	for _, p := range last {
		record = append(record, p)
	}
	slices.SortFunc(record, func(a, b Push) int { return cmp.Compare(a.ServerID, b.ServerID) })
	return record, verdicts
}

// PushServerIDs returns the distinct server ids of a batch.
func PushServerIDs(pushes []Push) []int64 {
	ids := make([]int64, 0, len(pushes))
	for _, p := range pushes {
		ids = append(ids, p.ServerID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
