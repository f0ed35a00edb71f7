package postgres

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stacksense/heartbeat/pkg/store"
)

// interpret is the one place that turns what pgx returned into the store's
// vocabulary: no rows is store.ErrNotFound, a unique violation
// store.ErrConflict, a check, not-null or too-long violation
// store.ErrInvalid, and the two timeouts the pool sets one line saying
// what the statement waited for. Methods wrap its result with what they
// were doing; the pgx error stays reachable with errors.As.
func (s *Store) interpret(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w", store.ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case "23505": // unique_violation
		return &store.DriverError{Msg: "already exists", Kind: store.ErrConflict, Err: err}
	case "23514", "23502", "22001": // check_violation, not_null_violation, string_data_right_truncation
		return &store.DriverError{Msg: "value refused: " + pgErr.Message, Kind: store.ErrInvalid, Err: err}
	case "23503": // foreign_key_violation: the server it refers to is gone
		return &store.DriverError{Msg: "server not found", Kind: store.ErrNotFound, Err: err}
	case "55P03": // lock_not_available
		return &store.DriverError{Msg: fmt.Sprintf("postgres %s: waited %s (lock_timeout) for a lock held by another session", s.name, s.setting("lock_timeout")), Kind: store.ErrUnavailable, Err: err}
	case "57014": // query_canceled
		if strings.Contains(pgErr.Message, "statement timeout") {
			return &store.DriverError{Msg: fmt.Sprintf("postgres %s: statement ran longer than %s (statement_timeout)", s.name, s.setting("statement_timeout")), Kind: store.ErrUnavailable, Err: err}
		}
		return &store.DriverError{Msg: fmt.Sprintf("postgres %s: statement cancelled", s.name), Err: err}
	}
	return err
}
