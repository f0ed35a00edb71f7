// Package redact hides secrets in text that is about to be shown to a
// person or written to a log: the passwords in a Postgres connection string,
// in every form pgx accepts.
//
// It is a leaf (it imports nothing of heartbeat's), so config, the store
// engines, doctor and the CLI can all use it without depending on each
// other.
package redact

import (
	"net/url"
	"strings"
)

// Mask replaces every secret value.
const Mask = "xxxxx"

// secretKeys are the connection settings whose values are secrets: the
// login password and the passphrase of the TLS client key. (PGPASSWORD and
// PGSSLPASSWORD are read by pgx from the environment and never appear in a
// connection string.)
var secretKeys = map[string]bool{"password": true, "sslpassword": true}

func isSecretKey(k string) bool { return secretKeys[strings.ToLower(k)] }

// ConnString returns s with every password hidden, for any form pgx
// accepts: a postgres:// or postgresql:// URL (password in the userinfo or
// in a password= or sslpassword= query parameter) or a keyword/value string
// (password=secret, password='a secret', with backslash escapes). Anything
// it cannot parse is cut where parsing stopped, since what follows may be a
// secret. Text with neither form (an SQLite path) is returned unchanged.
func ConnString(s string) string {
	if hasScheme(s) {
		return URL(s)
	}
	if strings.Contains(s, "=") {
		return keywordValue(s)
	}
	// No scheme and no keyword: a path, or garbage. A '@' may still follow
	// a user:password written without a scheme.
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return Mask + s[i:]
	}
	return s
}

// hasScheme reports whether s starts like a URL: scheme "://".
func hasScheme(s string) bool {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return false
	}
	for i, c := range scheme {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// URL hides the password of a URL, in the userinfo or in a password= or
// sslpassword= query parameter. It reads the URL the way pgx (and libpq)
// do, not as net/url does: pgx takes a '#' or '?' inside the userinfo as
// part of the password, where net/url would start a fragment or query and
// leave the password in view. Where the two readings could differ it hides
// more: the userinfo runs to the last '@' before the first '/'.
func URL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")
	authority := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority = rest[:i]
	}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		user, _, hasPassword := strings.Cut(authority[:at], ":")
		b.WriteString(user)
		if hasPassword {
			b.WriteString(":" + Mask)
		}
		rest = rest[at:]
	}
	q := strings.IndexByte(rest, '?')
	if q < 0 {
		b.WriteString(rest)
		return b.String()
	}
	b.WriteString(rest[:q+1])
	b.WriteString(query(rest[q+1:]))
	return b.String()
}

// query hides the values of secret parameters in a URL query, keeping the
// rest as written. A key that does not percent-decode is treated as
// secret: pgx would reject it, but it could be "pass%word".
func query(q string) string {
	pairs := strings.Split(q, "&")
	for i, p := range pairs {
		k, _, hasValue := strings.Cut(p, "=")
		if !hasValue {
			continue
		}
		dk, err := url.PathUnescape(k)
		if err != nil || isSecretKey(dk) {
			pairs[i] = k + "=" + Mask
		}
	}
	return strings.Join(pairs, "&")
}

// isSpace is libpq's (and pgx's) notion of whitespace in a keyword/value
// string.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// keywordValue hides the values of secret keywords in a libpq
// keyword/value string, following pgx's parser: keyword, optional spaces,
// '=', optional spaces, then a value that is either single-quoted (ending
// at the first unescaped quote) or runs to the next space, '\' escaping the
// next byte in both. Everything but the secret values is kept byte for
// byte.
func keywordValue(s string) string {
	var b strings.Builder
	i := 0
	for {
		// Leading whitespace.
		j := i
		for j < len(s) && isSpace(s[j]) {
			j++
		}
		if j == len(s) {
			b.WriteString(s[i:])
			return b.String()
		}
		eq := strings.IndexByte(s[j:], '=')
		if eq < 0 {
			// No '=': malformed; the rest may be a secret.
			b.WriteString(s[i:j])
			b.WriteString(Mask)
			return b.String()
		}
		key := strings.TrimRight(s[j:j+eq], " \t\n\v\f\r")
		if key == "" || strings.ContainsAny(key, " \t\n\v\f\r") {
			// pgx rejects a keyword with spaces inside; do not guess
			// where the next setting starts.
			b.WriteString(s[i:j])
			b.WriteString(Mask)
			return b.String()
		}
		// Copy up to and including '=' and the spaces after it.
		v := j + eq + 1
		for v < len(s) && isSpace(s[v]) {
			v++
		}
		b.WriteString(s[i:v])
		end, ok := valueEnd(s, v)
		if !ok {
			// An unterminated quote: the rest is this value.
			b.WriteString(Mask)
			return b.String()
		}
		if isSecretKey(key) {
			b.WriteString(Mask)
		} else {
			b.WriteString(s[v:end])
		}
		i = end
	}
}

// valueEnd returns where the value starting at s[v] ends (just past the
// closing quote of a quoted value), and false for an unterminated quote.
func valueEnd(s string, v int) (int, bool) {
	if v == len(s) {
		return v, true
	}
	if s[v] != '\'' {
		e := v
		for e < len(s) && !isSpace(s[e]) {
			if s[e] == '\\' {
				e++
			}
			e++
		}
		return min(e, len(s)), true
	}
	for e := v + 1; e < len(s); e++ {
		switch s[e] {
		case '\\':
			e++
		case '\'':
			return e + 1, true
		}
	}
	return len(s), false
}
