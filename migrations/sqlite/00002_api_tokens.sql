-- Servers that cannot be reached over SSH push heartbeats over HTTP with a
-- per-server token. Only the SHA-256 of the token is stored: tokens are 32
-- random bytes, so a plain hash is enough to make a stolen table useless.

-- +goose Up
ALTER TABLE servers ADD COLUMN api_token_hash BLOB;

-- +goose Down
ALTER TABLE servers DROP COLUMN api_token_hash;
