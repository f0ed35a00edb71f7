-- A fleet event (the monitoring host was cut off) has no server to take
-- a host from, so its message said "monitoring host (unknown)": the flip
-- now carries the monitoring host's name. '' for a server's flips, whose
-- host is the server's.

-- +goose Up
ALTER TABLE flips ADD COLUMN host TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE flips DROP COLUMN host;
