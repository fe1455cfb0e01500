-- +goose Up
-- Outbound webhooks (internal/webhooks). A schema of its own, outside the
-- tables the CDC publication captures (cdc.Config.Tables names them one by
-- one): endpoint secrets, deliveries and attempts never reach the bus, the
-- search index or `events tail`.
CREATE SCHEMA IF NOT EXISTS webhooks;

CREATE TABLE webhooks.endpoints (
    id              uuid PRIMARY KEY,
    url             text NOT NULL,
    events          text[] NOT NULL,
    description     varchar(500) NOT NULL DEFAULT '',
    -- Optional filters: only this document's events, only events of
    -- documents created by this created_by.
    document_id     uuid,
    created_by      varchar(255),
    enabled         boolean NOT NULL DEFAULT true,
    -- Why the endpoint was disabled (by its owner, or after failing
    -- continuously for --webhooks-disable-after); NULL while enabled.
    disabled_reason text,
    -- Who owns it: the principal key and every reader key it had when it
    -- created the endpoint; unrestricted (an admin, or anyone in open mode)
    -- receives every event, others only the events of documents their
    -- reader keys may view at delivery time.
    owner           varchar(300),
    owner_keys      text[] NOT NULL DEFAULT '{}',
    unrestricted    boolean NOT NULL,
    -- Signing secrets, AES-256-GCM with --webhooks-secret-key (nonce ||
    -- ciphertext). The previous one signs too until previous_until.
    secret_enc      bytea NOT NULL,
    previous_enc    bytea,
    previous_until  timestamptz,
    -- Since when every attempt failed (NULL: the last one succeeded).
    failing_since   timestamptz,
    -- One delivery in flight per endpoint: the worker holding the lease.
    lease_until     timestamptz,
    lease_token     uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_webhook_endpoints_owner ON webhooks.endpoints (owner, created_at DESC);

-- Every change event the target saw, kept for replay for
-- --webhooks-event-retention. seq is the fan-out order: commit order,
-- because one fan-out transaction at a time holds the cursor row.
CREATE TABLE webhooks.events (
    seq          bigserial PRIMARY KEY,
    topic        varchar(100) NOT NULL,
    lsn          bigint NOT NULL,  -- the change's own LSN
    commit_lsn   bigint NOT NULL,  -- its transaction's commit LSN (the cursor)
    key          text NOT NULL,
    type         varchar(100) NOT NULL,
    document_id  uuid,
    created_by   varchar(255),
    -- The document's readers in the event (before a delete): who may view
    -- a deleted document at delivery time.
    readers      text[],
    payload      bytea NOT NULL,   -- the delivery body (the same for every endpoint)
    occurred_at  timestamptz NOT NULL,
    UNIQUE (topic, lsn, key)
);
CREATE INDEX idx_webhook_events_commit ON webhooks.events (commit_lsn);
CREATE INDEX idx_webhook_events_time ON webhooks.events (occurred_at);

CREATE TABLE webhooks.deliveries (
    id              bigserial PRIMARY KEY,
    endpoint_id     uuid NOT NULL REFERENCES webhooks.endpoints (id) ON DELETE CASCADE,
    event_seq       bigint REFERENCES webhooks.events (seq) ON DELETE SET NULL,
    -- Stable across retries, redeliveries and replays (derived from
    -- endpoint, topic, LSN and key): receivers dedupe by it.
    webhook_id      varchar(100) NOT NULL,
    type            varchar(100) NOT NULL,
    -- The payload as first built: a redelivery sends the same bytes.
    payload         bytea NOT NULL,
    document_id     uuid,
    status          varchar(20) NOT NULL DEFAULT 'pending',
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- Retries end --webhooks-retry-period after first_attempt_at.
    first_attempt_at timestamptz,
    last_status     int,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    UNIQUE (endpoint_id, webhook_id),
    CONSTRAINT deliveries_status_check CHECK (status IN ('pending', 'delivered', 'failed', 'skipped'))
);
-- The head of each endpoint's queue.
CREATE INDEX idx_webhook_deliveries_pending ON webhooks.deliveries (endpoint_id, id) WHERE status = 'pending';
CREATE INDEX idx_webhook_deliveries_endpoint ON webhooks.deliveries (endpoint_id, id DESC);

CREATE TABLE webhooks.attempts (
    id           bigserial PRIMARY KEY,
    delivery_id  bigint NOT NULL REFERENCES webhooks.deliveries (id) ON DELETE CASCADE,
    at           timestamptz NOT NULL DEFAULT now(),
    status_code  int,
    duration_ms  int NOT NULL,
    error        text,
    response     text
);
CREATE INDEX idx_webhook_attempts_delivery ON webhooks.attempts (delivery_id, id);

-- The fan-out's cursor: the commit LSN of the last change turned into
-- deliveries. Updated in the same transaction as the deliveries it made,
-- so a restart resumes exactly there, and held FOR UPDATE by the fan-out,
-- so instances take turns in commit order.
CREATE TABLE webhooks.cursor (
    name       varchar(50) PRIMARY KEY,
    commit_lsn bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE webhooks.cursor;
DROP TABLE webhooks.attempts;
DROP TABLE webhooks.deliveries;
DROP TABLE webhooks.events;
DROP TABLE webhooks.endpoints;
DROP SCHEMA webhooks;
