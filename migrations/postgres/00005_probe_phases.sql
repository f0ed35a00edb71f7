-- The step timings of each server's last SSH probe (dial: TCP connect with
-- DNS; banner: until the server's version line; kex: key exchange up to the
-- host-key check; auth; exec: the --exec command), in microseconds as
-- latency_us is, so status --json and /metrics can say where a slow or
-- failing probe spent its time, as blackbox_exporter does. 0: not reached.

-- +goose Up
ALTER TABLE heartbeats ADD COLUMN phase_dial_us BIGINT NOT NULL DEFAULT 0;
ALTER TABLE heartbeats ADD COLUMN phase_banner_us BIGINT NOT NULL DEFAULT 0;
ALTER TABLE heartbeats ADD COLUMN phase_kex_us BIGINT NOT NULL DEFAULT 0;
ALTER TABLE heartbeats ADD COLUMN phase_auth_us BIGINT NOT NULL DEFAULT 0;
ALTER TABLE heartbeats ADD COLUMN phase_exec_us BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE heartbeats DROP COLUMN phase_exec_us;
ALTER TABLE heartbeats DROP COLUMN phase_auth_us;
ALTER TABLE heartbeats DROP COLUMN phase_kex_us;
ALTER TABLE heartbeats DROP COLUMN phase_banner_us;
ALTER TABLE heartbeats DROP COLUMN phase_dial_us;
