package signature

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	gcblob "gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/webapp"
)

// AuditEntry is one event of a document's audit trail (audit.Entry): the
// workflow appends one for every transition, in the transition's own
// transaction.
type AuditEntry = audit.Entry

// ContentStore is the documents bucket: the pinned content an invitation
// shows, and where the certificate of completion is stored beside the
// document (key "{document id}/certificate-{request id}.pdf", so the
// document's blob sweeper counts it as the document's).
type ContentStore interface {
	NewReader(ctx context.Context, key string, opts *gcblob.ReaderOptions) (*gcblob.Reader, error)
	WriteAll(ctx context.Context, key string, p []byte, opts *gcblob.WriterOptions) error
}

// Workflow is the signing-request workflow of issue 13: requests,
// recipients and invitations in schema signing, all owned by the signature
// service. Every transition is one transaction that also writes its audit
// entry and the due jobs it causes (notifications, the document's next
// status, the certificate), so nothing it promises is lost in a crash and
// a transition shows on the change stream as one commit. The document's
// status follows through due jobs of kind doc_status, applied in order
// over the document service's gRPC API as service "signature".
type Workflow struct {
	svc       *Service
	pool      *pgxpool.Pool
	content   ContentStore
	notifier  Notifier
	publicURL string
	limiter   *mailLimiter
	log       *slog.Logger
	kick      chan struct{} // wakes the scheduler after a commit that made a job due
	now       func() time.Time
}

// WorkflowOptions configure a Workflow.
type WorkflowOptions struct {
	// PublicURL is the base of the links mailed to recipients
	// (--public-url), e.g. https://docs.example.com.
	PublicURL string
	// MailPerMinute bounds the mails one principal (or client address) may
	// cause per minute by sending or resending requests.
	MailPerMinute int
	// Redis keeps the mail counts, shared by every instance (required).
	Redis redis.UniversalClient
	// MailKeyPrefix prefixes the counts' keys (empty: mailKeyPrefix);
	// instances that share one count share it.
	MailKeyPrefix string
}

// NewWorkflow returns the workflow over svc's database and document
// service. Its audit entries go to internal/audit, signed with the
// process's key (audit.SetSigner).
func NewWorkflow(svc *Service, content ContentStore, n Notifier, opts WorkflowOptions) *Workflow {
	if opts.MailPerMinute <= 0 {
		opts.MailPerMinute = 30
	}
	if opts.MailKeyPrefix == "" {
		opts.MailKeyPrefix = mailKeyPrefix
	}
	return &Workflow{
		svc: svc, pool: svc.store.pool, content: content, notifier: n,
		publicURL: strings.TrimRight(opts.PublicURL, "/"),
		limiter:   newMailLimiter(opts.Redis, opts.MailPerMinute, opts.MailKeyPrefix, svc.log),
		log:       svc.log, kick: make(chan struct{}, 1), now: time.Now,
	}
}

func (w *Workflow) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// actor names who acted, for the audit trail and the outcome.
func actor(ctx context.Context) string {
	p := auth.FromContext(ctx)
	if k := p.Key(); k != "" {
		return k
	}
	return "anonymous"
}

// Meta is who is asking, as the HTTP layer observed it.
type Meta struct {
	IP, UserAgent string
}

func (w *Workflow) appendAudit(ctx context.Context, tx pgx.Tx, e AuditEntry) error {
	return audit.Append(ctx, tx, e)
}

// lockedDoc is the document row a request is created or sent against.
type lockedDoc struct {
	Status, Owner, Title, CreatedBy, ContentType string
	SHA256, Key                                  *string
	Version                                      int32
	Readers                                      []string
	Levels                                       []auth.Level
}

// lockDocument locks the document row (FOR UPDATE, so a concurrent PATCH,
// DELETE or POST /signatures waits for this transaction and then sees the
// request) and decides need for the caller.
func (w *Workflow) lockDocument(ctx context.Context, tx pgx.Tx, id string, need auth.Level) (*lockedDoc, error) {
	p := auth.FromContext(ctx)
	var d lockedDoc
	var levels []string
	err := tx.QueryRow(ctx, `SELECT status, coalesce(owner, ''), title, created_by, coalesce(content_type, ''),
		content_sha256, s3_key, coalesce(version, 1), readers,
		coalesce((SELECT array_agg(level) FROM documents.shares sh WHERE sh.document_id = d.id AND sh.grantee = ANY($2::text[])), '{}')
		FROM documents.documents d WHERE id = $1::uuid FOR UPDATE`, id, p.ReaderKeys()).
		Scan(&d.Status, &d.Owner, &d.Title, &d.CreatedBy, &d.ContentType, &d.SHA256, &d.Key, &d.Version, &d.Readers, &levels)
	if err != nil {
		return nil, postgres.Error(err, "document "+id)
	}
	for _, l := range levels {
		d.Levels = append(d.Levels, auth.Level(l))
	}
	if w.svc.required() {
		if err := document.Decide(p, document.NewRecord(id, d.Owner, d.Readers, d.Levels), need); err != nil {
			return nil, err
		}
	}
	return &d, nil
}

