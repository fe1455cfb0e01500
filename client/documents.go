package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
)

// Written is a document as a write (create, update) returned it, with
// what the answer's headers add.
type Written struct {
	api.Document
	// CommitLSN is the write's X-Commit-LSN: pass it as MinLSN to Search,
	// Suggest or Aggregate to read your own write.
	CommitLSN uint64 `json:"-"`
}

// CreateDocument creates a document from inline content
// (POST /documents, JSON). Larger files go through UploadDocument.
//
// It sends an Idempotency-Key of its own and, when no answer came (the
// connection was lost: the create may or may not have committed), or the
// answer was "retry later" (503) or "still in progress" (409), sends the
// same request with the same key again, up to createAttempts times in
// all: the server answers a repeat with the first create's document, so a
// retry never makes a second one.
func (c *Client) CreateDocument(ctx context.Context, req api.CreateDocumentRequest) (*Written, error) {
	h := http.Header{api.IdempotencyKeyHeader: {newIdempotencyKey()}}
	var err error
	for attempt := range createAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, errors.Join(ctx.Err(), err)
			case <-time.After(time.Duration(attempt) * createBackoff):
			}
		}
		var w *Written
		if w, err = c.write(ctx, http.MethodPost, "/documents", req, h); err == nil || !retryableCreate(ctx, err) {
			return w, err
		}
	}
	return nil, err
}

// createAttempts and createBackoff bound CreateDocument's retries: 0.5 s,
// then 1 s, about the Retry-After the services send.
const (
	createAttempts = 3
	createBackoff  = 500 * time.Millisecond
)

// retryableCreate: no answer (and the caller has not given up), or an
// answer that says "retry".
func retryableCreate(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ae *apperr.Error
	if !errors.As(err, &ae) {
		return true // transport: the answer was lost
	}
	return ae.Code == apperr.Unavailable || ae.Code == apperr.Conflict
}

// newIdempotencyKey is 128 random bits, hex.
func newIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Upload is a document uploaded as multipart/form-data.
type Upload struct {
	Title     string
	CreatedBy string
	// ContentType is the document's content type; empty: the file part's
	// type, else detected by the server from the first bytes.
	ContentType string
	// FileName names the file part (the server keeps no file name).
	FileName string
	// FileType is the file part's Content-Type (default
	// application/octet-stream, which lets the server detect the type).
	FileType string
	// Content is streamed: it is never held in memory whole.
	Content io.Reader
	// IdempotencyKey is sent as Idempotency-Key (empty: a random one).
	// A streamed upload cannot be replayed by the client; a caller that
	// retries one after a lost answer passes the same key again, and gets
	// the first upload's document rather than a second one.
	IdempotencyKey string
}

// UploadDocument creates a document by streaming u.Content as a multipart
// form (POST /documents: fields title, created_by and content_type, then
// the part "file"). The request has no Content-Length; nothing is
// buffered.
func (c *Client) UploadDocument(ctx context.Context, u Upload) (*Written, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() { pw.CloseWithError(writeForm(mw, u)) }()
	key := u.IdempotencyKey
	if key == "" {
		key = newIdempotencyKey()
	}
	resp, err := c.send(ctx, request{method: http.MethodPost, path: "/documents", body: pr, contentType: mw.FormDataContentType(),
		header: http.Header{api.IdempotencyKeyHeader: {key}}})
	// Unblock the writer if the request ended before reading the whole form.
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	w := &Written{CommitLSN: commitLSN(resp.Header, api.CommitLSNHeader)}
	return w, decode(resp, &w.Document)
}

func writeForm(mw *multipart.Writer, u Upload) error {
	fields := [][2]string{{"title", u.Title}, {"created_by", u.CreatedBy}}
	if u.ContentType != "" {
		fields = append(fields, [2]string{"content_type", u.ContentType})
	}
	for _, kv := range fields {
		if err := mw.WriteField(kv[0], kv[1]); err != nil {
			return err
		}
	}
	fileType := u.FileType
	if fileType == "" {
		fileType = "application/octet-stream"
	}
	name := u.FileName
	if name == "" {
		name = "content"
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "file", "filename": name}))
	h.Set("Content-Type", fileType)
	part, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := io.Copy(part, u.Content); err != nil {
		return err
	}
	return mw.Close()
}

