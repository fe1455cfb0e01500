-- +goose Up
-- What was signed: the document's version and content hash at the moment the
-- signature row was written (read in the same INSERT, so the pair is
-- consistent), and where signature_data was stored as an object.
ALTER TABLE signatures.signatures
    ADD COLUMN document_version       int,
    ADD COLUMN content_sha256         char(64),
    ADD COLUMN signature_key          varchar(500),
    ADD COLUMN signature_content_type varchar(100),
    ADD COLUMN signature_size         bigint;

-- The durable outbox of "set the document to signed" calls to the document
-- service. A row is written in the same transaction as its signature, so a
-- signature never exists without either its status update having been
-- applied or a row here saying it still must be. The row is deleted once the
-- document service has accepted the update; state 'failed' keeps rows the
-- document service refused for good (e.g. the document was cancelled in the
-- meantime), with the reason, for an operator to see.
--
-- It is a separate table, not columns on signatures.signatures, so that the
-- bookkeeping of retries does not turn into UPDATE change events on the
-- cdc.signatures topic: a signature row is written once.
CREATE TABLE signatures.status_updates (
    signature_id    uuid PRIMARY KEY REFERENCES signatures.signatures (id) ON DELETE CASCADE,
    document_id     uuid NOT NULL,
    status          varchar(50) NOT NULL,
    state           varchar(16) NOT NULL DEFAULT 'pending',
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT status_updates_state_check CHECK (state IN ('pending', 'failed'))
);

-- The reconciler's scan: due pending rows, oldest due first.
CREATE INDEX idx_status_updates_due ON signatures.status_updates (next_attempt_at)
    WHERE state = 'pending';

-- GET /signatures lists newest first.
CREATE INDEX idx_signatures_signed_at ON signatures.signatures (signed_at DESC, id DESC);

-- +goose Down
DROP INDEX signatures.idx_signatures_signed_at;
DROP TABLE signatures.status_updates;
ALTER TABLE signatures.signatures
    DROP COLUMN signature_size,
    DROP COLUMN signature_content_type,
    DROP COLUMN signature_key,
    DROP COLUMN content_sha256,
    DROP COLUMN document_version;