// Create makes a signing request on document docID for a caller with own
// on it, pinning the document's current content. Unless in.Draft, it is
// sent in the same transaction.
func (w *Workflow) Create(ctx context.Context, docID string, body api.CreateSigningRequest, m Meta) (*SigningRequest, error) {
	in, err := validateRequest(body, w.now())
	if err != nil {
		return nil, err
	}
	// A draft mails nobody until it is sent: Send charges it then.
	refund := func() {}
	if !in.draft {
		if refund, err = w.limit(ctx, m, len(in.recipients)); err != nil {
			return nil, err
		}
	}
	p := auth.FromContext(ctx)
	id := mustV7()
	err = pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		d, err := w.lockDocument(ctx, tx, docID, auth.LevelOwn)
		if err != nil {
			return err
		}
		if d.SHA256 == nil || d.Key == nil || *d.Key == "" {
			return apperr.E(apperr.Conflict, "document %s has no stored content to sign", docID)
		}
		st, _ := document.ParseStatus(d.Status)
		if !document.CanTransition(st, document.StatusSent) {
			return apperr.E(apperr.Conflict, "document %s is %s: a signing request cannot be sent for it", docID, d.Status)
		}
		createdBy := d.CreatedBy
		if p.Email != "" && p.EmailVerified {
			createdBy = p.Email
		}
		var reminder *time.Duration
		if in.reminder > 0 {
			reminder = &in.reminder
		}
		_, err = tx.Exec(ctx, `INSERT INTO signing.signing_requests
			(id, document_id, owner, created_by, state, message, content_sha256, content_key, document_version, expires_at, reminder_every)
			VALUES ($1, $2, nullif($3, ''), $4, 'draft', $5, $6, $7, $8, $9, $10)`,
			id, docID, p.Key(), createdBy, in.message, *d.SHA256, *d.Key, d.Version, in.expiresAt, reminder)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return apperr.E(apperr.Conflict, "document %s already has an open signing request", docID)
		}
		if err != nil {
			return postgres.Error(err, "create signing request")
		}
		for _, rc := range in.recipients {
			order := rc.Order
			if order == 0 {
				order = 1
			}
			if _, err := tx.Exec(ctx, `INSERT INTO signing.signing_recipients (id, request_id, document_id, email, name, role, signing_order)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, mustV7(), id, docID, strings.TrimSpace(rc.Email), rc.Name, string(rc.Role), order); err != nil {
				return postgres.Error(err, "create signing recipient")
			}
		}
		if err := w.appendAudit(ctx, tx, AuditEntry{DocumentID: docID, Type: "signing_request.created", Actor: actor(ctx), IP: m.IP, UserAgent: m.UserAgent,
			Data: map[string]any{"request_id": id, "content_sha256": *d.SHA256, "recipients": len(in.recipients), "draft": in.draft}}); err != nil {
			return err
		}
		if in.draft {
			return nil
		}
		return w.send(ctx, tx, id, docID, m)
	})
	if err != nil {
		// Nothing committed, nothing will be mailed: the caller's mail
		// quota is not spent on a refused or failed create.
		refund()
		return nil, err
	}
	w.wake()
	return w.get(ctx, id)
}

// Send sends a draft request (POST /signing-requests/{rid}/send).
func (w *Workflow) Send(ctx context.Context, rid string, m Meta) (*SigningRequest, error) {
	refund := func() {}
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		r, err := w.lockRequest(ctx, tx, rid)
		if err != nil {
			return err
		}
		d, err := w.lockDocument(ctx, tx, r.DocumentID, auth.LevelOwn)
		if err != nil {
			return err
		}
		if r.State != api.RequestDraft {
			return apperr.E(apperr.Conflict, "signing request %s is %s, not draft", rid, r.State)
		}
		if d.SHA256 == nil || *d.SHA256 != r.ContentSHA256 {
			return apperr.E(apperr.Conflict, "document %s content changed since the request was drafted", r.DocumentID)
		}
		var err2 error
		if refund, err2 = w.limit(ctx, m, len(r.Recipients)); err2 != nil {
			return err2
		}
		return w.send(ctx, tx, rid, r.DocumentID, m)
	})
	if err != nil {
		refund() // nothing committed: nothing will be mailed
		return nil, err
	}
	w.wake()
	return w.get(ctx, rid)
}

// send moves a draft to sent: implicit shares for the recipients, the
// first group's notifications, the expiry and first reminder, and the
// document to sent.
func (w *Workflow) send(ctx context.Context, tx pgx.Tx, rid, docID string, m Meta) error {
	var expires *time.Time
	var reminder *time.Duration
	if err := tx.QueryRow(ctx, `UPDATE signing.signing_requests SET state = 'sent', sent_at = now(), updated_at = now()
		WHERE id = $1 RETURNING expires_at, reminder_every`, rid).Scan(&expires, &reminder); err != nil {
		return postgres.Error(err, "send signing request")
	}
	if err := w.shareWithRecipients(ctx, tx, rid, docID); err != nil {
		return err
	}
	if err := w.docStatus(ctx, tx, rid, document.StatusSent); err != nil {
		return err
	}
	if expires != nil {
		if err := enqueue(ctx, tx, "expire", rid, "", "", *expires); err != nil {
			return err
		}
	}
	if reminder != nil {
		if err := enqueueAfter(ctx, tx, "remind", rid, "", "1", *reminder); err != nil {
			return err
		}
	}
	if err := w.appendAudit(ctx, tx, AuditEntry{DocumentID: docID, Type: "signing_request.sent", Actor: actor(ctx), IP: m.IP, UserAgent: m.UserAgent,
		Data: map[string]any{"request_id": rid}}); err != nil {
		return err
	}
	_, err := w.advance(ctx, tx, rid)
	return err
}

// shareWithRecipients grants every recipient an implicit share of the
// document by email (sign for signers and approvers, view otherwise), so
// that a recipient who signs in with that verified email finds it in their
// list and search, and rewrites the document's readers in the same
// transaction (as the document service's share does). An existing share is
// left as it is.
func (w *Workflow) shareWithRecipients(ctx context.Context, tx pgx.Tx, rid, docID string) error {
	_, err := tx.Exec(ctx, `INSERT INTO documents.shares (document_id, grantee, level, created_by)
		SELECT $2::uuid, 'email:' || lower(email), CASE WHEN role IN ('signer', 'approver') THEN 'sign' ELSE 'view' END, $3
		FROM signing.signing_recipients WHERE request_id = $1
		ON CONFLICT (document_id, grantee) DO NOTHING`, rid, docID, document.SignatureService)
	if err != nil {
		return postgres.Error(err, "share document with recipients")
	}
	_, err = tx.Exec(ctx, `
WITH n AS (
	SELECT ARRAY(
		SELECT k FROM (
			SELECT owner::text AS k FROM documents.documents WHERE id = $1 AND owner IS NOT NULL
			UNION SELECT grantee::text FROM documents.shares WHERE document_id = $1) u
		ORDER BY k) AS readers)
UPDATE documents.documents d SET readers = n.readers, access_version = d.access_version + 1
FROM n WHERE d.id = $1 AND d.readers IS DISTINCT FROM n.readers`, docID)
	return postgres.Error(err, "update readers of document "+docID)
}

// docStatus asks for the document's next status: a doc_status job, applied
// after every earlier one of the request, and remembered on the request.
func (w *Workflow) docStatus(ctx context.Context, tx pgx.Tx, rid string, st document.Status) error {
	if _, err := tx.Exec(ctx, `UPDATE signing.signing_requests SET doc_status = $2 WHERE id = $1`, rid, string(st)); err != nil {
		return postgres.Error(err, "record document status")
	}
	return enqueue(ctx, tx, "doc_status", rid, "", string(st), time.Time{})
}

// advance notifies the group now waiting (its recipients still pending),
// or completes the request when every blocking recipient is done. It
// returns whether the request completed.
func (w *Workflow) advance(ctx context.Context, tx pgx.Tx, rid string) (bool, error) {
	r, err := w.read(ctx, tx, rid)
	if err != nil {
		return false, err
	}
	order, waiting := activeOrder(r.Recipients)
	if !waiting {
		return true, w.complete(ctx, tx, r)
	}
	for _, rc := range r.Recipients {
		// cc recipients of the groups reached so far hear of the request
		// too; they never block.
		if rc.State != api.RecipientPending || rc.Order > order {
			continue
		}
		if _, err := tx.Exec(ctx, `INSERT INTO signing.due (kind, request_id, recipient_id)
			SELECT 'notify', $1, $2 WHERE NOT EXISTS
				(SELECT 1 FROM signing.due WHERE kind = 'notify' AND recipient_id = $2)`, rid, rc.ID); err != nil {
			return false, postgres.Error(err, "schedule notification")
		}
	}
	return false, nil
}

// complete ends a request whose every blocking recipient is done: the
// document reads signed, and the certificate job issues the certificate
// (then the document reads completed and the owner and cc are mailed).
func (w *Workflow) complete(ctx context.Context, tx pgx.Tx, r *SigningRequest) error {
	if _, err := tx.Exec(ctx, `UPDATE signing.signing_requests SET state = 'completed', completed_at = now(), updated_at = now(),
		outcome = 'completed' WHERE id = $1`, r.ID); err != nil {
		return postgres.Error(err, "complete signing request")
	}
	if err := w.dropSchedule(ctx, tx, r.ID); err != nil {
		return err
	}
	if err := w.docStatus(ctx, tx, r.ID, document.StatusSigned); err != nil {
		return err
	}
	if err := enqueue(ctx, tx, "certificate", r.ID, "", "", time.Time{}); err != nil {
		return err
	}
	return w.appendAudit(ctx, tx, AuditEntry{DocumentID: r.DocumentID, Type: "signing_request.completed", Actor: "service:signature",
		Data: map[string]any{"request_id": r.ID, "content_sha256": r.ContentSHA256}})
}

// dropSchedule removes the jobs an ended request no longer needs
// (notifications, reminders, expiry); its doc_status, certificate and
// completion mail stay. A job a scheduler is running is skipped, not
// waited for: the job holds its due row and waits for the request row the
// caller holds, so waiting would deadlock (a cancel right after a create,
// while the first invitation was being mailed, answered 503). Once the
// caller commits, that job finds the request ended, does nothing and
// deletes its own row.
func (w *Workflow) dropSchedule(ctx context.Context, tx pgx.Tx, rid string) error {
	_, err := tx.Exec(ctx, `DELETE FROM signing.due WHERE id IN (SELECT id FROM signing.due
		WHERE request_id = $1 AND kind IN ('notify', 'remind', 'expire') FOR UPDATE SKIP LOCKED)`, rid)
	return postgres.Error(err, "drop schedule")
}

// Cancel ends an open request (owner only): the document keeps its status,
// the request carries the outcome.
func (w *Workflow) Cancel(ctx context.Context, rid string, m Meta) (*SigningRequest, error) {
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		r, err := w.lockRequest(ctx, tx, rid)
		if err != nil {
			return err
		}
		if _, err := w.lockDocument(ctx, tx, r.DocumentID, auth.LevelOwn); err != nil {
			return err
		}
		if !r.State.Open() {
			return apperr.E(apperr.Conflict, "signing request %s is %s", rid, r.State)
		}
		if _, err := tx.Exec(ctx, `UPDATE signing.signing_requests SET state = 'cancelled', outcome = $2, updated_at = now() WHERE id = $1`,
			rid, "cancelled by "+actor(ctx)); err != nil {
			return postgres.Error(err, "cancel signing request")
		}
		if err := w.dropSchedule(ctx, tx, rid); err != nil {
			return err
		}
		return w.appendAudit(ctx, tx, AuditEntry{DocumentID: r.DocumentID, Type: "signing_request.cancelled", Actor: actor(ctx), IP: m.IP, UserAgent: m.UserAgent,
			Data: map[string]any{"request_id": rid}})
	})
	if err != nil {
		return nil, err
	}
	return w.get(ctx, rid)
}

// Resend mails a fresh invitation to every recipient of the waiting group
// who has not acted yet (owner only; rate-limited).
func (w *Workflow) Resend(ctx context.Context, rid string, m Meta) (*SigningRequest, error) {
	refund := func() {}
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		r, err := w.lockRequest(ctx, tx, rid)
		if err != nil {
			return err
		}
		if _, err := w.lockDocument(ctx, tx, r.DocumentID, auth.LevelOwn); err != nil {
			return err
		}
		if r.State != api.RequestSent && r.State != api.RequestInProgress {
			return apperr.E(apperr.Conflict, "signing request %s is %s", rid, r.State)
		}
		order, _ := activeOrder(r.Recipients)
		n := 0
		for _, rc := range r.Recipients {
			if rc.Order == order && blocks(rc.Role) && !done(rc.Role, rc.State) && !acted(rc.State) {
				n++
				if err := enqueue(ctx, tx, "notify", rid, rc.ID, "resend", time.Time{}); err != nil {
					return err
				}
			}
		}
		var err2 error
		if refund, err2 = w.limit(ctx, m, n); err2 != nil {
			return err2
		}
		return w.appendAudit(ctx, tx, AuditEntry{DocumentID: r.DocumentID, Type: "signing_request.resent", Actor: actor(ctx), IP: m.IP, UserAgent: m.UserAgent,
			Data: map[string]any{"request_id": rid, "recipients": n}})
	})
	if err != nil {
		refund() // nothing committed: nothing will be mailed
		return nil, err
	}
	w.wake()
	return w.get(ctx, rid)
}

// Get returns a request to a caller who may view its document, or to one
// of its recipients (by verified email); anyone else reads NotFound.
func (w *Workflow) Get(ctx context.Context, rid string) (*SigningRequest, error) {
	r, err := w.get(ctx, rid)
	if err != nil {
		return nil, err
	}
	if err := w.mayRead(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

func (w *Workflow) mayRead(ctx context.Context, r *SigningRequest) error {
	if !w.svc.required() {
		return nil
	}
	p := auth.FromContext(ctx)
	if p.Admin && p.Kind != auth.KindService {
		return nil
	}
	if !p.HasScope(auth.ScopeRead) {
		return apperr.E(apperr.Forbidden, "this API key lacks the read scope")
	}
	if p.EmailVerified {
		for _, rc := range r.Recipients {
			if strings.EqualFold(rc.Email, p.Email) {
				return nil
			}
		}
	}
	ok, err := w.svc.store.Visible(ctx, r.DocumentID, p.ReaderKeys())
	if err != nil {
		return err
	}
	if !ok {
		return apperr.E(apperr.NotFound, "signing request %s not found", r.ID)
	}
	return nil
}

// ListByDocument returns a document's requests, newest first, to a caller
// who may view the document.
func (w *Workflow) ListByDocument(ctx context.Context, docID string) ([]*SigningRequest, error) {
	keys, err := w.svc.readers(ctx)
	if err != nil {
		return nil, err
	}
	if keys != nil {
		ok, err := w.svc.store.Visible(ctx, docID, *keys)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, apperr.E(apperr.NotFound, "document %s not found", docID)
		}
	}
	rows, err := w.pool.Query(ctx, `SELECT id::text FROM signing.signing_requests WHERE document_id = $1 ORDER BY created_at DESC, id DESC`, docID)
	if err != nil {
		return nil, postgres.Error(err, "list signing requests")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, postgres.Error(err, "list signing requests")
	}
	out := make([]*SigningRequest, 0, len(ids))
	for _, id := range ids {
		r, err := w.get(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (w *Workflow) get(ctx context.Context, rid string) (*SigningRequest, error) {
	return w.read(ctx, w.pool, rid)
}

const requestColumns = `id::text, document_id::text, owner, created_by, state, message, content_sha256, document_version,
	expires_at, CASE WHEN reminder_every IS NULL THEN NULL ELSE extract(epoch FROM reminder_every)::float8 END,
	outcome, certificate_sha256, created_at, updated_at, sent_at, completed_at`

// read returns a request with its recipients in order.
func (w *Workflow) read(ctx context.Context, q querier, rid string) (*SigningRequest, error) {
	return readRequest(ctx, q, `SELECT `+requestColumns+` FROM signing.signing_requests WHERE id = $1::uuid`, rid)
}

// lockRequest reads a request with its row locked: every transition of a
// request (and of its recipients) holds this lock, so parallel recipients
// are serialised and never see each other half done. NO KEY UPDATE: rows
// that only reference the request (an invitation committed on its own
// while a job holds the lock) are not blocked by it.
//
// It then takes a key-share lock on the document row, so that every
// workflow transaction holds the document row before the document's audit
// head (audit.Append), in the order the document service's own writes
// take them: the two never deadlock.
func (w *Workflow) lockRequest(ctx context.Context, tx pgx.Tx, rid string) (*SigningRequest, error) {
	r, err := readRequest(ctx, tx, `SELECT `+requestColumns+` FROM signing.signing_requests WHERE id = $1::uuid FOR NO KEY UPDATE`, rid)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM documents.documents WHERE id = $1 FOR KEY SHARE`, r.DocumentID); err != nil {
		return nil, postgres.Error(err, "document "+r.DocumentID)
	}
	return r, nil
}

