-- heartbeats is one row per server, rewritten by every probe run and push:
-- 100,000 servers every 30 s. With the default fillfactor (100) a page has
-- no room for the new version of a row, so only ~11 % of updates were HOT
-- and the table piled up ~370k dead tuples (42 MB). With half of each page
-- free, 99 % are HOT (the new version stays on the page, no index entry
-- is written) and dead tuples stay in the thousands (19 MB).
-- BenchmarkHeartbeatChurn in pkg/store/postgres keeps the figures.
--
-- The setting applies to pages written from now on; an existing table
-- converges as its rows are updated (or at once with VACUUM FULL).

-- +goose Up
ALTER TABLE heartbeats SET (fillfactor = 50);

-- +goose Down
ALTER TABLE heartbeats RESET (fillfactor);
