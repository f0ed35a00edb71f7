-- Notification channels and their deliveries. A channel is a URL (see
-- pkg/notify) with the kinds of change it wants and the servers it covers;
-- last_enqueued_flip_id is its high-water mark in flips, so queuing never
-- rescans history, and a new channel starts at the newest flip (it is told
-- only of changes after it was added). A delivery is one (flip, channel)
-- pair, or a reminder of a down-flip (reminder = n > 0); drains claim due
-- rows atomically (claimed_by, claim_expires_at), so a claimer that dies
-- leaves its rows to the next one once the claim expires (at-least-once).

-- +goose Up
CREATE TABLE channels (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL DEFAULT '',
    kinds       TEXT NOT NULL DEFAULT 'down,up',  -- comma-separated: down, up, warning, maintenance
    all_servers BOOLEAN NOT NULL DEFAULT TRUE,
    remind_ms   BIGINT NOT NULL DEFAULT 0 CHECK (remind_ms >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_enqueued_flip_id BIGINT NOT NULL DEFAULT 0
);

-- The servers of a channel that does not cover all of them.
CREATE TABLE channel_servers (
    channel_id BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    server_id  BIGINT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    PRIMARY KEY (channel_id, server_id)
);
CREATE INDEX channel_servers_server ON channel_servers (server_id);

CREATE TABLE deliveries (
    id               BIGSERIAL PRIMARY KEY,
    flip_id          BIGINT NOT NULL REFERENCES flips(id) ON DELETE CASCADE,
    channel_id       BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    reminder         INTEGER NOT NULL DEFAULT 0,  -- 0: the flip itself; n: its nth reminder
    kind             TEXT NOT NULL,               -- down, up, warning, maintenance, cutoff, reminder
    due_at           TIMESTAMPTZ NOT NULL,        -- the flip's at, or when the reminder fell due
    created_at       TIMESTAMPTZ NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    claimed_by       TEXT,
    claim_expires_at TIMESTAMPTZ,
    last_attempt_at  TIMESTAMPTZ,
    last_error       TEXT NOT NULL DEFAULT '',
    delivered_at     TIMESTAMPTZ,
    gave_up_at       TIMESTAMPTZ,
    UNIQUE (flip_id, channel_id, reminder)
);
-- What a claim scans: the due, undelivered rows only.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX deliveries_channel ON deliveries (channel_id, last_attempt_at);
CREATE INDEX deliveries_created ON deliveries (created_at);

-- +goose Down
DROP TABLE deliveries;
DROP TABLE channel_servers;
DROP TABLE channels;