func readRequest(ctx context.Context, q querier, sql, rid string) (*SigningRequest, error) {
	var r SigningRequest
	var reminder *float64
	err := q.QueryRow(ctx, sql, rid).Scan(&r.ID, &r.DocumentID, &r.Owner, &r.CreatedBy, &r.State, &r.Message, &r.ContentSHA256,
		&r.DocumentVersion, &r.ExpiresAt, &reminder, &r.Outcome, &r.CertificateSHA256, &r.CreatedAt, &r.UpdatedAt, &r.SentAt, &r.CompletedAt)
	if err != nil {
		return nil, postgres.Error(err, "signing request "+rid)
	}
	if reminder != nil {
		s := (time.Duration(*reminder * float64(time.Second))).String()
		r.ReminderInterval = &s
	}
	rows, err := q.Query(ctx, `SELECT id::text, email, name, role, signing_order, state, notified_at, viewed_at, acted_at,
		ip_address, user_agent, consent_at, signature_id::text, decline_reason
		FROM signing.signing_recipients WHERE request_id = $1 ORDER BY signing_order, id`, rid)
	if err != nil {
		return nil, postgres.Error(err, "signing recipients")
	}
	r.Recipients, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (api.Recipient, error) {
		var rc api.Recipient
		err := row.Scan(&rc.ID, &rc.Email, &rc.Name, &rc.Role, &rc.Order, &rc.State, &rc.NotifiedAt, &rc.ViewedAt, &rc.ActedAt,
			&rc.IPAddress, &rc.UserAgent, &rc.ConsentAt, &rc.SignatureID, &rc.DeclineReason)
		return rc, err
	})
	if err != nil {
		return nil, postgres.Error(err, "signing recipients")
	}
	return &r, nil
}

