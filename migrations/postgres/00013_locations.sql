-- Locations (issue 11): probe hosts are grouped by --location. Hosts in one
-- location share the fleet through probe_leases, now one lease row per
-- (server, location), so every location probes every server. Each
-- location's last word on a server is kept in location_results; heartbeats
-- stays the aggregate (a success from any location is a heartbeat), so a
-- fleet with one location reads and judges exactly as before.
--
-- settings holds store-wide settings every host must agree on (the
-- quorum), set with `heartbeat config set`.

-- +goose Up
ALTER TABLE probe_runs ADD COLUMN location TEXT NOT NULL DEFAULT 'default';

ALTER TABLE probe_leases ADD COLUMN location TEXT NOT NULL DEFAULT 'default';
ALTER TABLE probe_leases DROP CONSTRAINT probe_leases_pkey;
ALTER TABLE probe_leases ADD PRIMARY KEY (server_id, location);
DROP INDEX probe_leases_due;
-- Claims walk one location's rows in due order and stop at their LIMIT.
CREATE INDEX probe_leases_due ON probe_leases (location, due_at, server_id);

-- Rewritten by every probe, like heartbeats: fillfactor 50 and no index on
-- a changing column keep the updates HOT.
CREATE TABLE location_results (
    server_id   BIGINT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    location    TEXT NOT NULL,
    last_ok     TIMESTAMPTZ,
    last_probe  TIMESTAMPTZ NOT NULL,
    error_class TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (server_id, location)
) WITH (fillfactor = 50);

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE settings;
DROP TABLE location_results;
DROP INDEX probe_leases_due;
DELETE FROM probe_leases WHERE location <> 'default';
ALTER TABLE probe_leases DROP CONSTRAINT probe_leases_pkey;
ALTER TABLE probe_leases ADD PRIMARY KEY (server_id);
ALTER TABLE probe_leases DROP COLUMN location;
CREATE INDEX probe_leases_due ON probe_leases (due_at, server_id);
ALTER TABLE probe_runs DROP COLUMN location;
