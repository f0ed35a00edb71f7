// Package config resolves where the store lives and other settings from
// flags and the environment. It is the only package that knows the names of
// environment variables; everything else receives plain values.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Engine names a store implementation.
type Engine string

// The store engines.
const (
	Postgres Engine = "postgres"
	SQLite   Engine = "sqlite"
)

// Store says which store to open and why that one.
type Store struct {
	Engine Engine
	// URL is the Postgres connection string (Postgres only): a
	// postgres:// URL or a libpq keyword/value string ("host=db user=hb
	// dbname=hb"), both as pgx reads them. It may hold a password: show it
	// only through pkg/redact, never as it is.
	URL string
	// Path is the database file (SQLite only).
	Path string
	// Origin names where the setting came from ("--db", "HEARTBEAT_DB",
	// "default", ...), so errors can tell an admin what to change.
	Origin string
}

// Getenv looks up an environment variable; os.Getenv satisfies it.
type Getenv func(string) string

// postgresVars are the source system's variables; any of them set selects
// Postgres.
var postgresVars = []string{"POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"}

// ResolveStore picks the store, first match wins: the --db flag,
// HEARTBEAT_DB, DATABASE_URL, the POSTGRES_* variables, then an SQLite file
// under the XDG state directory (home is the user's home directory).
func ResolveStore(flagDB string, getenv Getenv, home string) (Store, error) {
	for _, c := range []struct{ origin, value string }{
		{"--db", flagDB},
		{"HEARTBEAT_DB", getenv("HEARTBEAT_DB")},
		{"DATABASE_URL", getenv("DATABASE_URL")},
	} {
		if c.value != "" {
			s, err := ParseStore(c.value)
			if err != nil {
				return Store{}, fmt.Errorf("%s: %w", c.origin, err)
			}
			s.Origin = c.origin
			return s, nil
		}
	}
	for _, v := range postgresVars {
		if getenv(v) != "" {
			return Store{Engine: Postgres, URL: postgresFromVars(getenv), Origin: "POSTGRES_* variables"}, nil
		}
	}
	state := getenv("XDG_STATE_HOME")
	if state == "" || !filepath.IsAbs(state) {
		// The XDG spec says relative values are invalid and must be ignored.
		if home == "" {
			return Store{}, errors.New("cannot place the default store: no home directory; set --db or HEARTBEAT_DB")
		}
		state = filepath.Join(home, ".local", "state")
	}
	return Store{Engine: SQLite, Path: filepath.Join(state, "heartbeat", "heartbeat.db"), Origin: "default"}, nil
}

// keywordValue recognises a libpq keyword/value connection string by its
// first setting ("host=db ..."); pgx parses the rest when the store opens.
var keywordValue = regexp.MustCompile(`^\s*[A-Za-z_]+\s*=`)

// ParseStore reads a store setting: a postgres:// or postgresql:// URL, a
// keyword/value connection string (host=db user=hb dbname=hb), an
// sqlite:PATH, or a path ending in .db.
func ParseStore(v string) (Store, error) {
	switch {
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		if err := checkPostgresURL(v); err != nil {
			// Not echoed: the URL may hold a password, and the caller
			// names the setting it came from.
			return Store{}, fmt.Errorf("malformed postgres URL: %w", err)
		}
		return Store{Engine: Postgres, URL: v}, nil
	case strings.HasPrefix(v, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(v, "sqlite:"), "//")
		if p == "" {
			return Store{}, errors.New("malformed store URL \"sqlite:\": no file path")
		}
		return Store{Engine: SQLite, Path: p}, nil
	case strings.HasSuffix(v, ".db") && !keywordValue.MatchString(v):
		return Store{Engine: SQLite, Path: v}, nil
	case keywordValue.MatchString(v):
		return Store{Engine: Postgres, URL: v}, nil
	}
	// Not echoed: a setting of no known form could be anything, a pasted
	// password included.
	return Store{}, errors.New("malformed store URL: want postgres://…, host=… (keyword/value), sqlite:PATH or a file path ending in .db")
}

// checkPostgresURL catches the mistakes worth naming before connecting: no
// host, or a port that is not a number. It reads the URL as pgx does (the
// userinfo runs to the '@' before the first '/', so a password may hold
// '#' or '?'), not as net/url does, which would reject what pgx accepts.
func checkPostgresURL(v string) error {
	_, rest, _ := strings.Cut(v, "://")
	authority, query := rest, ""
	if i := strings.IndexByte(authority, '/'); i >= 0 {
		authority = authority[:i]
	}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		rest = rest[at+1:]
	}
	hosts := rest
	if i := strings.IndexAny(hosts, "/?"); i >= 0 {
		hosts = rest[:i]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		query = rest[i+1:]
	}
	if hosts == "" {
		if q, err := url.ParseQuery(query); err != nil || q.Get("host") == "" {
			return errors.New("no host")
		}
		return nil
	}
	for _, h := range strings.Split(hosts, ",") {
		if strings.HasPrefix(h, "[") {
			// An IPv6 literal: the port, if any, follows the bracket.
			if i := strings.IndexByte(h, ']'); i >= 0 {
				h = "x" + h[i+1:]
			}
		}
		if _, port, ok := strings.Cut(h, ":"); ok && port != "" {
			if _, err := strconv.ParseUint(port, 10, 16); err != nil {
				return fmt.Errorf("port %q is not a number", port)
			}
		}
	}
	return nil
}

func postgresFromVars(getenv Getenv) string {
	get := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	u := url.URL{
		Scheme: "postgres",
		Host:   net.JoinHostPort(get("POSTGRES_HOST", "localhost"), get("POSTGRES_PORT", "5432")),
		Path:   "/" + get("POSTGRES_DB", "heartbeat"),
	}
	user := get("POSTGRES_USER", "postgres")
	if pw := getenv("POSTGRES_PASSWORD"); pw != "" {
		u.User = url.UserPassword(user, pw)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}
