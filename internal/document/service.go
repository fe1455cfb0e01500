package document

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
	blobstore "github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/postgres"
)

// Service holds the document use cases. Its fields are the only things it
// talks to.
type Service struct {
	store *Store
	blobs *blobstore.Bucket // bucket "documents"
	cache *Cache            // Redis; may be unavailable
	local *LocalCache       // in front of cache; nil: none
	views *Views            // view counts, batched to Redis
	log   *slog.Logger
	mode  auth.Mode // required: access control applies (zero: open)
	// journalMax is the largest content journalled instead of synced
	// before the commit (0: none; see SetContentJournal).
	journalMax int64
}

// NewService wires the use cases, in open mode until SetMode says
// otherwise, without an in-process cache until SetLocalCache gives one.
// Its views are flushed by Views().Run and Views().Flush (and by Stats).
func NewService(store *Store, blobs *blobstore.Bucket, cache *Cache, log *slog.Logger) *Service {
	return &Service{store: store, blobs: blobs, cache: cache, log: log, views: NewViews(cache)}
}

// SetLocalCache puts l in front of the Redis cache before the service is
// used (l must be run: LocalCache.Run).
func (s *Service) SetLocalCache(l *LocalCache) { s.local = l }

// SetContentJournal makes content of up to max bytes durable through the
// content journal (see Journal) instead of its blob's fsyncs, on a file
// bucket (S3 acknowledges only durable writes: nothing to journal); 0
// turns it off. It must be called before the service is used, and the
// service's Journal must then be recovered before the service answers and
// run while it does.
func (s *Service) SetContentJournal(max int64) {
	if !s.blobs.NeedsSync() {
		max = 0
	}
	s.journalMax = max
}

// Views is the service's view counter, to run and to flush at shutdown.
func (s *Service) Views() *Views { return s.views }

// SetMode sets the auth mode (--auth-mode) before the service is used.
func (s *Service) SetMode(m auth.Mode) { s.mode = m }

// Created is a new document and the WAL position after its commit.
type Created struct {
	*Document
	LSN uint64 `json:"-"`
	// Replayed: the create's Idempotency-Key had already answered this
	// request; Document is that first answer and nothing was created.
	Replayed bool `json:"-"`
}

// Create stores content under a new id and then inserts the row in one
// transaction. Content goes first so that the row (and its CDC event) never
// points at missing bytes; if the insert fails the blob is removed. At most
// limit bytes are read from content; more is a too_large error.
func (s *Service) Create(ctx context.Context, in CreateInput, content io.Reader, limit int64) (*Created, error) {
	in = s.asCaller(ctx, in)
	if err := s.mayCreate(ctx); err != nil {
		return nil, err
	}
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
	// journal is the content when its blob was written without an fsync:
	// Commit journals it with the row, which makes it durable.
	journal []byte
}

// Upload stores content in the bucket, hashing and counting it, detecting
// the content type from the first bytes when none is given. Content of up
// to the journal's bound is read whole and written without waiting for an
// fsync (Commit journals it); larger content is streamed and synced.
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
	var r io.Reader = br
	if max := min(s.journalMax, limit); max > 0 {
		head, err := io.ReadAll(io.LimitReader(br, max+1))
		if err != nil {
			return nil, readError(err)
		}
		if int64(len(head)) <= max {
			// New key, no reader until the row commits: the direct write
			// (no temporary file, no rename) is enough, and a power loss
			// that tears it is what the journal repairs.
			if err := s.blobs.WriteUnsynced(ctx, u.Key, head, u.ContentType); err != nil {
				s.Discard(ctx, u)
				return nil, apperr.Wrap(apperr.Unavailable, err, "object storage unavailable")
			}
			sum := sha256.Sum256(head)
			u.Size, u.SHA256, u.journal = int64(len(head)), hex.EncodeToString(sum[:]), head
			return u, nil
		}
		r = io.MultiReader(bytes.NewReader(head), br)
	}
	return s.stream(ctx, u, r, limit)
}

