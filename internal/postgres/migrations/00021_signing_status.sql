-- +goose Up
-- A document carries the state of its newest signing request (issue 13:
-- every transition shows in search like everything else). NULL: the
-- document never had a request. A declined, expired or cancelled request
-- leaves the document's status as it was, so without this column nothing
-- the index holds would say how the request ended.
--
-- It is kept by a trigger on signing.signing_requests rather than by the
-- signature service's own statements: seven places change a request's
-- state (create, send, the first view or action, completion, decline,
-- cancel, expiry, in two files), and a trigger is in the transition's own
-- transaction by construction and cannot be forgotten by the next one.
-- Every workflow transaction locks the document row before it changes a
-- request's state (lockDocument, or lockRequest's key-share lock), so the
-- trigger's update of that row waits in no new order.
--
-- The change bumps version (updated_at follows, documents.set_updated_at):
-- the document's JSON, its ETag and the entries of both document caches
-- (ordered by version, access_version) change with it, and its change event
-- is a document.updated naming signing_status.
ALTER TABLE documents.documents ADD COLUMN signing_status varchar(16);

-- +goose StatementBegin
CREATE FUNCTION signing.follow_request_state() RETURNS trigger AS $$
BEGIN
    UPDATE documents.documents d
       SET signing_status = NEW.state, version = coalesce(d.version, 1) + 1
     WHERE d.id = NEW.document_id
       AND d.signing_status IS DISTINCT FROM NEW.state
       -- Only the newest request speaks for the document (an ended one
       -- never changes state again; this keeps it so if one ever did).
       AND NOT EXISTS (SELECT 1 FROM signing.signing_requests r
                        WHERE r.document_id = NEW.document_id
                          AND (r.created_at, r.id) > (NEW.created_at, NEW.id));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER signing_requests_document_state AFTER INSERT OR UPDATE OF state ON signing.signing_requests
    FOR EACH ROW EXECUTE FUNCTION signing.follow_request_state();

-- Documents with requests made before this migration: one update each,
-- with a new version, so the change stream re-indexes them with the field
-- and invalidates their cached entries.
UPDATE documents.documents d
   SET signing_status = r.state, version = coalesce(d.version, 1) + 1
  FROM (SELECT DISTINCT ON (document_id) document_id, state FROM signing.signing_requests
        ORDER BY document_id, created_at DESC, id DESC) r
 WHERE d.id = r.document_id;

-- +goose Down
DROP TRIGGER signing_requests_document_state ON signing.signing_requests;
DROP FUNCTION signing.follow_request_state();
ALTER TABLE documents.documents DROP COLUMN signing_status;
