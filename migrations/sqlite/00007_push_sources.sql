-- The source system's agent (heartbeat_agent.py) pushes without a token.
-- To move a fleet without touching every server at once, an admin may let
-- a server push without a token from the networks listed here (CIDR
-- notation, comma-separated, as pkg/store FormatTokenless writes them and
-- `servers set --allow-tokenless-from` sets them). NULL, the default:
-- every push needs the server's token.

-- +goose Up
ALTER TABLE servers ADD COLUMN tokenless_from TEXT;

-- +goose Down
ALTER TABLE servers DROP COLUMN tokenless_from;
