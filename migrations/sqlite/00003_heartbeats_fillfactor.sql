-- Version 3 sets a fillfactor on the Postgres heartbeats table; SQLite has
-- no such setting (it rewrites a row in place), so this version is empty.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
