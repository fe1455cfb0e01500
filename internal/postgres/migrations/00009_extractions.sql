-- +goose Up
-- What the extractor (internal/extractor) made of each document's content:
-- one row per document, for its current content_sha256. It is a table of
-- its own, captured by CDC on cdc.extractions, so recording a result does
-- not move the document's version or updated_at and sends no
-- document.updated; the indexer indexes the extracted text when a row
-- reaches status 'done'.
--
-- The row is also the extractor's durable work queue: the consumer of
-- cdc.documents inserts (or resets) it as 'pending' when content is new or
-- replaced; workers claim pending rows with FOR UPDATE SKIP LOCKED (several
-- extractor instances share the work) and a claim whose worker died is
-- taken again once its lease has run out (claimed_at), so a killed
-- extractor loses nothing.
CREATE TABLE documents.extractions (
    document_id    uuid PRIMARY KEY REFERENCES documents.documents (id) ON DELETE CASCADE,
    content_sha256 char(64) NOT NULL,
    status         varchar(16) NOT NULL DEFAULT 'pending',
    format         varchar(16) NOT NULL DEFAULT '',
    kind           varchar(16) NOT NULL DEFAULT '',
    pages          int NOT NULL DEFAULT 0,
    language       varchar(100) NOT NULL DEFAULT '',
    text_size      bigint NOT NULL DEFAULT 0,
    truncated      boolean NOT NULL DEFAULT false,
    thumbnail      boolean NOT NULL DEFAULT false,
    ocr            boolean NOT NULL DEFAULT false,
    duration_ms    bigint NOT NULL DEFAULT 0,
    reason         varchar(32) NOT NULL DEFAULT '',
    error          varchar(1000) NOT NULL DEFAULT '',
    attempts       int NOT NULL DEFAULT 0,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    not_before     timestamptz NOT NULL DEFAULT now(),
    claimed_at     timestamptz,
    extracted_at   timestamptz,
    CONSTRAINT extractions_status_check CHECK (status IN ('pending', 'running', 'done', 'failed', 'skipped', 'unsupported'))
);

-- The queue: the oldest due pending rows first.
CREATE INDEX idx_extractions_queue ON documents.extractions (not_before) WHERE status IN ('pending', 'running');
CREATE INDEX idx_extractions_status ON documents.extractions (status);
ALTER TABLE documents.extractions REPLICA IDENTITY FULL;

-- +goose Down
DROP TABLE documents.extractions;
