-- +goose Up
-- The per-document audit trail (internal/audit): hash-chained entries, the
-- signed head of each chain, and the checkpoints sealed on request.
--
-- Not in the CDC publication: entries hold IP addresses and user agents,
-- which only a document's owner and admins may read, while the change
-- stream fans out to the search index, WebSocket clients and webhooks
-- filtered by readers. Every entry is written in the transaction of the
-- change it records, and that change itself is on the stream.
--
-- No foreign key to documents.documents: audit rows never cascade. A
-- deleted document keeps its trail (the last entry records the deletion).
CREATE SCHEMA IF NOT EXISTS audit;

-- One row per entry. hash is the SHA-256 (hex) of the entry's RFC 8785
-- canonical JSON form (every column below but hash, see audit.Record);
-- prev_hash is the previous entry's hash (64 zeros for seq 1). data is
-- kept as the canonical JSON text, not jsonb, so it reads back byte for
-- byte as it was hashed.
CREATE TABLE audit.entries (
    document_id uuid NOT NULL,
    seq         bigint NOT NULL,
    type        varchar(64) NOT NULL,
    actor       varchar(300) NOT NULL,
    at          timestamptz NOT NULL,
    ip          varchar(64) NOT NULL DEFAULT '',
    user_agent  varchar(512) NOT NULL DEFAULT '',
    data        text NOT NULL,
    prev_hash   char(64) NOT NULL,
    hash        char(64) NOT NULL,
    key_id      varchar(32) NOT NULL DEFAULT '',
    PRIMARY KEY (document_id, seq),
    CONSTRAINT entries_seq_check CHECK (seq >= 1)
);

-- The head of each document's chain, outside the table it protects: the
-- newest entry's seq and hash, signed by the server key (Ed25519) on every
-- append. Append locks this row FOR UPDATE, which serialises appends per
-- document (parallel signers never fork the chain); an entry deleted from
-- the end of audit.entries leaves the head pointing past it.
CREATE TABLE audit.heads (
    document_id uuid PRIMARY KEY,
    seq         bigint NOT NULL,
    hash        char(64) NOT NULL,
    key_id      varchar(32) NOT NULL DEFAULT '',
    signed_at   timestamptz NOT NULL,
    signature   text NOT NULL DEFAULT ''
);

-- Sealed checkpoints (audit.Seal): a signed head kept for good, e.g. the
-- final hash of a completed signing request, printed on its certificate.
CREATE TABLE audit.checkpoints (
    document_id uuid NOT NULL,
    seq         bigint NOT NULL,
    hash        char(64) NOT NULL,
    key_id      varchar(32) NOT NULL DEFAULT '',
    signed_at   timestamptz NOT NULL,
    signature   text NOT NULL DEFAULT '',
    PRIMARY KEY (document_id, seq)
);

-- +goose Down
DROP TABLE audit.checkpoints;
DROP TABLE audit.heads;
DROP TABLE audit.entries;
DROP SCHEMA audit;