// newToken returns a fresh invitation token (256 random bits, base64url)
// and the SHA-256 that is all the database keeps of it.
func newToken() (string, []byte) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, hashToken(tok)
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// link is the public URL of an invitation: the web application's
// recipient page, which calls GET/POST /invitations/{token} for the
// recipient (the same constant routes the page, so the two cannot
// drift). A path segment after "invitations" is logged as REDACTED
// (httpx.LogPath) on the page's path as on the API's.
func (w *Workflow) link(tok string) string { return w.publicURL + webapp.InvitationPage + tok }

// invitation is a token resolved to its request and recipient, with the
// request row locked.
type invitation struct {
	req *SigningRequest
	rc  *api.Recipient
	doc lockedDoc
}

// resolve checks a token and locks its request: unknown, malformed or
// forged tokens are NotFound (the same answer, so a token cannot be
// probed); an invitation whose pinned hash differs from the request's, or
// that expired, is refused.
func (w *Workflow) resolve(ctx context.Context, tx pgx.Tx, tok string) (*invitation, error) {
	notFound := apperr.E(apperr.NotFound, "invitation not found")
	if len(tok) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return nil, notFound
	}
	var rid, recID, pinned string
	var expires *time.Time
	err := tx.QueryRow(ctx, `SELECT request_id::text, recipient_id::text, content_sha256, expires_at
		FROM signing.invitations WHERE token_sha256 = $1`, hashToken(tok)).Scan(&rid, &recID, &pinned, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound
	}
	if err != nil {
		return nil, postgres.Error(err, "invitation")
	}
	r, err := w.lockRequest(ctx, tx, rid)
	if err != nil {
		return nil, err
	}
	if pinned != r.ContentSHA256 {
		return nil, notFound
	}
	if expires != nil && !w.now().Before(*expires) || r.State == api.RequestExpired {
		return nil, apperr.E(apperr.Conflict, "this invitation has expired")
	}
	inv := &invitation{req: r}
	for i := range r.Recipients {
		if r.Recipients[i].ID == recID {
			inv.rc = &r.Recipients[i]
		}
	}
	if inv.rc == nil {
		return nil, notFound
	}
	return inv, nil
}

