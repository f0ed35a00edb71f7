-- The Postgres migration of the same number adds probe_leases, through
-- which several probe hosts share the fleet. SQLite stays single-host (one
-- probe run at a time under its file lock), so it needs no lease table;
-- this migration exists so both engines keep the same numbers.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
