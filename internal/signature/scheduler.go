package signature

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-retry"
	"google.golang.org/grpc/status"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/proto/documentpb"
)

var (
	jobsRun = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_signing_jobs_total",
		Help: "Signing scheduler jobs run, by kind (notify, remind, expire, certificate, doc_status, completed_mail) and result (done, retry, dropped).",
	}, []string{"kind", "result"})
	jobsDue = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "docstream_signing_jobs_due",
		Help: "Signing scheduler jobs due now and not yet run, as last counted by a scheduler poll (its queue).",
	})
)

func enqueue(ctx context.Context, tx pgx.Tx, kind, rid, recipient, payload string, at time.Time) error {
	var when any = at
	if at.IsZero() {
		when = nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO signing.due (kind, request_id, recipient_id, payload, due_at)
		VALUES ($1, $2, nullif($3, '')::uuid, $4, coalesce($5, now()))`, kind, rid, recipient, payload, when)
	return postgres.Error(err, "schedule "+kind)
}

func enqueueAfter(ctx context.Context, tx pgx.Tx, kind, rid, recipient, payload string, d time.Duration) error {
	_, err := tx.Exec(ctx, `INSERT INTO signing.due (kind, request_id, recipient_id, payload, due_at)
		VALUES ($1, $2, nullif($3, '')::uuid, $4, now() + make_interval(secs => $5::float8))`, kind, rid, recipient, payload, d.Seconds())
	return postgres.Error(err, "schedule "+kind)
}

// jobTimeout bounds one job (its mail, its gRPC call, its commit).
const jobTimeout = 2 * time.Minute

// job is one claimed row of signing.due.
type job struct {
	ID          int64
	Kind        string
	RequestID   string
	RecipientID *string
	Payload     string
	DueAt       time.Time
	Attempts    int
}

// SchedulerOptions tune the Scheduler.
type SchedulerOptions struct {
	// Interval between polls when nothing was due.
	Interval time.Duration
	// MaxBackoff caps the delay before a failed job is tried again.
	MaxBackoff time.Duration
}

// Scheduler runs the due jobs of signing.due: each is claimed with FOR
// UPDATE SKIP LOCKED in a transaction that does the job (state change,
// mail, status call) and deletes the row, so across any number of
// instances and restarts a job runs once — a mail is sent again only if
// the process dies between sending it and committing, the unavoidable
// window of any mail outbox.
type Scheduler struct {
	w    *Workflow
	opts SchedulerOptions
}

// NewScheduler returns the scheduler of w's jobs.
func NewScheduler(w *Workflow, opts SchedulerOptions) *Scheduler {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	return &Scheduler{w: w, opts: opts}
}

// Run polls until ctx is done; a commit that made a job due wakes it.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.w.kick:
		}
		for ctx.Err() == nil {
			ran, err := s.RunOne(ctx)
			if err != nil && ctx.Err() == nil {
				s.w.log.WarnContext(ctx, "signing scheduler", "err", err)
			}
			if !ran || err != nil {
				break
			}
		}
		var n int64
		if err := s.w.pool.QueryRow(ctx, `SELECT count(*) FROM signing.due WHERE due_at <= now()`).Scan(&n); err == nil {
			jobsDue.Set(float64(n))
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(s.opts.Interval)
	}
}

// RunOne claims and runs one due job, reporting whether there was one.
func (s *Scheduler) RunOne(ctx context.Context) (bool, error) {
	tx, err := s.w.pool.Begin(ctx)
	if err != nil {
		return false, postgres.Error(err, "begin job")
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after commit: a no-op
	var j job
	// doc_status jobs of a request wait for its earlier ones, so the
	// document walks sent → viewed → pending → signed → completed in order.
	err = tx.QueryRow(ctx, `SELECT id, kind, request_id::text, recipient_id::text, payload, due_at, attempts FROM signing.due d
		WHERE due_at <= now() AND (kind <> 'doc_status' OR NOT EXISTS (
			SELECT 1 FROM signing.due e WHERE e.kind = 'doc_status' AND e.request_id = d.request_id AND e.id < d.id))
		ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`).
		Scan(&j.ID, &j.Kind, &j.RequestID, &j.RecipientID, &j.Payload, &j.DueAt, &j.Attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, postgres.Error(err, "claim job")
	}
	// A claimed job runs to its commit even when shutdown begins: a job
	// cut off between its mail and its commit would be run (and mailed)
	// again by another instance. It is bounded instead.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jobTimeout)
	defer cancel()
	// The job runs in a savepoint: a failure rolls back what it did and
	// leaves the row, rescheduled, in the same transaction that held it.
	sp, err := tx.Begin(ctx)
	if err != nil {
		return true, postgres.Error(err, "savepoint")
	}
	runErr := s.run(ctx, sp, j)
	var drop *dropJob
	switch {
	case runErr == nil:
		if err := sp.Commit(ctx); err != nil {
			return true, postgres.Error(err, "release savepoint")
		}
		if _, err := tx.Exec(ctx, `DELETE FROM signing.due WHERE id = $1`, j.ID); err != nil {
			return true, postgres.Error(err, "finish job")
		}
		jobsRun.WithLabelValues(j.Kind, "done").Inc()
	case errors.As(runErr, &drop):
		_ = sp.Rollback(ctx)
		s.w.log.ErrorContext(ctx, "signing job dropped", "kind", j.Kind, "request_id", j.RequestID, "err", runErr)
		if _, err := tx.Exec(ctx, `DELETE FROM signing.due WHERE id = $1`, j.ID); err != nil {
			return true, postgres.Error(err, "drop job")
		}
		jobsRun.WithLabelValues(j.Kind, "dropped").Inc()
	default:
		_ = sp.Rollback(ctx)
		delay := s.backoff(j.Attempts + 1)
		s.w.log.WarnContext(ctx, "signing job failed; retrying", "kind", j.Kind, "request_id", j.RequestID, "attempts", j.Attempts+1, "retry_in", delay, "err", runErr)
		if _, err := tx.Exec(ctx, `UPDATE signing.due SET attempts = attempts + 1, last_error = $2,
			due_at = now() + make_interval(secs => $3::float8) WHERE id = $1`, j.ID, runErr.Error(), delay.Seconds()); err != nil {
			return true, postgres.Error(err, "reschedule job")
		}
		jobsRun.WithLabelValues(j.Kind, "retry").Inc()
	}
	if err := tx.Commit(ctx); err != nil {
		return true, postgres.Error(err, "commit job")
	}
	if runErr != nil && drop == nil {
		return true, runErr
	}
	return true, nil
}

func (s *Scheduler) backoff(attempts int) time.Duration {
	d := s.opts.Interval
	for i := 1; i < attempts && d < s.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, s.opts.MaxBackoff)
}

// dropJob is a job that can never succeed (its request is gone, the
// document service refused the status for good): logged and removed.
type dropJob struct{ err error }

func (d *dropJob) Error() string { return d.err.Error() }

func (s *Scheduler) run(ctx context.Context, tx pgx.Tx, j job) error {
	w := s.w
	switch j.Kind {
	case "doc_status":
		return w.applyStatus(ctx, j)
	case "notify":
		return w.notify(ctx, tx, j)
	case "remind":
		return w.remind(ctx, tx, j)
	case "expire":
		return w.expire(ctx, tx, j)
	case "certificate":
		return w.issueCertificate(ctx, tx, j)
	case "completed_mail":
		return w.mailOutcome(ctx, tx, j)
	}
	return &dropJob{fmt.Errorf("unknown job kind %q", j.Kind)}
}

// applyStatus sets the document's status over gRPC as service "signature".
func (w *Workflow) applyStatus(ctx context.Context, j job) error {
	var docID string
	if err := w.pool.QueryRow(ctx, `SELECT document_id::text FROM signing.signing_requests WHERE id = $1`, j.RequestID).Scan(&docID); err != nil {
		return postgres.Error(err, "signing request")
	}
	err := retry.Do(ctx, w.svc.backoff(), func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, w.svc.opts.CallTimeout)
		defer cancel()
		_, err := w.svc.docs.UpdateDocumentStatus(w.svc.asService(cctx), &documentpb.UpdateDocumentStatusRequest{DocumentId: docID, Status: j.Payload})
		if transient(err) {
			return retry.RetryableError(err)
		}
		return err
	})
	switch {
	case err == nil:
		return nil
	case transient(err) || errors.Is(err, context.DeadlineExceeded):
		return err
	default:
		return &dropJob{fmt.Errorf("document service refused status %s for document %s: %s", j.Payload, docID, status.Convert(err).Message())}
	}
}

// notify mails a recipient a fresh invitation (payload "resend": also one
// already notified), recording the recipient notified.
func (w *Workflow) notify(ctx context.Context, tx pgx.Tx, j job) error {
	r, err := w.lockRequest(ctx, tx, j.RequestID)
	if err != nil {
		return err
	}
	if r.State != api.RequestSent && r.State != api.RequestInProgress || j.RecipientID == nil {
		return nil // ended meanwhile: nothing to send
	}
	var rc *api.Recipient
	for i := range r.Recipients {
		if r.Recipients[i].ID == *j.RecipientID {
			rc = &r.Recipients[i]
		}
	}
	if rc == nil || acted(rc.State) || rc.State != api.RecipientPending && j.Payload != "resend" {
		return nil
	}
	tok, err := w.invite(ctx, tx, r, rc)
	if err != nil {
		return err
	}
	if rc.State == api.RecipientPending {
		if _, err := tx.Exec(ctx, `UPDATE signing.signing_recipients SET state = 'notified', notified_at = now() WHERE id = $1`, rc.ID); err != nil {
			return postgres.Error(err, "record notification")
		}
	}
	if err := w.appendAudit(ctx, tx, AuditEntry{DocumentID: r.DocumentID, Type: "invitation.sent", Actor: "service:signature",
		Data: map[string]any{"request_id": r.ID, "recipient_id": rc.ID, "email": rc.Email, "role": string(rc.Role)}}); err != nil {
		return err
	}
	title := w.title(ctx, tx, r.DocumentID)
	return w.notifier.Send(ctx, invitationMail(r, rc, title, w.link(tok), ""))
}

// invite stores a new invitation for rc (its hash only) and returns the
// token. The row is committed on its own, before the job's transaction
// sends the mail: a recipient may follow the link the moment the mail
// arrives, before the job commits. If the job then fails, the invitation
// stays valid and harmless (its token went out, or nowhere); the retried
// job mails a new one. The insert takes a key-share lock on the request,
// which the job's lockRequest (FOR NO KEY UPDATE) leaves free.
func (w *Workflow) invite(ctx context.Context, _ pgx.Tx, r *SigningRequest, rc *api.Recipient) (string, error) {
	tok, sum := newToken()
	_, err := w.pool.Exec(ctx, `INSERT INTO signing.invitations (token_sha256, request_id, recipient_id, content_sha256, expires_at)
		VALUES ($1, $2, $3, $4, $5)`, sum, r.ID, rc.ID, r.ContentSHA256, r.ExpiresAt)
	return tok, postgres.Error(err, "store invitation")
}

func (w *Workflow) title(ctx context.Context, tx pgx.Tx, docID string) string {
	var t string
	if err := tx.QueryRow(ctx, `SELECT title FROM documents.documents WHERE id = $1`, docID).Scan(&t); err != nil {
		return docID
	}
	return t
}

// remind mails reminder number n (the payload) to every recipient of the
// waiting group who has not finished, and schedules reminder n+1 one
// interval after this one's due time (not after now: a late scheduler
// catches up instead of drifting), while that is before the expiry.
func (w *Workflow) remind(ctx context.Context, tx pgx.Tx, j job) error {
	r, err := w.lockRequest(ctx, tx, j.RequestID)
	if err != nil {
		return err
	}
	if r.State != api.RequestSent && r.State != api.RequestInProgress {
		return nil
	}
	n, _ := strconv.Atoi(j.Payload)
	var every time.Duration
	if r.ReminderInterval != nil {
		every, _ = time.ParseDuration(*r.ReminderInterval)
	}
	if every > 0 && n < defaultReminderCap {
		next := j.DueAt.Add(every)
		if r.ExpiresAt == nil || next.Before(*r.ExpiresAt) {
			if err := enqueue(ctx, tx, "remind", r.ID, "", strconv.Itoa(n+1), next); err != nil {
				return err
			}
		}
	}
	order, waiting := activeOrder(r.Recipients)
	if !waiting {
		return nil
	}
	title := w.title(ctx, tx, r.DocumentID)
	for i := range r.Recipients {
		rc := &r.Recipients[i]
		if rc.Order != order || !blocks(rc.Role) || done(rc.Role, rc.State) || acted(rc.State) || rc.State == api.RecipientPending {
			continue
		}
		tok, err := w.invite(ctx, tx, r, rc)
		if err != nil {
			return err
		}
		if err := w.appendAudit(ctx, tx, AuditEntry{DocumentID: r.DocumentID, Type: "invitation.reminded", Actor: "service:signature",
			Data: map[string]any{"request_id": r.ID, "recipient_id": rc.ID, "reminder": n}}); err != nil {
			return err
		}
		if err := w.notifier.Send(ctx, invitationMail(r, rc, title, w.link(tok), fmt.Sprintf("Reminder %d: ", n))); err != nil {
			return err
		}
	}
	return nil
}

// expire ends a request still open at its expiry and tells its owner.
func (w *Workflow) expire(ctx context.Context, tx pgx.Tx, j job) error {
	r, err := w.lockRequest(ctx, tx, j.RequestID)
	if err != nil {
		return err
	}
	if r.State != api.RequestSent && r.State != api.RequestInProgress {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE signing.signing_requests SET state = 'expired', outcome = 'expired', updated_at = now() WHERE id = $1`, r.ID); err != nil {
		return postgres.Error(err, "expire signing request")
	}
	if err := w.dropSchedule(ctx, tx, r.ID); err != nil {
		return err
	}
	if err := w.appendAudit(ctx, tx, AuditEntry{DocumentID: r.DocumentID, Type: "signing_request.expired", Actor: "service:signature",
		Data: map[string]any{"request_id": r.ID}}); err != nil {
		return err
	}
	title := w.title(ctx, tx, r.DocumentID)
	return w.notifier.Send(ctx, Mail{To: []string{r.CreatedBy},
		Subject: fmt.Sprintf("Signing request expired: %s", title),
		Text:    fmt.Sprintf("The signing request %s for %q expired at %s before every recipient finished.\n", r.ID, title, r.ExpiresAt.UTC().Format(time.RFC3339))})
}

