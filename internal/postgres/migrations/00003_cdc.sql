-- +goose Up
-- Bookkeeping of the CDC engine (internal/cdc). One row per logical
-- replication slot the engine created: the slot's consistent point and when
-- the initial snapshot finished. A slot whose row has no snapshot_done_at
-- was left by an engine that died mid-snapshot: the next engine drops it
-- and starts over, so no row is ever missed (PostgreSQL keeps no record of
-- how far a snapshot got).
CREATE SCHEMA IF NOT EXISTS cdc;

CREATE TABLE cdc.slots (
    slot_name        text PRIMARY KEY,
    consistent_lsn   pg_lsn NOT NULL,
    snapshot_mode    text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    snapshot_done_at timestamptz
);

-- +goose Down
DROP TABLE cdc.slots;
DROP SCHEMA cdc;
