package doctor

import (
	"context"
	"errors"
	"fmt"

	"github.com/stacksense/heartbeat/pkg/store"
)

// openStore opens the configured store and tells apart the three ways that
// fails (schema behind, unreachable, misconfigured), each with its own fix.
func (d *doctor) openStore(ctx context.Context) (store.Store, Result) {
	r := Result{Check: CheckStore}
	if d.cfg.OpenStore == nil {
		r.Status, r.Message = Fail, "no store configured"
		return nil, r
	}
	s, err := d.cfg.OpenStore(ctx)
	switch {
	case errors.Is(err, store.ErrSchemaBehind):
		r.Status, r.Message = Fail, err.Error()
		r.Fix = "run `heartbeat migrate` with the same store settings (safe from several hosts at once), then run doctor again"
		return nil, r
	case errors.Is(err, store.ErrUnavailable):
		r.Status, r.Message = Fail, err.Error()
		r.Fix = fmt.Sprintf("start the database or correct the store setting (chosen by %s); check the host, port, user and password, and that pg_hba.conf admits this host; --connect-timeout raises the wait", d.originOr("the default"))
		return nil, r
	case err != nil:
		r.Status, r.Message = Fail, err.Error()
		r.Fix = "set the store with --db, HEARTBEAT_DB, DATABASE_URL or POSTGRES_*: a postgres:// URL, a host=… keyword/value string, sqlite:PATH or a path ending in .db"
		return nil, r
	}
	r.Status = OK
	r.Message = fmt.Sprintf("%s reachable, schema current (chosen by %s)", d.cfg.StoreName, d.originOr("default"))
	return s, r
}

func (d *doctor) originOr(def string) string {
	if d.cfg.StoreOrigin == "" {
		return def
	}
	return d.cfg.StoreOrigin
}
