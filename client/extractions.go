package client

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
)

// Extraction is a document's extraction as the extractor answered it.
type Extraction struct {
	api.Extraction
	// CommitLSN is the answer's X-Commit-LSN: at or past the commit of
	// what it shows. Once Status is done, a search with MinLSN CommitLSN
	// finds the extracted words.
	CommitLSN uint64 `json:"-"`
}

// DocumentExtraction returns what the extractor made of a document's
// content (GET /documents/{id}/extraction); not_found while it has none
// yet.
func (c *Client) DocumentExtraction(ctx context.Context, id string) (*Extraction, error) {
	var e Extraction
	h, err := c.call(ctx, http.MethodGet, idPath("documents", id, "extraction"), nil, nil, &e.Extraction)
	if err != nil {
		return nil, err
	}
	e.CommitLSN = commitLSN(h, api.CommitLSNHeader)
	return &e, nil
}

// WaitExtraction polls DocumentExtraction every interval (default 200 ms)
// until the extraction has ended (done, failed, skipped or unsupported)
// or ctx is done. This is how a client reads its own upload's words: wait,
// then search with MinLSN set to the returned CommitLSN.
func (c *Client) WaitExtraction(ctx context.Context, id string, interval time.Duration) (*Extraction, error) {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	for {
		e, err := c.DocumentExtraction(ctx, id)
		if err == nil && e.Status != api.ExtractionPending && e.Status != api.ExtractionRunning {
			return e, nil
		}
		if err != nil && apperr.CodeOf(err) != apperr.NotFound {
			return nil, err
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return nil, err
			}
			return e, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// ExtractDocument queues a document's extraction again
// (POST /documents/{id}/extract; 202).
func (c *Client) ExtractDocument(ctx context.Context, id string) (*Extraction, error) {
	var e Extraction
	h, err := c.call(ctx, http.MethodPost, idPath("documents", id, "extract"), nil, struct{}{}, &e.Extraction)
	if err != nil {
		return nil, err
	}
	e.CommitLSN = commitLSN(h, api.CommitLSNHeader)
	return &e, nil
}

// RerunExtractions queues many extractions again (POST /extractions/rerun).
func (c *Client) RerunExtractions(ctx context.Context, req api.ExtractRequest) (*api.ExtractResponse, error) {
	var out api.ExtractResponse
	if _, err := c.call(ctx, http.MethodPost, "/extractions/rerun", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExtractionQueue counts extractions by status (GET /extractions/queue).
func (c *Client) ExtractionQueue(ctx context.Context) (*api.ExtractionQueue, error) {
	var out api.ExtractionQueue
	if _, err := c.call(ctx, http.MethodGet, "/extractions/queue", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Thumbnail is a document's thumbnail (a PNG). Close it.
type Thumbnail struct {
	io.ReadCloser
	ContentType string
	// ETag identifies the image: pass it to Thumbnail again to get
	// NotModified instead of the bytes.
	ETag string
	// NotModified is set (and the body empty) when the thumbnail still has
	// the ETag given.
	NotModified bool
}

// DocumentThumbnail fetches a document's first-page thumbnail
// (GET /documents/{id}/thumbnail); not_found when it has none. etag, when
// not empty, is sent as If-None-Match.
func (c *Client) DocumentThumbnail(ctx context.Context, id, etag string) (*Thumbnail, error) {
	h := http.Header{"Accept": {"image/png, */*"}}
	if etag != "" {
		h.Set("If-None-Match", etag)
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: idPath("documents", id, "thumbnail"), header: h}, http.StatusNotModified)
	if err != nil {
		return nil, err
	}
	return &Thumbnail{ReadCloser: resp.Body, ContentType: resp.Header.Get("Content-Type"),
		ETag: strings.TrimSpace(resp.Header.Get("ETag")), NotModified: resp.StatusCode == http.StatusNotModified}, nil
}
