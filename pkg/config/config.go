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
	"strings"

	"github.com/stacksense/heartbeat/pkg/store"
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
	// URL is the postgres:// URL (Postgres only). It may hold a password:
	// log Display(), never URL.
	URL string
	// Path is the database file (SQLite only).
	Path string
	// Origin names where the setting came from ("--db", "HEARTBEAT_DB",
	// "default", ...), so errors can tell an admin what to change.
	Origin string
}

// Display is the store's name with any password redacted.
func (s Store) Display() string {
	if s.Engine == SQLite {
		return "sqlite:" + s.Path
	}
	return store.RedactURL(s.URL)
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

// ParseStore reads a store setting: a postgres:// or postgresql:// URL, an
// sqlite:PATH, or a path ending in .db.
func ParseStore(v string) (Store, error) {
	switch {
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		u, err := url.Parse(v)
		if err != nil {
			// url's error quotes the input, password and all.
			return Store{}, fmt.Errorf("malformed postgres URL %s", store.RedactURL(v))
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return Store{}, fmt.Errorf("malformed postgres URL %s: no host", store.RedactURL(v))
		}
		return Store{Engine: Postgres, URL: v}, nil
	case strings.HasPrefix(v, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(v, "sqlite:"), "//")
		if p == "" {
			return Store{}, errors.New("malformed store URL \"sqlite:\": no file path")
		}
		return Store{Engine: SQLite, Path: p}, nil
	case strings.HasSuffix(v, ".db"):
		return Store{Engine: SQLite, Path: v}, nil
	}
	return Store{}, fmt.Errorf("malformed store URL %s: want postgres://…, sqlite:PATH or a file path ending in .db", store.RedactURL(v))
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
