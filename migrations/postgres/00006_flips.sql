-- State changes ("flips"). Each server has an evaluated state and the time
-- it entered it (server_states, one row per server, written only when the
-- state changes); every change is also a row in flips, the history that
-- uptime, `heartbeat history` and notifications read. stale_after_ms is the
-- per-server freshness window (the source system's 60 s by default), so a
-- push agent that reports every 5 minutes does not flap.

-- +goose Up
ALTER TABLE servers ADD COLUMN stale_after_ms BIGINT NOT NULL DEFAULT 60000 CHECK (stale_after_ms >= 1000);

CREATE TABLE server_states (
    server_id BIGINT PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
    state     TEXT NOT NULL,
    since     TIMESTAMPTZ NOT NULL,
    reason    TEXT NOT NULL DEFAULT '',
    -- seen: the server has been ONLINE or WARNING at least once, so its
    -- coming up is news; a new server's first heartbeat is not.
    seen      BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE flips (
    id          BIGSERIAL PRIMARY KEY,
    -- NULL: a fleet event (the monitoring host was cut off, or is back).
    server_id   BIGINT REFERENCES servers(id) ON DELETE CASCADE,
    at          TIMESTAMPTZ NOT NULL,
    from_state  TEXT NOT NULL DEFAULT '',  -- '' for a server's first evaluation
    to_state    TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    -- notify: false for changes kept for history only (a server's first
    -- state, its first heartbeat, leaving or entering DISABLED).
    notify      BOOLEAN NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX flips_server_at ON flips (server_id, at);
CREATE INDEX flips_at ON flips (at);

-- +goose Down
DROP TABLE flips;
DROP TABLE server_states;
ALTER TABLE servers DROP COLUMN stale_after_ms;