// stream writes content to u's key as it arrives and syncs it.
func (s *Service) stream(ctx context.Context, u *Upload, content io.Reader, limit int64) (*Upload, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.blobs.NewWriter(wctx, u.Key, &blob.WriterOptions{ContentType: u.ContentType})
	if err != nil {
		return nil, apperr.Wrap(apperr.Unavailable, err, "object storage unavailable")
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(content, limit+1))
	if err == nil && n > limit {
		err = apperr.E(apperr.TooLarge, "content is larger than %d bytes", limit)
	}
	if err != nil {
		cancel() // a cancelled writer discards what it wrote
		_ = w.Close()
		return nil, readError(err)
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

// readError is the answer to a failure reading a create's content.
func readError(err error) error {
	var ae *apperr.Error
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return err
	case errors.As(err, &tooLarge):
		return apperr.E(apperr.TooLarge, "request body is larger than %d bytes", tooLarge.Limit)
	default:
		return apperr.Wrap(apperr.Invalid, err, "reading content failed: %v", err)
	}
}

// Commit validates in and inserts the document row for u in one statement.
// On a failure that certainly wrote nothing the uploaded content is
// removed (see discardUnlessCommitted for the uncertain ones).
func (s *Service) Commit(ctx context.Context, u *Upload, in CreateInput) (*Created, error) {
	in = s.asCaller(ctx, in)
	err := s.mayCreate(ctx)
	if err == nil {
		err = in.Validate()
	}
	if err != nil {
		s.Discard(ctx, u)
		return nil, err
	}
	d := &Document{ID: u.ID, Title: in.Title, ContentType: u.ContentType,
		ContentSize: u.Size, S3Key: u.Key, Status: StatusCreated, CreatedBy: in.CreatedBy, ContentSHA256: u.SHA256,
		Owner: in.owner}
	// Journalled content becomes durable with the row (one commit); the
	// row and its journal entry commit or fail together, so a failure
	// discardUnlessCommitted settles leaves no entry behind either.
	var j *journalEntry
	if u.journal != nil {
		j = &journalEntry{Key: u.Key, SHA256: u.SHA256, ContentType: u.ContentType, Bytes: u.journal}
	}
	var out *Document
	var lsn uint64
	var replayed bool
	if in.IdempotencyKey == "" {
		out, lsn, err = s.store.Insert(ctx, d, j)
	} else {
		out, replayed, lsn, err = s.store.InsertOnce(ctx, d, createKey(in, u), j)
	}
	if err != nil {
		s.discardUnlessCommitted(ctx, u, err)
		return nil, err
	}
	if replayed {
		s.Discard(ctx, u)
	}
	return &Created{Document: out, LSN: lsn, Replayed: replayed}, nil
}

// discardUnlessCommitted removes the content of an insert that failed,
// unless the failure leaves open whether the row was committed: a client
// that goes away (its context cancelled) or a connection lost while the
// statement was on its way can leave a committed row behind an error, and
// removing its content then would lose a document. PostgreSQL's own
// refusal (a constraint, a bad value) is certain: nothing was written. An
// uncertain one is settled by looking the row up; when even that fails the
// content stays, and the blob sweeper removes it later if no row appears.
func (s *Service) discardUnlessCommitted(ctx context.Context, u *Upload, err error) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) || pgconn.SafeToRetry(err) {
		s.Discard(ctx, u)
		return
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	have, lerr := s.store.Existing(lctx, []string{u.ID})
	switch {
	case lerr != nil:
		s.log.WarnContext(ctx, "create failed and its row could not be looked up; content kept for the sweeper", "id", u.ID, "err", lerr)
	case have[u.ID]:
		s.log.InfoContext(ctx, "create committed but its caller got an error; content kept", "id", u.ID, "err", err)
	default:
		s.Discard(ctx, u)
	}
}

