-- A server's pin may be a certificate authority instead of a plain host
-- key (`servers trust --ca`): host_key then holds the CA's public key and
-- the server is accepted when it presents a host certificate that CA
-- signed for its host name. A TOFU probe never replaces such a pin, as it
-- only pins servers whose host_key is NULL.

-- +goose Up
ALTER TABLE servers ADD COLUMN host_key_is_ca BOOLEAN NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE servers DROP COLUMN host_key_is_ca;
