-- +goose Up
-- The reference schema (documents + signatures), column for column, plus
-- content_sha256. REPLICA IDENTITY FULL gives CDC the whole old row on
-- update and delete, as Debezium needs for "before".
CREATE SCHEMA IF NOT EXISTS documents;
CREATE SCHEMA IF NOT EXISTS signatures;

CREATE TABLE documents.documents (
    id             uuid PRIMARY KEY,
    title          varchar(255) NOT NULL,
    content_type   varchar(100) DEFAULT 'text/plain',
    content_size   bigint,
    s3_key         varchar(500),
    status         varchar(50) NOT NULL DEFAULT 'created',
    created_by     varchar(255) NOT NULL,
    created_at     timestamptz DEFAULT now(),
    updated_at     timestamptz DEFAULT now(),
    version        int DEFAULT 1,
    content_sha256 char(64),
    CONSTRAINT documents_status_check CHECK (status IN
        ('created','sent','viewed','pending','approved','signed','completed','cancelled','archived'))
);

CREATE INDEX idx_documents_status_created ON documents.documents (status, created_at DESC);
CREATE INDEX idx_documents_created_by ON documents.documents (created_by, created_at DESC);
ALTER TABLE documents.documents REPLICA IDENTITY FULL;

-- +goose StatementBegin
CREATE FUNCTION documents.set_updated_at() RETURNS trigger AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER documents_updated_at BEFORE UPDATE ON documents.documents
    FOR EACH ROW EXECUTE FUNCTION documents.set_updated_at();

CREATE TABLE signatures.signatures (
    id             uuid PRIMARY KEY,
    document_id    uuid NOT NULL REFERENCES documents.documents (id) ON DELETE CASCADE,
    signer_email   varchar(255) NOT NULL,
    signer_name    varchar(255) NOT NULL,
    signed_at      timestamptz DEFAULT now(),
    signature_data text,
    ip_address     varchar(45)
);

CREATE INDEX idx_signatures_document ON signatures.signatures (document_id);
CREATE INDEX idx_signatures_signer ON signatures.signatures (signer_email, signed_at DESC);
ALTER TABLE signatures.signatures REPLICA IDENTITY FULL;

-- +goose Down
DROP TABLE signatures.signatures;
DROP TABLE documents.documents;
DROP FUNCTION documents.set_updated_at();
DROP SCHEMA signatures;
DROP SCHEMA documents;
