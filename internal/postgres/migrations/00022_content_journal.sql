-- +goose Up
-- The content journal (document.Journal): a copy of small content written
-- to a file bucket without waiting for its fsync, inserted in the same
-- transaction as its document row. The create's acknowledgement rests on
-- PostgreSQL's commit (its WAL fsync, shared by concurrent commits) instead
-- of the blob's own fsyncs. A background flusher syncs the blobs in batches
-- and deletes their rows; at start the service checks every remaining row
-- against its blob (size and SHA-256) and rewrites the blob from here where
-- a power loss lost or tore it, before it answers.
--
-- A row exists only while its document does: it commits with the document
-- row, and a delete of the document deletes it in the same transaction.
--
-- Not in the CDC publication (cdc.Config.Tables names the captured tables
-- one by one): bookkeeping of the blob store, not data; the document's own
-- row carries the create.
CREATE TABLE documents.content_journal (
    key          text PRIMARY KEY,          -- the blob's key (documents.s3_key)
    sha256       char(64) NOT NULL,         -- hex SHA-256 of bytes
    content_type text NOT NULL,             -- for the sidecar of a rewritten blob
    bytes        bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Content is mostly compressed already (PDF, images) and the rows live for
-- a fraction of a second: compressing them is CPU for nothing.
ALTER TABLE documents.content_journal ALTER COLUMN bytes SET STORAGE EXTERNAL;

-- +goose Down
DROP TABLE documents.content_journal;
