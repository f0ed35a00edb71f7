-- Maintenance windows. A window takes its servers out of alerting: while
-- starts_at <= now < COALESCE(ended_at, ends_at) Evaluate judges them
-- MAINTENANCE. Windows end on their own at ends_at (nothing has to run);
-- `maintenance end` sets ended_at. Recurring windows come from
-- maintenance_schedules: an evaluation round materialises each schedule's
-- current occurrence into maintenance_windows, once (the schedule's
-- last_start is advanced on a condition, and the unique key backs it up).
-- server_states keeps what the evaluation needs across a window:
-- pre_maintenance_state (the state when the window began, so that leaving
-- it notifies only a server whose state changed) and base_state (the
-- state underneath MAINTENANCE, whose changes are recorded as flips
-- without notification).

-- +goose Up
CREATE TABLE maintenance_schedules (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    cron        TEXT NOT NULL,
    duration_ms BIGINT NOT NULL CHECK (duration_ms >= 60000),
    all_servers BOOLEAN NOT NULL,
    reason      TEXT NOT NULL,
    created_by  TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- last_start: the latest occurrence materialised into windows.
    last_start  TIMESTAMPTZ
);

CREATE TABLE maintenance_schedule_servers (
    schedule_id BIGINT NOT NULL REFERENCES maintenance_schedules(id) ON DELETE CASCADE,
    server_id   BIGINT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    PRIMARY KEY (schedule_id, server_id)
);

CREATE TABLE maintenance_windows (
    id          BIGSERIAL PRIMARY KEY,
    server_id   BIGINT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    starts_at   TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ NOT NULL CHECK (ends_at > starts_at),
    reason      TEXT NOT NULL,
    created_by  TEXT NOT NULL DEFAULT '',
    -- A schedule's windows stay when it is removed, as history.
    schedule_id BIGINT REFERENCES maintenance_schedules(id) ON DELETE SET NULL,
    ended_at    TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (schedule_id, server_id, starts_at)
);
-- Active and upcoming windows are found by their effective end.
CREATE INDEX maintenance_windows_end ON maintenance_windows ((COALESCE(ended_at, ends_at)));
CREATE INDEX maintenance_windows_server ON maintenance_windows (server_id, starts_at);

ALTER TABLE server_states ADD COLUMN pre_maintenance_state TEXT;
ALTER TABLE server_states ADD COLUMN base_state TEXT;

-- +goose Down
ALTER TABLE server_states DROP COLUMN base_state;
ALTER TABLE server_states DROP COLUMN pre_maintenance_state;
DROP TABLE maintenance_windows;
DROP TABLE maintenance_schedule_servers;
DROP TABLE maintenance_schedules;
