// Package backend opens the store a config.Store names. It is a leaf: both
// engines import pkg/store, so the choice between them cannot live there.
package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/stacksense/heartbeat/pkg/config"
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

// Open opens the configured store. The SQLite default migrates itself; a
// Postgres store whose schema is behind is returned together with an error
// wrapping store.ErrSchemaBehind, so that `heartbeat migrate` can use it
// while every other command stops.
func Open(ctx context.Context, cfg config.Store, connectTimeout time.Duration) (Store, error) {
	switch cfg.Engine {
	case config.Postgres:
		s, err := postgres.Open(ctx, cfg.URL, postgres.Options{ConnectTimeout: connectTimeout})
		if s == nil {
			return nil, err
		}
		return s, err
	case config.SQLite:
		s, err := sqlite.Open(ctx, cfg.Path)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown store engine %q", cfg.Engine)
}