// resolvePrincipal finds the recipient a signed-in caller is on request
// rid, by verified email, and locks the request.
func (w *Workflow) resolvePrincipal(ctx context.Context, tx pgx.Tx, rid string) (*invitation, error) {
	p := auth.FromContext(ctx)
	r, err := w.lockRequest(ctx, tx, rid)
	if err != nil {
		return nil, err
	}
	if p.Email == "" || !p.EmailVerified {
		return nil, apperr.E(apperr.Forbidden, "acting on a signing request needs a credential with a verified email, or the invitation link")
	}
	if !p.HasScope(auth.ScopeSign) {
		return nil, apperr.E(apperr.Forbidden, "this API key lacks the sign scope")
	}
	for i := range r.Recipients {
		if strings.EqualFold(r.Recipients[i].Email, p.Email) {
			return &invitation{req: r, rc: &r.Recipients[i]}, nil
		}
	}
	return nil, apperr.E(apperr.NotFound, "signing request %s not found", rid)
}

// View records that the invitation's recipient opened it and returns what
// the invitation shows. Viewing works until the recipient acts or the
// invitation expires.
func (w *Workflow) View(ctx context.Context, tok string, m Meta) (*Invitation, error) {
	return w.view(ctx, m, func(tx pgx.Tx) (*invitation, error) { return w.resolve(ctx, tx, tok) })
}

