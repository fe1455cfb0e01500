-- +goose Up
-- A recipient's change event names its document (issue 13: the change
-- stream, the WebSocket and webhooks show every transition of a signing
-- request). Consumers route events by document; a recipient row held only
-- its request_id, and the request's own event may be older than what a
-- consumer resuming with ?since= reads, so the document id is copied onto
-- the row rather than joined later. A request never moves to another
-- document, so the copy never goes stale.
ALTER TABLE signing.signing_recipients ADD COLUMN document_id uuid;
UPDATE signing.signing_recipients rc SET document_id = r.document_id
    FROM signing.signing_requests r WHERE r.id = rc.request_id;
ALTER TABLE signing.signing_recipients ALTER COLUMN document_id SET NOT NULL;

-- +goose Down
ALTER TABLE signing.signing_recipients DROP COLUMN document_id;
