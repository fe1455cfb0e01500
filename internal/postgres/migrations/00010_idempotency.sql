-- +goose Up
-- Idempotency keys (draft-ietf-httpapi-idempotency-key-header) of creates:
-- one row per (scope, key), written in the create's own transaction, so a
-- create and the record of its answer commit together or not at all. A
-- client that got no answer (the connection dropped around the commit)
-- retries with the same key and gets the first answer; nothing is created
-- twice. The scope is the route and the caller, so two callers' keys never
-- meet. Rows expire after a day; creates delete a few expired rows each.
-- Not in the CDC publication: bookkeeping, not data.
CREATE SCHEMA IF NOT EXISTS idempotency;

CREATE TABLE idempotency.keys (
    scope       text NOT NULL,
    key         text NOT NULL,
    fingerprint bytea NOT NULL,        -- SHA-256 of what the request asked for
    response    jsonb NOT NULL,        -- the first answer's body
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX idx_idempotency_keys_expires ON idempotency.keys (expires_at);

-- +goose Down
DROP TABLE idempotency.keys;
DROP SCHEMA idempotency;
