-- +goose Up
-- Signing requests (issue 13, workflow half), owned by the signature
-- service: a request asks recipients, in order groups, to sign, approve or
-- view one pinned content of a document. Every transition of a request or
-- recipient is one transaction, together with its audit entry and the due
-- jobs it schedules (the document's status follows through signing.due).
CREATE SCHEMA IF NOT EXISTS signing;

-- No foreign key to documents.documents: a request (and its certificate)
-- outlives nothing it must not, and the document service refuses to delete
-- a document with an open or completed request (409) rather than cascade.
CREATE TABLE signing.signing_requests (
    id                 uuid PRIMARY KEY,
    document_id        uuid NOT NULL,
    owner              varchar(300),          -- principal key of the creator (NULL: anonymous, open mode)
    created_by         varchar(255) NOT NULL, -- the creator's email as shown to recipients
    state              varchar(16) NOT NULL,
    message            text,
    content_sha256     char(64) NOT NULL,     -- the pinned content
    content_key        varchar(500) NOT NULL,
    document_version   int NOT NULL,
    expires_at         timestamptz,
    reminder_every     interval,
    outcome            text,                  -- why it ended (declined by …, expired, cancelled by …)
    certificate_key    varchar(500),          -- object key of the certificate of completion
    certificate_sha256 char(64),
    doc_status         varchar(16),           -- the last document status this request asked for
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    sent_at            timestamptz,
    completed_at       timestamptz,
    CONSTRAINT signing_requests_state_check CHECK (state IN
        ('draft', 'sent', 'in_progress', 'completed', 'declined', 'expired', 'cancelled'))
);
-- At most one open request per document.
CREATE UNIQUE INDEX idx_signing_requests_open ON signing.signing_requests (document_id)
    WHERE state IN ('draft', 'sent', 'in_progress');
CREATE INDEX idx_signing_requests_document ON signing.signing_requests (document_id, created_at DESC);
ALTER TABLE signing.signing_requests REPLICA IDENTITY FULL;

CREATE TABLE signing.signing_recipients (
    id              uuid PRIMARY KEY,
    request_id      uuid NOT NULL REFERENCES signing.signing_requests (id),
    email           varchar(255) NOT NULL,
    name            varchar(255) NOT NULL DEFAULT '',
    role            varchar(16) NOT NULL,
    signing_order   int NOT NULL,
    state           varchar(16) NOT NULL DEFAULT 'pending',
    notified_at     timestamptz,
    viewed_at       timestamptz,
    acted_at        timestamptz,
    ip_address      varchar(45),
    user_agent      text,
    consent_at      timestamptz,          -- consent to sign electronically
    signature_id    uuid,                 -- signatures.signatures row of a signer
    decline_reason  text,
    CONSTRAINT signing_recipients_role_check CHECK (role IN ('signer', 'approver', 'viewer', 'cc')),
    CONSTRAINT signing_recipients_state_check CHECK (state IN
        ('pending', 'notified', 'viewed', 'signed', 'approved', 'declined')),
    UNIQUE (request_id, email)
);
CREATE INDEX idx_signing_recipients_email ON signing.signing_recipients (lower(email));
ALTER TABLE signing.signing_recipients REPLICA IDENTITY FULL;

-- Invitations: only the SHA-256 of a token is stored, so a database
-- reader cannot act as a recipient. Never in the CDC publication.
CREATE TABLE signing.invitations (
    token_sha256   bytea PRIMARY KEY,
    request_id     uuid NOT NULL REFERENCES signing.signing_requests (id),
    recipient_id   uuid NOT NULL REFERENCES signing.signing_recipients (id),
    content_sha256 char(64) NOT NULL,
    expires_at     timestamptz,
    used_at        timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_invitations_recipient ON signing.invitations (recipient_id);

-- The durable scheduler: one row per job (notify a recipient, remind,
-- expire, issue the certificate, set the document's status, mail the
-- completed document). Workers claim due rows with FOR UPDATE SKIP
-- LOCKED, do the job in the same transaction and delete the row, so each
-- job runs once across instances and survives restarts. doc_status rows
-- of one request are applied in id order (a later one waits for the
-- earlier), so the document walks the state machine in order.
CREATE TABLE signing.due (
    id           bigserial PRIMARY KEY,
    kind         varchar(16) NOT NULL,
    request_id   uuid NOT NULL REFERENCES signing.signing_requests (id),
    recipient_id uuid,
    payload      text NOT NULL DEFAULT '',
    due_at       timestamptz NOT NULL DEFAULT now(),
    attempts     int NOT NULL DEFAULT 0,
    last_error   text,
    CONSTRAINT due_kind_check CHECK (kind IN ('notify', 'remind', 'expire', 'certificate', 'doc_status', 'completed_mail'))
);
CREATE INDEX idx_due_at ON signing.due (due_at, id);
CREATE INDEX idx_due_request ON signing.due (request_id, kind, id);

-- +goose Down
DROP TABLE signing.due;
DROP TABLE signing.invitations;
DROP TABLE signing.signing_recipients;
DROP TABLE signing.signing_requests;
DROP SCHEMA signing;