// createKey is a create's idempotency key: scoped to the route and the
// caller, its fingerprint what the create asked for (the content by its
// hash, as the bytes are not kept), so a retry with another title or file
// is told apart from a repeat.
func createKey(in CreateInput, u *Upload) postgres.IdempotencyKey {
	h := sha256.New()
	for _, f := range []string{in.Title, in.CreatedBy, u.ContentType, u.SHA256, strconv.FormatInt(u.Size, 10)} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return postgres.IdempotencyKey{Scope: "POST /documents " + in.owner, Key: in.IdempotencyKey, Fingerprint: h.Sum(nil)}
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

// mayCreate refuses a create in required mode by a caller without an
// identity (the middleware answers 401 first; this is the backstop) or an
// API key without the write scope.
func (s *Service) mayCreate(ctx context.Context) error {
	if !s.required() {
		return nil
	}
	p := auth.FromContext(ctx)
	switch {
	case p.IsAnonymous() || p.Key() == "":
		return apperr.E(apperr.Unauthenticated, "a document needs an owner: sign in")
	case p.Kind == auth.KindService:
		return apperr.E(apperr.Forbidden, "a service credential may not create documents")
	}
	return s.checkScope(p, auth.LevelEdit)
}

// Get returns a document and its JSON answer, from the in-process cache
// when it can, then Redis, then PostgreSQL, and counts a view by clientIP
// (in memory, flushed in batches: Views). In required mode a document the
// caller may not view is NotFound, decided from the readers cached with it
// (kept coherent with share changes, see Cache and LocalCache) or read
// with it from PostgreSQL; a view is counted only for a caller that may
// view. minLSN (0: none) is the X-Commit-LSN of a write the answer must
// reflect: the in-process cache answers only once it has applied the
// stream up to it, and Redis is not asked (the write may be another
// service's, which does not invalidate Redis: the signing workflow moves
// signing_status and version); PostgreSQL has it, and its row refreshes
// Redis.
func (s *Service) Get(ctx context.Context, id, clientIP string, minLSN uint64) (*Document, []byte, error) {
	p := auth.FromContext(ctx)
	if err := s.checkScope(p, auth.LevelView); err != nil {
		return nil, nil, err
	}
	if e := s.local.get(id, minLSN); e != nil {
		if err := s.authorize(ctx, e.rec, auth.LevelView); err != nil {
			return nil, nil, err
		}
		s.views.Count(id, clientIP)
		return e.rec.Document, e.body, nil
	}
	f := s.local.begin(id)
	var r *Record
	if minLSN == 0 {
		r = s.cache.Get(ctx, id)
	}
	if r == nil {
		var err error
		if r, err = s.store.Record(ctx, id, nil); err != nil {
			s.local.abandon(f)
			return nil, nil, err
		}
		s.cache.Put(ctx, r)
	}
	body, err := encodeDocument(r.Document)
	if err != nil {
		s.local.abandon(f)
		return nil, nil, apperr.Wrap(apperr.Internal, err, "internal error")
	}
	s.local.put(f, r, body)
	if err := s.authorize(ctx, r, auth.LevelView); err != nil {
		return nil, nil, err
	}
	s.views.Count(id, clientIP)
	return r.Document, body, nil
}

// encodeDocument is the body of a GET answer: the document as JSON and a
// newline, what httpx.Respond writes.
func encodeDocument(d *Document) ([]byte, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Lookup returns a document the caller may view, without counting a view
// (gRPC, content).
func (s *Service) Lookup(ctx context.Context, id string) (*Document, error) {
	r, err := s.lookup(ctx, id, auth.LevelView)
	if err != nil {
		return nil, err
	}
	return r.Document, nil
}

// lookup reads the record and checks the caller may do need to it.
func (s *Service) lookup(ctx context.Context, id string, need auth.Level) (*Record, error) {
	if err := s.checkScope(auth.FromContext(ctx), need); err != nil {
		return nil, err
	}
	r, err := s.store.Record(ctx, id, s.callerKeys(ctx))
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, r, need); err != nil {
		return nil, err
	}
	return r, nil
}

// Levels are the levels the caller holds on a document it may view (own
// for everyone in open mode), for the signature service's check.
func (s *Service) Levels(ctx context.Context, id string) (*Document, []auth.Level, error) {
	r, err := s.lookup(ctx, id, auth.LevelView)
	if err != nil {
		return nil, nil, err
	}
	if !s.required() {
		return r.Document, []auth.Level{auth.LevelOwn}, nil
	}
	return r.Document, levelsOf(auth.FromContext(ctx), r), nil
}

// List returns a page, newest first, and the cursor of the next one: in
// required mode only what the caller may view (everything for an admin).
func (s *Service) List(ctx context.Context, lq ListQuery) (*Page, error) {
	if err := validateListQuery(lq); err != nil {
		return nil, err
	}
	p := auth.FromContext(ctx)
	lq.readers = nil
	if s.required() && !(p.Admin && p.Kind != auth.KindService) {
		if err := s.checkScope(p, auth.LevelView); err != nil {
			return nil, err
		}
		lq.readers = p.ReaderKeys()
		if len(lq.readers) == 0 || p.Kind == auth.KindService {
			return &Page{Documents: []*Document{}}, nil
		}
	}
	return s.store.List(ctx, lq)
}

// Update changes title and/or status and invalidates the cache entry (the
// fast path; the Invalidator applies the same change from the stream). In
// required mode it needs edit.
func (s *Service) Update(ctx context.Context, id string, in UpdateInput) (*Created, error) {
	return s.update(ctx, id, in, auth.LevelEdit)
}

func (s *Service) update(ctx context.Context, id string, in UpdateInput, need auth.Level) (*Created, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	may := func(r *Record) error { return s.authorize(ctx, r, need) }
	if need == levelSetSigned {
		may = s.maySetSigned(ctx)
	} else if err := s.checkScope(auth.FromContext(ctx), need); err != nil {
		return nil, err
	}
	d, lsn, err := s.store.Update(ctx, id, in, s.callerKeys(ctx), may)
	if err != nil {
		return nil, err
	}
	s.local.invalidate(id, stamp{Version: d.Version})
	s.cache.Invalidate(ctx, id, d.Version, 0)
	return &Created{Document: d, LSN: lsn}, nil
}

// levelSetSigned is the need of a gRPC status update to signed: edit, or
// the signature service's own credential (its outbox applies a signature
// recorded when the signer's sign level was checked, possibly after the
// signer's token expired).
const levelSetSigned auth.Level = "set-signed"

// SignatureService is the one service principal that may set a document
// signed: the signature service's outbox, acting after the signer's check.
const SignatureService = "service:signature"

// maySetSigned admits a service principal (for this and nothing else) and
// otherwise asks for edit.
func (s *Service) maySetSigned(ctx context.Context) guard {
	return func(r *Record) error {
		if s.required() && auth.FromContext(ctx).Key() == SignatureService {
			return nil
		}
		return s.authorize(ctx, r, auth.LevelEdit)
	}
}

// SetStatus is the gRPC status update: idempotent, legal transitions only.
// It needs edit, except that setting signed is also what a service
// credential may do (and the only thing it may do).
//
// The signature service (its credential in required mode; any gRPC caller
// in open mode, where gRPC is the services' own API) may also set the
// statuses of the signing workflow — sent, viewed, pending, signed,
// completed — on a document an open signing request pins; every other
// change of such a document is refused (409).
func (s *Service) SetStatus(ctx context.Context, id, status string) (*Document, error) {
	need := auth.LevelEdit
	workflow := false
	switch Status(status) {
	case StatusSigned:
		need = levelSetSigned
		workflow = !s.required() || auth.FromContext(ctx).Key() == SignatureService
	case StatusSent, StatusViewed, StatusPending, StatusCompleted:
		if !s.required() || auth.FromContext(ctx).Key() == SignatureService {
			need, workflow = levelSetSigned, true
		}
	}
	u, err := s.update(ctx, id, UpdateInput{Status: &status, workflow: workflow}, need)
	if err != nil {
		return nil, err
	}
	return u.Document, nil
}

// Delete removes the row (signatures cascade), then the cache entries and
// the content. The row goes first: a failure after it leaves at worst an
// orphan blob, never a row pointing at nothing. In required mode it needs
// own (a deletion cannot be undone and takes every signature with it).
func (s *Service) Delete(ctx context.Context, id string) error {
	var d *Document
	var err error
	if s.required() {
		if err := s.checkScope(auth.FromContext(ctx), auth.LevelOwn); err != nil {
			return err
		}
		d, err = s.store.Delete(ctx, id, s.callerKeys(ctx), func(r *Record) error { return s.authorize(ctx, r, auth.LevelOwn) })
	} else {
		d, err = s.store.deleteUnchecked(ctx, id)
	}
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	s.local.invalidate(id, gone)
	s.views.Forget(id)
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
	d, err := s.Lookup(ctx, id)
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

// Stats returns view analytics. The document's views this instance
// counted and did not flush yet are written in the same round trip, so
// stats right after GETs served here are exact. Without Redis the counts
// read as zero.
func (s *Service) Stats(ctx context.Context, id string) (*Stats, error) {
	if _, err := s.Lookup(ctx, id); err != nil {
		return nil, err
	}
	pending := s.views.take(id)
	total, unique, ok := s.cache.Stats(ctx, id, pending)
	if !ok && pending != nil {
		s.views.giveBack(map[string]*pendingViews{id: pending})
	}
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

// Shares lists a document's shares (owner, own or admin).
func (s *Service) Shares(ctx context.Context, id string) ([]*api.Share, error) {
	if err := s.checkScope(auth.FromContext(ctx), auth.LevelOwn); err != nil {
		return nil, err
	}
	return s.store.Shares(ctx, id, s.callerKeys(ctx), s.mayShare(ctx))
}

// ShareChange is a share as granted, with where the document's access
// stands after it.
type ShareChange struct {
	*api.Share
	LSN uint64 `json:"-"`
}

// Share grants grantee level on document id, or changes its level (owner,
// own or admin). The document's readers change in the same transaction;
// the cache entry is invalidated up to the new access version at once.
func (s *Service) Share(ctx context.Context, id string, req api.ShareRequest) (*ShareChange, error) {
	grantee, problem := ParseGrantee(req.Grantee)
	var errs []apperr.FieldError
	if problem != "" {
		errs = append(errs, apperr.FieldError{Field: "grantee", Message: problem})
	}
	level, lerr := auth.ParseLevel(req.Level)
	if lerr != nil {
		errs = append(errs, apperr.FieldError{Field: "level", Message: "must be view, edit, sign or own"})
	}
	if err := apperr.Fields(errs...); err != nil {
		return nil, err
	}
	if err := s.checkScope(auth.FromContext(ctx), auth.LevelOwn); err != nil {
		return nil, err
	}
	sh, ch, err := s.store.Share(ctx, id, grantee, level, auth.FromContext(ctx).Key(), s.callerKeys(ctx), s.mayShare(ctx))
	if err != nil {
		return nil, err
	}
	s.local.invalidate(id, stamp{Version: ch.Version, Access: ch.AccessVersion})
	s.cache.Invalidate(ctx, id, ch.Version, ch.AccessVersion)
	return &ShareChange{Share: sh, LSN: ch.LSN}, nil
}

// Unshare revokes grantee's share of document id (owner, own or admin).
func (s *Service) Unshare(ctx context.Context, id, grantee string) (uint64, error) {
	g, problem := ParseGrantee(grantee)
	if problem != "" {
		return 0, apperr.Fields(apperr.FieldError{Field: "grantee", Message: problem})
	}
	if err := s.checkScope(auth.FromContext(ctx), auth.LevelOwn); err != nil {
		return 0, err
	}
	ch, err := s.store.Unshare(ctx, id, g, s.callerKeys(ctx), s.mayShare(ctx))
	if err != nil {
		return 0, err
	}
	s.local.invalidate(id, stamp{Version: ch.Version, Access: ch.AccessVersion})
	s.cache.Invalidate(ctx, id, ch.Version, ch.AccessVersion)
	return ch.LSN, nil
}

// mayShare is the guard of the shares: own (the owner, a holder of own,
// an admin).
func (s *Service) mayShare(ctx context.Context) guard {
	return func(r *Record) error { return s.authorize(ctx, r, auth.LevelOwn) }
}
