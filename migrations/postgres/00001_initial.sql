-- +goose Up
CREATE TABLE servers (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    host          TEXT NOT NULL,
    port          INTEGER NOT NULL DEFAULT 22 CHECK (port BETWEEN 1 AND 65535),
    ssh_user      TEXT NOT NULL DEFAULT '',
    key_path      TEXT NOT NULL DEFAULT '',
    host_key      BYTEA,          -- pinned on first use (wire format)
    seen_host_key BYTEA,          -- last key presented that did not match the pin
    -- ssh: probe-ssh logs in to it; push: it pushes its own heartbeats and
    -- probe-ssh leaves it alone.
    mode          TEXT NOT NULL DEFAULT 'ssh' CHECK (mode IN ('ssh', 'push')),
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE heartbeats (
    server_id            BIGINT PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
    last_heartbeat       TIMESTAMPTZ,
    source               TEXT NOT NULL DEFAULT '' CHECK (source IN ('', 'ssh', 'api')),
    agent_version        TEXT NOT NULL DEFAULT '',
    last_probe           TIMESTAMPTZ,
    last_error_class     TEXT NOT NULL DEFAULT '',
    last_error           TEXT NOT NULL DEFAULT '',
    latency_us           BIGINT NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE alerts (
    id          BIGSERIAL PRIMARY KEY,
    server_id   BIGINT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('alert', 'anomaly')),
    severity    TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message     TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at TIMESTAMPTZ
);
-- Status counts only active alerts; keep that lookup small.
CREATE INDEX alerts_active ON alerts (server_id) WHERE resolved_at IS NULL;

CREATE TABLE probe_runs (
    id              BIGSERIAL PRIMARY KEY,
    host            TEXT NOT NULL DEFAULT '',
    started_at      TIMESTAMPTZ NOT NULL,
    servers         INTEGER NOT NULL DEFAULT 0,
    finished_at     TIMESTAMPTZ,
    probed          INTEGER NOT NULL DEFAULT 0,
    succeeded       INTEGER NOT NULL DEFAULT 0,
    failed_by_class TEXT NOT NULL DEFAULT '{}',  -- JSON object class -> count
    deadline_hit    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX probe_runs_finished ON probe_runs (finished_at DESC);

-- +goose Down
DROP TABLE probe_runs;
DROP TABLE alerts;
DROP TABLE heartbeats;
DROP TABLE servers;
