package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Setting reads a store-wide setting.
func (s *Store) Setting(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read setting %s: %w", key, s.interpret(err))
	}
	return v, true, nil
}

// SetSetting writes a store-wide setting.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = `+nowSQL, key, value); err != nil {
		return fmt.Errorf("write setting %s: %w", key, s.interpret(err))
	}
	return nil
}
