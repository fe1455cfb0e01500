-- +goose Up
-- access_version counts changes of a document's readers. version does not
-- move when only the readers change (a share is not an edit, and editors'
-- If-Match must keep working), so the Redis document cache, whose entries
-- carry the readers, orders its fills and invalidations on the pair
-- (version, access_version): without it a fill that read the readers just
-- before a share was revoked could replace the invalidation and let the
-- revoked reader in until the entry expired.
ALTER TABLE documents.documents
    ADD COLUMN access_version bigint NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION documents.set_updated_at() RETURNS trigger AS $$
BEGIN
    -- A change of readers alone is a change of access, not of the document.
    IF (NEW.readers IS DISTINCT FROM OLD.readers OR NEW.access_version IS DISTINCT FROM OLD.access_version)
       AND to_jsonb(NEW) - 'readers' - 'access_version' = to_jsonb(OLD) - 'readers' - 'access_version' THEN
        RETURN NEW;
    END IF;
    NEW.updated_at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION documents.set_updated_at() RETURNS trigger AS $$
BEGIN
    IF NEW.readers IS DISTINCT FROM OLD.readers
       AND to_jsonb(NEW) - 'readers' = to_jsonb(OLD) - 'readers' THEN
        RETURN NEW;
    END IF;
    NEW.updated_at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
ALTER TABLE documents.documents DROP COLUMN access_version;
