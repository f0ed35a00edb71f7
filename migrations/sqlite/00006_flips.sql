-- State changes ("flips"). Each server has an evaluated state and the time
-- it entered it (server_states, one row per server, written only when the
-- state changes); every change is also a row in flips, the history that
-- uptime, `heartbeat history` and notifications read. stale_after_ms is the
-- per-server freshness window (the source system's 60 s by default), so a
-- push agent that reports every 5 minutes does not flap.

-- +goose Up
ALTER TABLE servers ADD COLUMN stale_after_ms INTEGER NOT NULL DEFAULT 60000 CHECK (stale_after_ms >= 1000);

CREATE TABLE server_states (
    server_id INTEGER PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
    state     TEXT NOT NULL,
    since     TEXT NOT NULL,
    reason    TEXT NOT NULL DEFAULT '',
    -- seen: the server has been ONLINE or WARNING at least once, so its
    -- coming up is news; a new server's first heartbeat is not.
    seen      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE flips (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL: a fleet event (the monitoring host was cut off, or is back).
    server_id   INTEGER REFERENCES servers(id) ON DELETE CASCADE,
    at          TEXT NOT NULL,
    from_state  TEXT NOT NULL DEFAULT '',  -- '' for a server's first evaluation
    to_state    TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    -- notify: false for changes kept for history only (a server's first
    -- state, its first heartbeat, leaving or entering DISABLED).
    notify      INTEGER NOT NULL,
    recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX flips_server_at ON flips (server_id, at);
CREATE INDEX flips_at ON flips (at);

-- +goose Down
DROP TABLE flips;
DROP TABLE server_states;
ALTER TABLE servers DROP COLUMN stale_after_ms;