// ViewAsPrincipal is View for a signed-in recipient.
func (w *Workflow) ViewAsPrincipal(ctx context.Context, rid string, m Meta) (*Invitation, error) {
	return w.view(ctx, m, func(tx pgx.Tx) (*invitation, error) { return w.resolvePrincipal(ctx, tx, rid) })
}

// view records the invitation resolve finds as viewed and describes it,
// in one transaction; the two ways in differ only in how they resolve.
func (w *Workflow) view(ctx context.Context, m Meta, resolve func(pgx.Tx) (*invitation, error)) (*Invitation, error) {
	var out *Invitation
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		inv, err := resolve(tx)
		if err != nil {
			return err
		}
		if err := w.viewed(ctx, tx, inv, m); err != nil {
			return err
		}
		out, err = w.describe(ctx, tx, inv)
		return err
	})
	if err != nil {
		return nil, err
	}
	w.wake()
	return out, nil
}

// viewed refuses a recipient who already acted or a request that ended,
// and on the first view records it (time, IP, user agent), audits it,
// moves the document to viewed if it is the request's first, and counts a
// viewer as done.
func (w *Workflow) viewed(ctx context.Context, tx pgx.Tx, inv *invitation, m Meta) error {
	rc, r := inv.rc, inv.req
	if acted(rc.State) {
		return apperr.E(apperr.Conflict, "this invitation was used: you already %s", rc.State)
	}
	if !r.State.Open() || r.State == api.RequestDraft {
		return apperr.E(apperr.Conflict, "signing request %s is %s", r.ID, r.State)
	}
	if rc.State == api.RecipientViewed {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE signing.signing_recipients SET state = 'viewed', viewed_at = now(),
		ip_address = $2, user_agent = $3 WHERE id = $1`, rc.ID, nullIfEmpty(m.IP), nullIfEmpty(m.UserAgent)); err != nil {
		return postgres.Error(err, "record view")
	}
	rc.State = api.RecipientViewed
	if err := w.appendAudit(ctx, tx, AuditEntry{DocumentID: r.DocumentID, Type: "invitation.viewed", Actor: "email:" + strings.ToLower(rc.Email),
		IP: m.IP, UserAgent: m.UserAgent, Data: map[string]any{"request_id": r.ID, "recipient_id": rc.ID, "content_sha256": r.ContentSHA256}}); err != nil {
		return err
	}
	if err := w.progress(ctx, tx, r, document.StatusViewed); err != nil {
		return err
	}
	if rc.Role == api.RoleViewer {
		_, err := w.advance(ctx, tx, r.ID)
		return err
	}
	return nil
}

// progress moves a sent request to in_progress and the document forward
// to st (viewed on a first view, pending on a first action), never back.
func (w *Workflow) progress(ctx context.Context, tx pgx.Tx, r *SigningRequest, st document.Status) error {
	if r.State == api.RequestSent {
		if _, err := tx.Exec(ctx, `UPDATE signing.signing_requests SET state = 'in_progress', updated_at = now() WHERE id = $1`, r.ID); err != nil {
			return postgres.Error(err, "start signing request")
		}
		r.State = api.RequestInProgress
	}
	var cur string
	if err := tx.QueryRow(ctx, `SELECT coalesce(doc_status, '') FROM signing.signing_requests WHERE id = $1`, r.ID).Scan(&cur); err != nil {
		return postgres.Error(err, "document status")
	}
	rank := map[string]int{"": 0, "sent": 1, "viewed": 2, "pending": 3, "signed": 4, "completed": 5}
	if rank[string(st)] > rank[cur] {
		return w.docStatus(ctx, tx, r.ID, st)
	}
	return nil
}

func (w *Workflow) describe(ctx context.Context, tx pgx.Tx, inv *invitation) (*Invitation, error) {
	r := inv.req
	out := &Invitation{RequestID: r.ID, DocumentID: r.DocumentID, ContentSHA256: r.ContentSHA256, Message: r.Message,
		From: r.CreatedBy, Recipient: *inv.rc, RequestState: r.State, ExpiresAt: r.ExpiresAt, State: inv.rc.State}
	if err := tx.QueryRow(ctx, `SELECT title, coalesce(content_type, '') FROM documents.documents WHERE id = $1`, r.DocumentID).
		Scan(&out.DocumentTitle, &out.ContentType); err != nil {
		return nil, postgres.Error(err, "document "+r.DocumentID)
	}
	order, waiting := activeOrder(r.Recipients)
	out.CanAct = waiting && inv.rc.Order == order && (inv.rc.Role == api.RoleSigner || inv.rc.Role == api.RoleApprover) && !acted(inv.rc.State)
	return out, nil
}

// Content opens the pinned content an invitation shows (counted as a view).
func (w *Workflow) Content(ctx context.Context, tok string, m Meta) (*gcblob.Reader, string, error) {
	var key string
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		inv, err := w.resolve(ctx, tx, tok)
		if err != nil {
			return err
		}
		if err := w.viewed(ctx, tx, inv, m); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT content_key FROM signing.signing_requests WHERE id = $1`, inv.req.ID).Scan(&key)
	})
	if err != nil {
		return nil, "", err
	}
	w.wake()
	rd, err := w.content.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, "", apperr.Wrap(apperr.NotFound, err, "pinned content not found")
		}
		return nil, "", apperr.Wrap(apperr.Unavailable, err, "object storage unavailable")
	}
	return rd, rd.ContentType(), nil
}

