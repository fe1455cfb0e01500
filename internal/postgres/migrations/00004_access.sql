-- +goose Up
-- Who owns a document and who may read it (internal/auth).
--
-- owner is the creator's principal key ("user:<sub>", "apikey:<id>"),
-- apart from created_by (the reference's free-form email). NULL: created
-- anonymously in open mode, so in required mode only admins see it.
--
-- readers is every principal key that may view the document (owner and
-- every share's grantee), kept in the same transaction as the shares so
-- the change stream carries a document's readers in commit order with the
-- document itself: the indexer filters searches by it and read-your-writes
-- holds for a share granted a moment ago. A change of readers alone does
-- not bump version or updated_at (see the trigger below): it is not an
-- edit of the document.
ALTER TABLE documents.documents
    ADD COLUMN owner   varchar(300),
    ADD COLUMN readers text[] NOT NULL DEFAULT '{}';

CREATE INDEX idx_documents_readers ON documents.documents USING gin (readers);
CREATE INDEX idx_documents_owner ON documents.documents (owner, created_at DESC);

-- A share grants one grantee (a principal key: "user:<sub>",
-- "group:<name>", "email:<address>", "apikey:<id>") a level on a document.
CREATE TABLE documents.shares (
    document_id uuid NOT NULL REFERENCES documents.documents (id) ON DELETE CASCADE,
    grantee     varchar(300) NOT NULL,
    level       varchar(8) NOT NULL,
    created_by  varchar(300),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, grantee),
    CONSTRAINT shares_level_check CHECK (level IN ('view', 'edit', 'sign', 'own'))
);
CREATE INDEX idx_shares_grantee ON documents.shares (grantee);
ALTER TABLE documents.shares REPLICA IDENTITY FULL;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION documents.set_updated_at() RETURNS trigger AS $$
BEGIN
    -- A change of readers alone is a change of access, not of the document.
    IF NEW.readers IS DISTINCT FROM OLD.readers
       AND to_jsonb(NEW) - 'readers' = to_jsonb(OLD) - 'readers' THEN
        RETURN NEW;
    END IF;
    NEW.updated_at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- +goose Down
DROP TABLE documents.shares;
DROP INDEX documents.idx_documents_owner;
DROP INDEX documents.idx_documents_readers;
ALTER TABLE documents.documents DROP COLUMN readers, DROP COLUMN owner;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION documents.set_updated_at() RETURNS trigger AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
