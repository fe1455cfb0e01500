-- +goose Up
-- GET /documents pages by keyset: newest first, ordered by (created_at, id)
-- with id breaking ties, resumed after the last row a client saw. Each
-- index below ends in (created_at, id) so that "filter = $x AND
-- (created_at, id) < ($t, $id) ORDER BY created_at DESC, id DESC LIMIT n"
-- is one backward index range scan: no sort, no walk of rows before the
-- cursor, the same cost on page 1 and page 10,000 and at any table size.
-- The two filter indexes replace the (status, created_at) and
-- (created_by, created_at) ones, whose missing id left a sort of every
-- equal created_at behind them and could not serve the row comparison.
CREATE INDEX idx_documents_created_id ON documents.documents (created_at, id);
CREATE INDEX idx_documents_status_created_id ON documents.documents (status, created_at, id);
CREATE INDEX idx_documents_created_by_created_id ON documents.documents (created_by, created_at, id);
DROP INDEX documents.idx_documents_status_created;
DROP INDEX documents.idx_documents_created_by;

-- +goose Down
CREATE INDEX idx_documents_status_created ON documents.documents (status, created_at DESC);
CREATE INDEX idx_documents_created_by ON documents.documents (created_by, created_at DESC);
DROP INDEX documents.idx_documents_created_by_created_id;
DROP INDEX documents.idx_documents_status_created_id;
DROP INDEX documents.idx_documents_created_id;
