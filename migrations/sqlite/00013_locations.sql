-- The Postgres migration of the same number adds locations. SQLite stays
-- single-host, so it has one location: runs record it (always "default")
-- and there are no per-location results. settings holds store-wide
-- settings (`heartbeat config set`), as on Postgres.

-- +goose Up
ALTER TABLE probe_runs ADD COLUMN location TEXT NOT NULL DEFAULT 'default';

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- +goose Down
DROP TABLE settings;
ALTER TABLE probe_runs DROP COLUMN location;
