-- Alerts raised by other systems (POST /api/alerts, the Alertmanager
-- receiver) carry where they came from and, optionally, the key the other
-- system knows them by (an Alertmanager fingerprint, a caller's own id).
-- At most one alert per server and key is active at a time, so a repeated
-- "firing" is one INSERT ... ON CONFLICT DO NOTHING, and a "resolved" one
-- UPDATE by key. source is '' for alerts raised before this migration.

-- +goose Up
ALTER TABLE alerts ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN external_key TEXT;
CREATE UNIQUE INDEX alerts_active_external_key ON alerts (server_id, external_key)
    WHERE resolved_at IS NULL AND external_key IS NOT NULL;
-- Resolving a key that is no longer active tells "already resolved" from
-- "never raised" with this one.
CREATE INDEX alerts_external_key ON alerts (server_id, external_key)
    WHERE external_key IS NOT NULL;

-- +goose Down
DROP INDEX alerts_external_key;
DROP INDEX alerts_active_external_key;
ALTER TABLE alerts DROP COLUMN external_key;
ALTER TABLE alerts DROP COLUMN source;
