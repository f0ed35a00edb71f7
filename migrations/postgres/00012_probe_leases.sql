-- Several probe hosts share the fleet (issue 11): each run claims the ssh
-- servers that are due, in batches, with a lease, and marks them done with
-- the next due time. The claim state lives in its own table, not in
-- heartbeats: heartbeats is rewritten by every probe and push and keeps its
-- updates HOT with fillfactor 50 and no index on a changing column; a due
-- time that changes every tick needs an index, which would make every
-- heartbeat update non-HOT. Here a claim (lease_until, run_id) stays HOT;
-- only the completion, which moves due_at, touches the index.
--
-- A server without a row is due: StartSharedRun inserts the missing rows
-- once per run.

-- +goose Up
CREATE TABLE probe_leases (
    server_id   BIGINT PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
    -- when the server is next due for a probe; -infinity: now
    due_at      TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    -- the claiming run's lease; NULL or past: nobody holds it
    lease_until TIMESTAMPTZ,
    run_id      BIGINT
) WITH (fillfactor = 50);
-- Claims walk this in order and stop at their LIMIT.
CREATE INDEX probe_leases_due ON probe_leases (due_at, server_id);

-- +goose Down
DROP TABLE probe_leases;