// mailOutcome tells the owner (and, for a completed request, the cc
// recipients) how the request ended; a completed request's mail carries
// the document and the certificate.
func (w *Workflow) mailOutcome(ctx context.Context, tx pgx.Tx, j job) error {
	r, err := w.read(ctx, tx, j.RequestID)
	if err != nil {
		return err
	}
	title := w.title(ctx, tx, r.DocumentID)
	switch r.State {
	case api.RequestDeclined:
		return w.notifier.Send(ctx, Mail{To: []string{r.CreatedBy}, Subject: "Signing request declined: " + title,
			Text: fmt.Sprintf("The signing request %s for %q was %s.\n", r.ID, title, deref(r.Outcome))})
	case api.RequestCompleted:
		to := []string{r.CreatedBy}
		for _, rc := range r.Recipients {
			if rc.Role == api.RoleCC {
				to = append(to, rc.Email)
			}
		}
		var certKey, contentKey string
		var certSum *string
		if err := tx.QueryRow(ctx, `SELECT coalesce(certificate_key, ''), content_key, certificate_sha256 FROM signing.signing_requests WHERE id = $1`,
			r.ID).Scan(&certKey, &contentKey, &certSum); err != nil {
			return postgres.Error(err, "signing request")
		}
		m := Mail{To: to, Subject: "Completed: " + title,
			Text: fmt.Sprintf("Every recipient has finished the signing request %s for %q.\nDocument SHA-256: %s\nCertificate SHA-256: %s\n",
				r.ID, title, r.ContentSHA256, deref(certSum))}
		for _, a := range []struct{ key, name string }{{contentKey, "document"}, {certKey, "certificate-of-completion.pdf"}} {
			if a.key == "" {
				continue
			}
			b, ct, err := w.readAll(ctx, a.key)
			if err != nil {
				return err
			}
			m.Attachments = append(m.Attachments, Attachment{Name: a.name, ContentType: ct, Data: b})
		}
		return w.notifier.Send(ctx, m)
	}
	return nil
}

// invitationMail is the mail inviting (or reminding) rc.
func invitationMail(r *SigningRequest, rc *api.Recipient, title, link, prefix string) Mail {
	verb := map[api.Role]string{api.RoleSigner: "sign", api.RoleApprover: "approve", api.RoleViewer: "view", api.RoleCC: "see"}[rc.Role]
	var b strings.Builder
	fmt.Fprintf(&b, "%s asks you to %s %q.\n\n", r.CreatedBy, verb, title)
	if r.Message != nil {
		fmt.Fprintf(&b, "%s\n\n", *r.Message)
	}
	fmt.Fprintf(&b, "Open the document: %s\n\nThis link is personal: it lets its holder act as %s. Document SHA-256: %s\n", link, rc.Email, r.ContentSHA256)
	if r.ExpiresAt != nil {
		fmt.Fprintf(&b, "It expires at %s.\n", r.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return Mail{To: []string{rc.Email}, Subject: fmt.Sprintf("%sPlease %s: %s", prefix, verb, title), Text: b.String()}
}