// Act signs, approves or declines through an invitation token.
func (w *Workflow) Act(ctx context.Context, tok string, a Action, body api.InvitationAction, m Meta) (*Invitation, error) {
	return w.act(ctx, a, body, m, func(tx pgx.Tx) (*invitation, error) { return w.resolve(ctx, tx, tok) })
}

// ActAsPrincipal is Act for a signed-in recipient of request rid.
func (w *Workflow) ActAsPrincipal(ctx context.Context, rid string, a Action, body api.InvitationAction, m Meta) (*Invitation, error) {
	return w.act(ctx, a, body, m, func(tx pgx.Tx) (*invitation, error) { return w.resolvePrincipal(ctx, tx, rid) })
}

func (w *Workflow) act(ctx context.Context, a Action, body api.InvitationAction, m Meta, resolve func(pgx.Tx) (*invitation, error)) (*Invitation, error) {
	if err := validateAction(a, body); err != nil {
		return nil, err
	}
	// The signature image is stored before the transaction (as POST
	// /signatures does): a row never points at a missing object, and an
	// object whose transaction failed is deleted.
	var sigID, sigKey, sigCT string
	var sigSize int64
	if a == ActionSign && body.SignatureData != "" {
		sigID = mustV7()
		obj := decodeSignatureData(body.SignatureData)
		sigKey, sigCT, sigSize = sigID, obj.contentType, int64(len(obj.body))
		if err := w.svc.blobs.WriteAll(ctx, sigKey, obj.body, &gcblob.WriterOptions{ContentType: obj.contentType}); err != nil {
			return nil, apperr.Wrap(apperr.Unavailable, err, "object storage unavailable: could not store signature_data")
		}
	}
	var out *Invitation
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		inv, err := resolve(tx)
		if err != nil {
			return err
		}
		r, rc := inv.req, inv.rc
		if acted(rc.State) {
			return apperr.E(apperr.Conflict, "this invitation was used: you already %s", rc.State)
		}
		if !r.State.Open() || r.State == api.RequestDraft {
			return apperr.E(apperr.Conflict, "signing request %s is %s", r.ID, r.State)
		}
		switch {
		case a == ActionSign && rc.Role != api.RoleSigner, a == ActionApprove && rc.Role != api.RoleApprover,
			a == ActionDecline && rc.Role != api.RoleSigner && rc.Role != api.RoleApprover:
			return apperr.E(apperr.Conflict, "a %s cannot %s", rc.Role, a)
		}
		if order, _ := activeOrder(r.Recipients); rc.Order > order {
			return apperr.E(apperr.Conflict, "not your turn: recipients of order %d must finish first", order)
		}
		if rc.State != api.RecipientViewed {
			// Acting implies having seen the invitation.
			if err := w.viewed(ctx, tx, inv, m); err != nil {
				return err
			}
		}
		audit := AuditEntry{DocumentID: r.DocumentID, Actor: "email:" + strings.ToLower(rc.Email), IP: m.IP, UserAgent: m.UserAgent,
			Data: map[string]any{"request_id": r.ID, "recipient_id": rc.ID, "content_sha256": r.ContentSHA256}}
		switch a {
		case ActionDecline:
			audit.Type = "recipient.declined"
			if _, err := tx.Exec(ctx, `UPDATE signing.signing_recipients SET state = 'declined', acted_at = now(),
				ip_address = $2, user_agent = $3, decline_reason = nullif($4, '') WHERE id = $1`,
				rc.ID, nullIfEmpty(m.IP), nullIfEmpty(m.UserAgent), body.Reason); err != nil {
				return postgres.Error(err, "decline")
			}
			if _, err := tx.Exec(ctx, `UPDATE signing.signing_requests SET state = 'declined', updated_at = now(), outcome = $2 WHERE id = $1`,
				r.ID, "declined by "+rc.Email); err != nil {
				return postgres.Error(err, "decline request")
			}
			if err := w.dropSchedule(ctx, tx, r.ID); err != nil {
				return err
			}
			if err := enqueue(ctx, tx, "completed_mail", r.ID, "", "declined", time.Time{}); err != nil {
				return err
			}
		case ActionApprove:
			audit.Type = "recipient.approved"
			if _, err := tx.Exec(ctx, `UPDATE signing.signing_recipients SET state = 'approved', acted_at = now(),
				ip_address = $2, user_agent = $3, consent_at = now() WHERE id = $1`, rc.ID, nullIfEmpty(m.IP), nullIfEmpty(m.UserAgent)); err != nil {
				return postgres.Error(err, "approve")
			}
		case ActionSign:
			audit.Type = "recipient.signed"
			if sigID == "" {
				sigID = mustV7()
			}
			name := body.Name
			if name == "" {
				name = rc.Name
			}
			if name == "" {
				name = rc.Email
			}
			var data *string
			if body.SignatureData != "" {
				data = &body.SignatureData
				sum := sha256.Sum256([]byte(body.SignatureData))
				audit.Data["signature_data_sha256"] = hex.EncodeToString(sum[:])
			}
			// A signature row like POST /signatures writes, bound to the
			// pinned hash, but without its own status update: the
			// request drives the document's status.
			if _, err := tx.Exec(ctx, `INSERT INTO signatures.signatures (id, document_id, signer_email, signer_name, signed_at,
				signature_data, ip_address, document_version, content_sha256, signature_key, signature_content_type, signature_size)
				VALUES ($1, $2, $3, $4, now(), $5, $6, $7, $8, nullif($9, ''), nullif($10, ''), nullif($11, 0))`,
				sigID, r.DocumentID, rc.Email, name, data, nullIfEmpty(m.IP), r.DocumentVersion, r.ContentSHA256, sigKey, sigCT, sigSize); err != nil {
				return postgres.Error(err, "record signature")
			}
			if _, err := tx.Exec(ctx, `UPDATE signing.signing_recipients SET state = 'signed', acted_at = now(),
				ip_address = $2, user_agent = $3, consent_at = now(), signature_id = $4 WHERE id = $1`,
				rc.ID, nullIfEmpty(m.IP), nullIfEmpty(m.UserAgent), sigID); err != nil {
				return postgres.Error(err, "sign")
			}
			audit.Data["signature_id"] = sigID
		}
		if a != ActionDecline {
			audit.Data["consent"] = true
		}
		if _, err := tx.Exec(ctx, `UPDATE signing.invitations SET used_at = now() WHERE recipient_id = $1 AND used_at IS NULL`, rc.ID); err != nil {
			return postgres.Error(err, "consume invitation")
		}
		if err := w.appendAudit(ctx, tx, audit); err != nil {
			return err
		}
		if a != ActionDecline {
			if err := w.progress(ctx, tx, r, document.StatusPending); err != nil {
				return err
			}
			if _, err := w.advance(ctx, tx, r.ID); err != nil {
				return err
			}
		}
		fresh, err := w.read(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		for i := range fresh.Recipients {
			if fresh.Recipients[i].ID == rc.ID {
				out, err = w.describe(ctx, tx, &invitation{req: fresh, rc: &fresh.Recipients[i]})
				return err
			}
		}
		return nil
	})
	if err != nil {
		if sigKey != "" {
			if derr := w.svc.blobs.Delete(context.WithoutCancel(ctx), sigKey); derr != nil {
				w.log.WarnContext(ctx, "delete orphaned signature object", "key", sigKey, "err", derr)
			}
		}
		return nil, err
	}
	w.wake()
	return out, nil
}

