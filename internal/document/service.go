package document

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/docstream/docstream/apperr"
	blobstore "github.com/docstream/docstream/internal/blob"
)

// Service holds the document use cases. Its fields are the only things it
// talks to.
type Service struct {
	store *Store
	blobs *blobstore.Bucket // bucket "documents"
	cache *Cache            // Redis; may be unavailable
	log   *slog.Logger
}

// NewService wires the use cases.
func NewService(store *Store, blobs *blobstore.Bucket, cache *Cache, log *slog.Logger) *Service {
	return &Service{store: store, blobs: blobs, cache: cache, log: log}
}

// Created is a new document and the WAL position after its commit.
type Created struct {
	*Document
	LSN uint64 `json:"-"`
}

// Create stores content under a new id and then inserts the row in one
// transaction. Content goes first so that the row (and its CDC event) never
// points at missing bytes; if the insert fails the blob is removed. At most
// limit bytes are read from content; more is a too_large error.
func (s *Service) Create(ctx context.Context, in CreateInput, content io.Reader, limit int64) (*Created, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	u, err := s.Upload(ctx, in.ContentType, content, limit)
	if err != nil {
		return nil, err
	}
	return s.Commit(ctx, u, in)
}

// Upload is content stored under a new document id, not yet a document.
// It must be passed to Commit, which inserts the row or removes the blob.
type Upload struct {
	ID, Key, ContentType, SHA256 string
	Size                         int64
}

// Upload streams content into the bucket, hashing and counting as it goes,
// detecting the content type from the first bytes when none is given.
func (s *Service) Upload(ctx context.Context, contentType string, content io.Reader, limit int64) (*Upload, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "internal error")
	}
	if contentType != "" {
		ct, problem := ParseContentType(contentType)
		if problem != "" {
			return nil, apperr.Fields(apperr.FieldError{Field: "content_type", Message: problem})
		}
		contentType = ct
	}
	u := &Upload{ID: id.String(), Key: ContentKey(id.String()), ContentType: contentType}
	br := bufio.NewReaderSize(content, 4096)
	if u.ContentType == "" {
		head, _ := br.Peek(512)
		u.ContentType = DetectContentType(head)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.blobs.NewWriter(wctx, u.Key, &blob.WriterOptions{ContentType: u.ContentType})
	if err != nil {
		return nil, apperr.Wrap(apperr.Unavailable, err, "object storage unavailable")
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(br, limit+1))
	if err == nil && n > limit {
		err = apperr.E(apperr.TooLarge, "content is larger than %d bytes", limit)
	}
	if err != nil {
		cancel() // a cancelled writer discards what it wrote
		_ = w.Close()
		var ae *apperr.Error
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &ae):
			return nil, err
		case errors.As(err, &tooLarge):
			return nil, apperr.E(apperr.TooLarge, "request body is larger than %d bytes", tooLarge.Limit)
		default:
			return nil, apperr.Wrap(apperr.Invalid, err, "reading content failed: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, apperr.Wrap(apperr.Unavailable, err, "object storage unavailable")
	}
	// Durable before the row that points at it is committed.
	if err := s.blobs.Sync(u.Key); err != nil {
		s.Discard(ctx, u)
		return nil, apperr.Wrap(apperr.Unavailable, err, "object storage unavailable")
	}
	u.Size, u.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	return u, nil
}

// Commit validates in and inserts the document row for u in one statement.
// On any failure the uploaded content is removed.
func (s *Service) Commit(ctx context.Context, u *Upload, in CreateInput) (*Created, error) {
	err := in.Validate()
	var out *Document
	var lsn uint64
	if err == nil {
		out, lsn, err = s.store.Insert(ctx, &Document{ID: u.ID, Title: in.Title, ContentType: u.ContentType,
			ContentSize: u.Size, S3Key: u.Key, Status: StatusCreated, CreatedBy: in.CreatedBy, ContentSHA256: u.SHA256})
	}
	if err != nil {
		s.Discard(ctx, u)
		return nil, err
	}
	return &Created{Document: out, LSN: lsn}, nil
}

// Discard removes uploaded content that will not become a document.
func (s *Service) Discard(ctx context.Context, u *Upload) {
	// Not the request's context: the blob must go even if the client left.
	if err := s.blobs.Remove(context.WithoutCancel(ctx), u.Key); err != nil {
		s.log.ErrorContext(ctx, "orphan blob; the sweeper will remove it", "key", u.Key, "err", err)
	}
}

