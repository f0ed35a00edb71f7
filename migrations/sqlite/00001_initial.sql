-- Timestamps are TEXT in UTC, '%Y-%m-%dT%H:%M:%fZ' (millisecond RFC 3339),
-- so they sort as strings and read well in the sqlite3 shell.

-- +goose Up
CREATE TABLE servers (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    host          TEXT NOT NULL,
    port          INTEGER NOT NULL DEFAULT 22 CHECK (port BETWEEN 1 AND 65535),
    ssh_user      TEXT NOT NULL DEFAULT '',
    key_path      TEXT NOT NULL DEFAULT '',
    host_key      BLOB,
    seen_host_key BLOB,
    -- ssh: probe-ssh logs in to it; push: it pushes its own heartbeats and
    -- probe-ssh leaves it alone.
    mode          TEXT NOT NULL DEFAULT 'ssh' CHECK (mode IN ('ssh', 'push')),
    enabled       INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE heartbeats (
    server_id            INTEGER PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
    last_heartbeat       TEXT,
    source               TEXT NOT NULL DEFAULT '' CHECK (source IN ('', 'ssh', 'api')),
    agent_version        TEXT NOT NULL DEFAULT '',
    last_probe           TEXT,
    last_error_class     TEXT NOT NULL DEFAULT '',
    last_error           TEXT NOT NULL DEFAULT '',
    latency_us           INTEGER NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id   INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('alert', 'anomaly')),
    severity    TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message     TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    resolved_at TEXT
);
CREATE INDEX alerts_active ON alerts (server_id) WHERE resolved_at IS NULL;

CREATE TABLE probe_runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    host            TEXT NOT NULL DEFAULT '',
    started_at      TEXT NOT NULL,
    servers         INTEGER NOT NULL DEFAULT 0,
    finished_at     TEXT,
    probed          INTEGER NOT NULL DEFAULT 0,
    succeeded       INTEGER NOT NULL DEFAULT 0,
    failed_by_class TEXT NOT NULL DEFAULT '{}',
    deadline_hit    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX probe_runs_finished ON probe_runs (finished_at DESC);

-- +goose Down
DROP TABLE probe_runs;
DROP TABLE alerts;
DROP TABLE heartbeats;
DROP TABLE servers;
