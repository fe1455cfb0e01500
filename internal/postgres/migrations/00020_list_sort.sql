-- +goose Up
-- GET /documents?sort= orders by updated_at or title as well as by
-- created_at (00008), each with id breaking ties and keyset paging on
-- (key, id). One index per key makes "(key, id) > ($k, $id) ORDER BY key,
-- id LIMIT n" (or its descending mirror, scanned backward) one index
-- range scan: no sort, no rows before the cursor read, at any depth.
-- A filter with these orders reads the order's index and drops the rows
-- the filter refuses (no per-filter index: a rare status with sort=title
-- reads more of the index before its page is full; see
-- TestListSortsAreIndexDriven).
-- The cost: updated_at changes on every write, so no document update is a
-- HOT update any more (each one also writes this index's entry).
CREATE INDEX idx_documents_updated_id ON documents.documents (updated_at, id);
CREATE INDEX idx_documents_title_id ON documents.documents (title, id);

-- +goose Down
DROP INDEX documents.idx_documents_title_id;
DROP INDEX documents.idx_documents_updated_id;