// DetectContentType sniffs a media type from the first bytes, keeping
// text/plain for plain text (the reference's default).
func DetectContentType(head []byte) string {
	if len(head) == 0 {
		return "text/plain"
	}
	ct := http.DetectContentType(head)
	if mt, params, err := mime.ParseMediaType(ct); err == nil {
		if mt == "text/plain" && params["charset"] == "utf-8" {
			return "text/plain"
		}
		return mime.FormatMediaType(mt, params)
	}
	return ct
}

// Get returns a document, from the cache when it can, and counts a view by
// clientIP.
func (s *Service) Get(ctx context.Context, id, clientIP string) (*Document, error) {
	if d := s.cache.GetAndCountView(ctx, id, clientIP); d != nil {
		return d, nil
	}
	d, err := s.store.Get(ctx, id)
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			s.cache.DropViews(ctx, id) // undo the view just counted for a missing id
		}
		return nil, err
	}
	s.cache.Put(ctx, d)
	return d, nil
}

// Lookup returns a document without counting a view (gRPC, content).
func (s *Service) Lookup(ctx context.Context, id string) (*Document, error) {
	return s.store.Get(ctx, id)
}

// List returns a page, newest first, and the cursor of the next one.
func (s *Service) List(ctx context.Context, lq ListQuery) (*Page, error) {
	if err := validateListQuery(lq); err != nil {
		return nil, err
	}
	return s.store.List(ctx, lq)
}

// Update changes title and/or status and invalidates the cache entry (the
// fast path; the Invalidator applies the same change from the stream).
func (s *Service) Update(ctx context.Context, id string, in UpdateInput) (*Created, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	d, lsn, err := s.store.Update(ctx, id, in)
	if err != nil {
		return nil, err
	}
	s.cache.Invalidate(ctx, id, d.Version)
	return &Created{Document: d, LSN: lsn}, nil
}

// SetStatus is the gRPC status update: idempotent, legal transitions only.
func (s *Service) SetStatus(ctx context.Context, id, status string) (*Document, error) {
	u, err := s.Update(ctx, id, UpdateInput{Status: &status})
	if err != nil {
		return nil, err
	}
	return u.Document, nil
}

// Delete removes the row (signatures cascade), then the cache entries and
// the content. The row goes first: a failure after it leaves at worst an
// orphan blob, never a row pointing at nothing.
func (s *Service) Delete(ctx context.Context, id string) error {
	d, err := s.store.Delete(ctx, id)
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	s.cache.Forget(ctx, id)
	if d.S3Key != "" {
		if err := s.blobs.Remove(ctx, d.S3Key); err != nil {
			s.log.ErrorContext(ctx, "orphan blob after delete; the sweeper will remove it", "key", d.S3Key, "err", err)
		}
	}
	return nil
}

// Content opens the stored bytes of a document.
func (s *Service) Content(ctx context.Context, id string) (*Document, *blob.Reader, error) {
	d, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if d.S3Key == "" {
		return nil, nil, apperr.E(apperr.NotFound, "document %s has no content", id)
	}
	r, err := s.blobs.NewReader(ctx, d.S3Key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, nil, apperr.Wrap(apperr.NotFound, err, "content of document %s not found", id)
		}
		return nil, nil, apperr.Wrap(apperr.Unavailable, err, "object storage unavailable")
	}
	return d, r, nil
}

// Stats returns view analytics. Without Redis the counts read as zero.
func (s *Service) Stats(ctx context.Context, id string) (*Stats, error) {
	if _, err := s.store.Get(ctx, id); err != nil {
		return nil, err
	}
	total, unique, _ := s.cache.Stats(ctx, id)
	return &Stats{DocumentID: id, TotalViews: total, UniqueViews: unique}, nil
}

// Ownership is who owns the objects of the documents bucket, for the blob
// sweeper: everything under "{id}/" (content, and objects derived from it
// such as extracted text or thumbnails) belongs to document {id}.
func (s *Service) Ownership() blobstore.Ownership {
	return blobstore.Ownership{Owner: blobstore.FirstSegmentUUID, Existing: s.store.Existing}
}

// Ready probes for /health/ready.
func (s *Service) Ready() (db, cache, blobs func(context.Context) error) {
	return s.store.Ping, s.cache.Ping, s.blobs.Ping
}

// normalizeContentType lowercases and trims a given content type.
func normalizeContentType(ct string) string { return strings.ToLower(strings.TrimSpace(ct)) }
