// Package backend opens the store a Target names. It is a leaf: both
// engines import pkg/store, so the choice between them cannot live there.
// It takes a resolved Target rather than a config.Store, so that the store
// layer does not depend on how settings are found (pkg/cli translates).
package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/postgres"
	"github.com/stacksense/heartbeat/pkg/store/sqlite"
)

// Migrator is a store that can bring its own schema up to date.
type Migrator interface {
	// Migrate applies pending migrations and returns how many it applied.
	Migrate(ctx context.Context) (int, error)
}

// Store is what Open returns: the repository, and the means to migrate it.
type Store interface {
	store.Store
	Migrator
}

// Engine names a store implementation.
type Engine string

// The store engines.
const (
	Postgres Engine = "postgres"
	SQLite   Engine = "sqlite"
)

// Target is a resolved store to open.
type Target struct {
	Engine Engine
	// URL is the Postgres connection string: a postgres:// URL or a
	// keyword/value string, as pgx reads them. It may hold a password.
	URL string
	// Path is the SQLite database file.
	Path string
	// ConnectTimeout bounds reaching a Postgres store; 0 means the
	// engine's default.
	ConnectTimeout time.Duration
}

// Open opens the target store. The SQLite default migrates itself; a
// Postgres store whose schema is behind is returned together with an error
// wrapping store.ErrSchemaBehind, so that `heartbeat migrate` can use it
// while every other command stops.
func Open(ctx context.Context, t Target) (Store, error) {
	switch t.Engine {
	case Postgres:
		s, err := postgres.Open(ctx, t.URL, postgres.Options{ConnectTimeout: t.ConnectTimeout})
		if s == nil {
			return nil, err
		}
		return s, err
	case SQLite:
		s, err := sqlite.Open(ctx, t.Path)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown store engine %q", t.Engine)
}