// GetDocument returns a document's metadata (GET /documents/{id}). Each
// call counts a view.
func (c *Client) GetDocument(ctx context.Context, id string) (*api.Document, error) {
	var d api.Document
	if _, err := c.call(ctx, http.MethodGet, idPath("documents", id), nil, nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// ListDocuments returns a page of documents, newest first (GET /documents).
func (c *Client) ListDocuments(ctx context.Context, page api.ListOptions) ([]api.Document, error) {
	var docs []api.Document
	if _, err := c.call(ctx, http.MethodGet, "/documents", pageQuery(page), nil, &docs); err != nil {
		return nil, err
	}
	return docs, nil
}

// ListDocumentsPage returns a page of documents in req.Sort's order
// (newest first by default), selected by req's filters, and the cursor of
// the next page (GET /documents). Pass NextCursor back as req.Cursor, with
// the same Sort, to read on; it is "" on the last page.
func (c *Client) ListDocumentsPage(ctx context.Context, req api.ListDocumentsRequest) (*api.DocumentPage, error) {
	q := url.Values{}
	setInt(q, "limit", req.Limit)
	setInt(q, "skip", req.Skip)
	setString(q, "cursor", req.Cursor)
	setString(q, "sort", string(req.Sort))
	if req.MinLSN > 0 {
		q.Set("min_lsn", strconv.FormatUint(req.MinLSN, 10))
	}
	setString(q, "status", string(req.Status))
	setString(q, "created_by", req.CreatedBy)
	if !req.CreatedAfter.IsZero() {
		q.Set("created_after", req.CreatedAfter.UTC().Format(time.RFC3339Nano))
	}
	if !req.CreatedBefore.IsZero() {
		q.Set("created_before", req.CreatedBefore.UTC().Format(time.RFC3339Nano))
	}
	page := &api.DocumentPage{}
	h, err := c.call(ctx, http.MethodGet, "/documents", q, nil, &page.Documents)
	if err != nil {
		return nil, err
	}
	page.NextCursor = h.Get(api.NextCursorHeader)
	return page, nil
}

func pageQuery(p api.ListOptions) url.Values {
	q := url.Values{"skip": {strconv.Itoa(p.Skip)}}
	setInt(q, "limit", p.Limit)
	return q
}

// UpdateDocument changes a document's title and/or status
// (PATCH /documents/{id}); the version goes up by one. An illegal status
// transition is an apperr.Conflict.
func (c *Client) UpdateDocument(ctx context.Context, id string, req api.UpdateDocumentRequest) (*Written, error) {
	return c.write(ctx, http.MethodPatch, idPath("documents", id), req, nil)
}

// UpdateDocumentIfVersion is UpdateDocument only if the document is still
// at version (If-Match): otherwise nothing changes and the error is an
// apperr.PreconditionFailed.
func (c *Client) UpdateDocumentIfVersion(ctx context.Context, id string, version int32, req api.UpdateDocumentRequest) (*Written, error) {
	return c.write(ctx, http.MethodPatch, idPath("documents", id), req, http.Header{"If-Match": {`"` + strconv.Itoa(int(version)) + `"`}})
}

func (c *Client) write(ctx context.Context, method, path string, in any, h http.Header) (*Written, error) {
	body, err := jsonBody(in)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, request{method: method, path: path, body: body, contentType: "application/json", header: h})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	w := &Written{CommitLSN: commitLSN(resp.Header, api.CommitLSNHeader)}
	return w, decode(resp, &w.Document)
}

// DeleteDocument deletes a document, its content and its signatures
// (DELETE /documents/{id}).
func (c *Client) DeleteDocument(ctx context.Context, id string) error {
	_, err := c.call(ctx, http.MethodDelete, idPath("documents", id), nil, nil, nil)
	return err
}

// DocumentStats returns a document's view counters
// (GET /documents/{id}/stats).
func (c *Client) DocumentStats(ctx context.Context, id string) (*api.DocumentStats, error) {
	var s api.DocumentStats
	if _, err := c.call(ctx, http.MethodGet, idPath("documents", id, "stats"), nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Content is a document's content as the server streams it. Close it.
type Content struct {
	io.ReadCloser
	ContentType string
	// Length is the number of bytes this answer carries (-1: unknown).
	Length int64
	// Offset is where these bytes start in the content (0 unless a range
	// was asked for).
	Offset int64
	// Size is the whole content's size (-1: unknown).
	Size int64
	// SHA256 is the content's hex SHA-256 (its ETag), when the server
	// knows it.
	SHA256 string
}

// DocumentContent streams a document's content
// (GET /documents/{id}/content).
func (c *Client) DocumentContent(ctx context.Context, id string) (*Content, error) {
	return c.content(ctx, id, "")
}

// DocumentContentRange streams length bytes of a document's content from
// offset (length ≤ 0: to the end), with an HTTP Range request. A range
// that starts past the end is an error answer (416).
func (c *Client) DocumentContentRange(ctx context.Context, id string, offset, length int64) (*Content, error) {
	if offset < 0 {
		return nil, fmt.Errorf("client: negative range offset %d", offset)
	}
	r := fmt.Sprintf("bytes=%d-", offset)
	if length > 0 {
		r += strconv.FormatInt(offset+length-1, 10)
	}
	return c.content(ctx, id, r)
}

func (c *Client) content(ctx context.Context, id, rangeHeader string) (*Content, error) {
	h := http.Header{"Accept": {"*/*"}}
	if rangeHeader != "" {
		h.Set("Range", rangeHeader)
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: idPath("documents", id, "content"), header: h})
	if err != nil {
		return nil, err
	}
	out := &Content{
		ReadCloser:  resp.Body,
		ContentType: resp.Header.Get("Content-Type"),
		Length:      resp.ContentLength,
		Size:        resp.ContentLength,
		SHA256:      strings.Trim(resp.Header.Get("ETag"), `"`),
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		// Content-Range: bytes first-last/size
		var first, last int64
		var size string
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%s", &first, &last, &size); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("client: malformed Content-Range %q", resp.Header.Get("Content-Range"))
		}
		out.Offset = first
		out.Size = -1
		if n, err := strconv.ParseInt(size, 10, 64); err == nil {
			out.Size = n
		}
	case rangeHeader != "" && rangeHeader != "bytes=0-":
		// The server (or a proxy) ignored Range: the bytes would not be
		// the ones asked for.
		resp.Body.Close()
		return nil, fmt.Errorf("client: the server answered %d to a Range request, not 206", resp.StatusCode)
	}
	return out, nil
}

// DocumentShares lists who a document is shared with
// (GET /documents/{id}/shares; the owner, a holder of own or an admin).
func (c *Client) DocumentShares(ctx context.Context, id string) ([]api.Share, error) {
	var shares []api.Share
	if _, err := c.call(ctx, http.MethodGet, idPath("documents", id, "shares"), nil, nil, &shares); err != nil {
		return nil, err
	}
	return shares, nil
}

// ShareDocument grants req.Grantee req.Level on a document, or changes the
// level it has (POST /documents/{id}/shares). The answer's CommitLSN, as
// MinLSN of a search, makes the grantee find the document at once.
func (c *Client) ShareDocument(ctx context.Context, id string, req api.ShareRequest) (*api.Share, uint64, error) {
	var sh api.Share
	h, err := c.call(ctx, http.MethodPost, idPath("documents", id, "shares"), nil, req, &sh)
	if err != nil {
		return nil, 0, err
	}
	return &sh, commitLSN(h, api.CommitLSNHeader), nil
}

// UnshareDocument revokes grantee's share of a document
// (DELETE /documents/{id}/shares/{grantee}) and returns the revocation's
// commit LSN: a search with it as MinLSN no longer shows the grantee the
// document.
func (c *Client) UnshareDocument(ctx context.Context, id, grantee string) (uint64, error) {
	h, err := c.call(ctx, http.MethodDelete, idPath("documents", id, "shares", url.PathEscape(grantee)), nil, nil, nil)
	if err != nil {
		return 0, err
	}
	return commitLSN(h, api.CommitLSNHeader), nil
}