func validateAction(a Action, b api.InvitationAction) error {
	var errs []apperr.FieldError
	if a != ActionDecline && !b.Consent {
		errs = append(errs, apperr.FieldError{Field: "consent", Message: "must be true: you agree to sign electronically"})
	}
	if len(b.SignatureData) > MaxSignatureData || !validText(b.SignatureData) {
		errs = append(errs, apperr.FieldError{Field: "signature_data", Message: fmt.Sprintf("must be text of at most %d bytes", MaxSignatureData)})
	}
	if len(b.Name) > MaxName || !validText(b.Name) {
		errs = append(errs, apperr.FieldError{Field: "name", Message: fmt.Sprintf("must be valid text of at most %d characters", MaxName)})
	}
	if len(b.Reason) > MaxMessage || !validText(b.Reason) {
		errs = append(errs, apperr.FieldError{Field: "reason", Message: fmt.Sprintf("must be valid text of at most %d characters", MaxMessage)})
	}
	return apperr.Fields(errs...)
}

// Certificate opens a completed request's certificate of completion.
func (w *Workflow) Certificate(ctx context.Context, rid string) (io.ReadCloser, error) {
	r, err := w.Get(ctx, rid)
	if err != nil {
		return nil, err
	}
	var key *string
	if err := w.pool.QueryRow(ctx, `SELECT certificate_key FROM signing.signing_requests WHERE id = $1`, rid).Scan(&key); err != nil {
		return nil, postgres.Error(err, "signing request "+rid)
	}
	if key == nil {
		return nil, apperr.E(apperr.NotFound, "signing request %s has no certificate (it is %s)", rid, r.State)
	}
	rd, err := w.content.NewReader(ctx, *key, nil)
	if err != nil {
		return nil, apperr.Wrap(apperr.Unavailable, err, "object storage unavailable")
	}
	return rd, nil
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func mustV7() string {
	id, err := uuid.NewV7()
	if err != nil {
		panic(err)
	}
	return id.String()
}

// limit charges n mails to the caller (principal key, else client
// address), refusing with 429 past the rate (see mailLimiter).
func (w *Workflow) limit(ctx context.Context, m Meta, n int) (refund func(), err error) {
	key := auth.FromContext(ctx).Key()
	if key == "" {
		key = "ip:" + m.IP
	}
	return w.limiter.charge(ctx, key, n)
}

// readAll reads an object of the documents bucket whole (a mail attachment).
func (w *Workflow) readAll(ctx context.Context, key string) ([]byte, string, error) {
	rd, err := w.content.NewReader(ctx, key, nil)
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", key, err)
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	return b, rd.ContentType(), err
}
