-- +goose Up
-- API keys for machines (internal/apikey). A schema of its own, outside the
-- tables the CDC publication captures: creating, using and revoking keys
-- never reaches the change stream, the search index or a WebSocket.
--
-- id is the key id, the public part of a key "dsk_<id>_<secret>": the
-- principal's subject ("apikey:<id>") and what an admin revokes. Only the
-- SHA-256 of the whole key is stored; the secret is shown once, on create.
-- A fast hash is enough because the secret is 256 random bits (nothing to
-- guess a dictionary against), and it keeps verification off the hot path's
-- CPU budget, where bcrypt would cost tens of milliseconds per request.
CREATE SCHEMA IF NOT EXISTS auth;

CREATE TABLE auth.api_keys (
    id           varchar(16) PRIMARY KEY,
    name         varchar(100) NOT NULL,
    key_sha256   bytea NOT NULL,
    scopes       text[] NOT NULL,
    -- The principal key of the admin who created it; NULL when created
    -- anonymously in `docstream dev`.
    created_by   varchar(300),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    -- Written at most about once a minute per key, not on every request.
    last_used_at timestamptz,
    -- Revocation is a timestamp, not a DELETE: the list keeps showing what
    -- a key was and when it stopped working.
    revoked_at   timestamptz,
    CONSTRAINT api_keys_id_check CHECK (id ~ '^[0-9a-f]{16}$'),
    CONSTRAINT api_keys_hash_check CHECK (octet_length(key_sha256) = 32),
    CONSTRAINT api_keys_scopes_check CHECK (cardinality(scopes) > 0
        AND scopes <@ ARRAY['read', 'write', 'sign', 'admin']::text[])
);

CREATE INDEX idx_api_keys_created ON auth.api_keys (created_at DESC, id DESC);

-- +goose Down
DROP TABLE auth.api_keys;
DROP SCHEMA auth;
