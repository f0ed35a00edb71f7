-- A run whose process was killed stays open (finished_at NULL) until the
-- next run, which holds the probe lock and so knows it is dead, closes it
-- as aborted. probe_runs and resolved alerts are pruned by age in small
-- batches; these indexes keep each batch an index range scan.

-- +goose Up
ALTER TABLE probe_runs ADD COLUMN aborted_at TIMESTAMPTZ;
CREATE INDEX probe_runs_started ON probe_runs (started_at);
CREATE INDEX alerts_resolved ON alerts (resolved_at) WHERE resolved_at IS NOT NULL;

-- +goose Down
DROP INDEX alerts_resolved;
DROP INDEX probe_runs_started;
ALTER TABLE probe_runs DROP COLUMN aborted_at;
