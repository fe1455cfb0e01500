package signature

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-retry"
	gcblob "gocloud.dev/blob"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/proto/documentpb"
)

var statusUpdates = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "docstream_signature_status_updates_total",
	Help: "Attempts to set a signed document's status over gRPC, by where they ran (inline, reconciler) and result (applied, retry, failed).",
}, []string{"path", "result"})

// Blobs is the object storage the service writes signature data to
// (a *blob.Bucket).
type Blobs interface {
	WriteAll(ctx context.Context, key string, p []byte, opts *gcblob.WriterOptions) error
	Delete(ctx context.Context, key string) error
	Ping(ctx context.Context) error
}

// Options tune how the service talks to the document service.
type Options struct {
	// CallTimeout is the deadline of one gRPC call.
	CallTimeout time.Duration
	// Retries is how many times a failed call made while serving a request
	// is retried, with exponential backoff from RetryBackoff.
	Retries      uint64
	RetryBackoff time.Duration
}

// Service holds the signature use cases. Its fields are the only things it
// talks to.
type Service struct {
	store *Store
	docs  documentpb.DocumentServiceClient // the document service, over gRPC
	blobs Blobs                            // bucket "signatures"
	opts  Options
	log   *slog.Logger
	mode  auth.Mode // required: access control applies (zero: open)
}

// NewService returns the service, in open mode until SetMode says
// otherwise. opts must be valid (Config.Validate).
func NewService(store *Store, docs documentpb.DocumentServiceClient, blobs Blobs, opts Options, log *slog.Logger) *Service {
	return &Service{store: store, docs: docs, blobs: blobs, opts: opts, log: log}
}

// SetMode sets the auth mode (--auth-mode) before the service is used.
func (s *Service) SetMode(m auth.Mode) { s.mode = m }

func (s *Service) required() bool { return s.mode == auth.ModeRequired }

// Principal is who the signature service's own calls act as: the outbox
// applies a status update recorded when the signer's sign level was
// checked, possibly after the signer's token expired, so it cannot use
// the signer's credential. The document service lets this principal set a
// document's status to signed, and nothing else.
var Principal = auth.Principal{Kind: auth.KindService, Subject: "signature"}

// asService is ctx's deadline and cancellation acting as Principal: none
// of the request's values ride along, so the gRPC client's per-call
// credential finds no caller credential to forward and presents the
// service's own (as for any background work), and the service principal
// is what the context says. In open mode the call goes as an anonymous
// caller instead, which open mode lets do anything: a deployment without a
// secret to sign service credentials with still applies its signatures.
func (s *Service) asService(ctx context.Context) context.Context {
	if !s.required() {
		return auth.WithCredential(auth.WithPrincipal(valueless{ctx}, auth.Anonymous), auth.Credential{})
	}
	return auth.WithPrincipal(valueless{ctx}, Principal)
}

// valueless is a context's deadline and cancellation without its values.
type valueless struct{ context.Context }

func (valueless) Value(any) any { return nil }

// Signer returns the signer_email a request signs as. The signer is the
// caller: an absent signer_email is filled from the principal's verified
// email; in required mode a different one is refused (403 "cannot sign as
// someone else"), as is a caller without a verified email. In open mode a
// given signer_email stands, as in the reference.
func (s *Service) Signer(ctx context.Context, email *string) (*string, error) {
	p := auth.FromContext(ctx)
	verified := p.Email != "" && p.EmailVerified
	if (email == nil || *email == "") && verified {
		e := p.Email
		email = &e
	}
	if !s.required() {
		return email, nil
	}
	switch {
	case !p.HasScope(auth.ScopeSign):
		return nil, apperr.E(apperr.Forbidden, "this API key lacks the sign scope")
	case !verified:
		return nil, apperr.E(apperr.Forbidden, "signing needs a credential with a verified email: the signer is who is signed in")
	case email != nil && !strings.EqualFold(*email, p.Email):
		return nil, apperr.E(apperr.Forbidden, "cannot sign as someone else: signer_email must be your own verified email (or left out)")
	}
	return email, nil
}

// SignerName returns the signer_name a request signs as: in required mode,
// when the caller's token carries a name (--auth-claim-name), an absent
// signer_name is filled from it and a different one is refused (403
// "cannot sign as someone else"; compared without case and with runs of
// spaces as one). A token without a name leaves the body's, which the
// signature's signer_subject then ties to who signed. In open mode the
// body's signer_name stands, as in the reference (filled from the token's
// name when absent).
func (s *Service) SignerName(ctx context.Context, name *string) (*string, error) {
	p := auth.FromContext(ctx)
	claimed := strings.Join(strings.Fields(p.Name), " ")
	if p.Kind != auth.KindUser || claimed == "" {
		return name, nil // an API key's name names the key, not a person
	}
	if name == nil || strings.TrimSpace(*name) == "" {
		return &claimed, nil
	}
	if s.required() && !strings.EqualFold(strings.Join(strings.Fields(*name), " "), claimed) {
		return nil, apperr.E(apperr.Forbidden, "cannot sign as someone else: signer_name must be the name your token gives (or left out)")
	}
	return name, nil
}

// Dial returns a gRPC client connection to the document service at addr:
// one host:port, a comma-separated list of them, or a gRPC target such as
// dns:///documents.internal:50051 (every address the name resolves to).
// Calls are balanced round robin over every address that is up, so one
// instance restarting or gone leaves the others serving. Connecting is
// lazy. Reconnection backoff is capped at a second, so that once the
// document service is back the next call or reconciler poll finds it,
// instead of waiting out gRPC's default backoff of up to two minutes.
// opts add to these (the per-RPC credentials, auth.ClientCredentials).
func Dial(addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		}),
		// gRPC's default (pick_first) would send every call to one
		// instance until it fails.
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
	}
	target := addr
	if strings.Contains(addr, ",") {
		// A fixed list: a resolver of this connection's own.
		var addrs []resolver.Address
		for _, a := range strings.Split(addr, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, resolver.Address{Addr: a})
			}
		}
		r := manual.NewBuilderWithScheme("docstream-documents")
		r.InitialState(resolver.State{Addresses: addrs})
		base = append(base, grpc.WithResolvers(r))
		target = r.Scheme() + ":///document"
	}
	return grpc.NewClient(target, append(base, opts...)...)
}

// Create records a signature: it checks the document may be signed, stores
// signature_data as an object, writes the row together with its pending
// status update, then asks the document service to set the document to
// signed. If the document service cannot be reached the signature is still
// created and reported with DocumentStatusUpdate "pending"; the Reconciler
// applies it later. in.IPAddress must be filled in by the caller.
func (s *Service) Create(ctx context.Context, in CreateInput) (sig *Signature, replayed bool, err error) {
	// The handler asked Signer before validating; asking again keeps the
	// rule where the signature is made.
	email, err := s.Signer(ctx, &in.SignerEmail)
	if err != nil {
		return nil, false, err
	}
	in.SignerEmail = *email
	name, err := s.SignerName(ctx, &in.SignerName)
	if err != nil {
		return nil, false, err
	}
	in.SignerName = *name
	docReachable, err := s.checkDocument(ctx, in.DocumentID)
	if err != nil {
		return nil, false, err
	}
	// A document out for signature is refused (409) by the insert's own
	// transaction (refuseOpenRequest), not here: a request opened between a
	// check here and the insert would let the signature through.
	id, err := uuid.NewV7()
	if err != nil {
		return nil, false, apperr.Wrap(apperr.Internal, err, "internal error")
	}
	row := newRow{ID: id.String(), DocumentID: in.DocumentID, SignerEmail: in.SignerEmail, SignerName: in.SignerName}
	if k := auth.FromContext(ctx).Key(); k != "" {
		row.SignerSubject = &k
	}
	if in.IPAddress != "" {
		row.IPAddress = &in.IPAddress
	}
	if in.SignatureData != nil {
		obj := decodeSignatureData(*in.SignatureData)
		key, size := row.ID, int64(len(obj.body))
		// The object is written before the row: a row never points at a
		// missing object, and an object whose row failed is deleted below.
		if err := s.blobs.WriteAll(ctx, key, obj.body, &gcblob.WriterOptions{ContentType: obj.contentType}); err != nil {
			return nil, false, apperr.Wrap(apperr.Unavailable, err, "object storage unavailable: could not store signature_data")
		}
		row.SignatureData, row.Key, row.ContentType, row.Size = in.SignatureData, &key, &obj.contentType, &size
		sum := sha256.Sum256(obj.body)
		row.DataSHA256 = hex.EncodeToString(sum[:])
	}

	// While we try the update ourselves the outbox row is not due, so the
	// reconciler does not race us; if the document service is known to be
	// down, it is due at once.
	firstAttempt := time.Duration(0)
	if docReachable {
		firstAttempt = s.inlineBudget() + 5*time.Second
	}
	if in.IdempotencyKey == "" {
		sig, err = s.store.Insert(ctx, row, firstAttempt)
	} else {
		sig, replayed, err = s.store.InsertOnce(ctx, row, firstAttempt, createKey(ctx, in))
	}
	if err != nil || replayed {
		if row.Key != nil {
			if derr := s.blobs.Delete(context.WithoutCancel(ctx), *row.Key); derr != nil {
				s.log.WarnContext(ctx, "delete orphaned signature object", "key", *row.Key, "err", derr)
			}
		}
	}
	if err != nil {
		return nil, false, err
	}
	if replayed {
		// The first request's answer; its status update is the outbox's
		// (or was applied by the first request).
		return sig, true, nil
	}
	if !docReachable {
		statusUpdates.WithLabelValues("inline", "retry").Inc()
		return sig, false, nil
	}
	// The update outlives a client that hangs up: it is bounded by the retry
	// budget, not by the request.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.inlineBudget())
	defer cancel()
	sig.DocumentStatusUpdate, sig.DocumentStatusError = s.apply(uctx, "inline",
		pendingUpdate{SignatureID: sig.ID, DocumentID: sig.DocumentID, Status: string(document.StatusSigned)},
		s.backoff(), time.Second)
	return sig, false, nil
}

// createKey is a signature's idempotency key: scoped to the route and the
// caller (their reader key, else the signer: anonymous callers in open
// mode), its fingerprint what the create asked for, so a retry that asks
// for something else is told apart from a repeat.
func createKey(ctx context.Context, in CreateInput) postgres.IdempotencyKey {
	caller := auth.FromContext(ctx).Key()
	if caller == "" {
		caller = "signer:" + strings.ToLower(in.SignerEmail)
	}
	h := sha256.New()
	data := ""
	if in.SignatureData != nil {
		data = *in.SignatureData
	}
	for _, f := range []string{in.DocumentID, in.SignerEmail, in.SignerName, data} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return postgres.IdempotencyKey{Scope: "POST /signatures " + caller, Key: in.IdempotencyKey, Fingerprint: h.Sum(nil)}
}

// checkDocument asks the document service, with the caller's credential,
// whether the document exists, whether the caller may sign it and whether
// it may be signed: NotFound naming the id (also when the caller may not
// view it), Forbidden when the caller may view but not sign it, Conflict
// if its status forbids signing. When the document service cannot be
// reached it answers from the shared database instead, with the same rule
// (document.Decide), and reports reachable=false.
func (s *Service) checkDocument(ctx context.Context, id string) (reachable bool, err error) {
	resp, err := retry.DoValue(ctx, s.backoff(), func(ctx context.Context) (*documentpb.DocumentExistsResponse, error) {
		cctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
		defer cancel()
		resp, err := s.docs.DocumentExists(cctx, &documentpb.DocumentExistsRequest{DocumentId: id})
		if transient(err) {
			return nil, retry.RetryableError(err)
		}
		return resp, err
	})
	var docStatus string
	switch {
	case err == nil:
		if !resp.GetExists() {
			return true, apperr.E(apperr.NotFound, "document %s not found", id)
		}
		docStatus, reachable = resp.GetStatus(), true
		if s.required() && !mayHold(resp.GetLevels(), auth.LevelSign) {
			return true, apperr.E(apperr.Forbidden, "you may view document %s but not sign it", id)
		}
	case transient(err):
		s.log.WarnContext(ctx, "document service unreachable; checking the document in the database", "document_id", id, "err", err)
		p := auth.FromContext(ctx)
		da, found, derr := s.store.DocumentAccess(ctx, id, p.ReaderKeys())
		if derr != nil {
			return false, derr
		}
		if !found {
			return false, apperr.E(apperr.NotFound, "document %s not found", id)
		}
		if s.required() {
			if err := document.Decide(p, document.NewRecord(id, da.Owner, da.Readers, da.Levels), auth.LevelSign); err != nil {
				return false, err
			}
		}
		docStatus = da.Status
	default:
		return false, grpcError(err, "check document")
	}
	if !signable(docStatus) {
		return reachable, apperr.E(apperr.Conflict, "document %s is %s and cannot be signed", id, docStatus)
	}
	return reachable, nil
}

// apply sends one status update to the document service, retrying transient
// failures with b, and records the outcome in the outbox: deleted when
// applied, due again after retryAfter when the service is unreachable,
// parked as failed when it refuses. It returns the resulting state.
func (s *Service) apply(ctx context.Context, path string, u pendingUpdate, b retry.Backoff, retryAfter time.Duration) (UpdateState, string) {
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
		defer cancel()
		// As the service, not the signer: see Principal.
		_, err := s.docs.UpdateDocumentStatus(s.asService(cctx), &documentpb.UpdateDocumentStatusRequest{DocumentId: u.DocumentID, Status: u.Status})
		if transient(err) {
			return retry.RetryableError(err)
		}
		return err
	})
	// The outbox is written with a context of its own: an update the
	// document service applied must be recorded even if ctx just ended.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	log := s.log.With("signature_id", u.SignatureID, "document_id", u.DocumentID, "path", path)
	switch {
	case err == nil:
		statusUpdates.WithLabelValues(path, "applied").Inc()
		if derr := s.store.Applied(dctx, u.SignatureID); derr != nil {
			// Harmless: the row is applied again later, and the update is idempotent.
			log.WarnContext(ctx, "status update applied but not recorded", "err", derr)
		}
		return UpdateApplied, ""
	case transient(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		statusUpdates.WithLabelValues(path, "retry").Inc()
		log.WarnContext(ctx, "document service unreachable; status update stays pending", "attempts", u.Attempts, "err", err)
		if derr := s.store.Retry(dctx, u.SignatureID, retryAfter, err.Error()); derr != nil {
			log.WarnContext(ctx, "reschedule status update", "err", derr)
		}
		return UpdatePending, ""
	default:
		statusUpdates.WithLabelValues(path, "failed").Inc()
		reason := status.Convert(err).Message()
		log.ErrorContext(ctx, "document service refused the status update", "err", err)
		if derr := s.store.Failed(dctx, u.SignatureID, reason); derr != nil {
			log.WarnContext(ctx, "mark status update failed", "err", derr)
		}
		return UpdateFailed, reason
	}
}

func (s *Service) backoff() retry.Backoff {
	return retry.WithMaxRetries(s.opts.Retries, retry.WithJitterPercent(20, retry.NewExponential(s.opts.RetryBackoff)))
}

// inlineBudget bounds how long a request spends on one gRPC call with its
// retries: every attempt's deadline plus the backoff between them.
func (s *Service) inlineBudget() time.Duration {
	d := time.Duration(s.opts.Retries+1) * s.opts.CallTimeout
	for i := uint64(0); i < s.opts.Retries; i++ {
		d += s.opts.RetryBackoff << i * 12 / 10
	}
	return d
}

// transient reports whether a gRPC error may go away on retry (the document
// service is down, overloaded, restarting or slow). Refusals (NotFound,
// FailedPrecondition, InvalidArgument, …) are not.
func transient(err error) bool {
	if err == nil {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted,
		codes.Internal, codes.Unknown, codes.Canceled:
		return true
	}
	return false
}

// grpcError maps a non-transient gRPC error from the document service to
// an application error.
func grpcError(err error, what string) error {
	st := status.Convert(err)
	code := apperr.FromGRPC(st.Code())
	if code == apperr.Internal {
		return apperr.Wrap(apperr.Internal, err, "internal error")
	}
	return apperr.Wrap(code, err, "%s", st.Message())
}

// readers is the filter of the caller's reads: nil in open mode and for
// admins (everything), else the caller's reader keys (a signature is
// visible with its document).
func (s *Service) readers(ctx context.Context) (*[]string, error) {
	p := auth.FromContext(ctx)
	if !s.required() || p.Admin && p.Kind != auth.KindService {
		return nil, nil
	}
	if !p.HasScope(auth.ScopeRead) {
		return nil, apperr.E(apperr.Forbidden, "this API key lacks the read scope")
	}
	keys := p.ReaderKeys()
	if p.Kind == auth.KindService || keys == nil {
		keys = []string{}
	}
	return &keys, nil
}

// Get returns one signature (in required mode, one of a document the
// caller may view; any other reads as missing).
func (s *Service) Get(ctx context.Context, id string) (*Signature, error) {
	keys, err := s.readers(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.Get(ctx, id, keys)
}

// List returns signatures newest first (in required mode, of the
// documents the caller may view).
func (s *Service) List(ctx context.Context, skip, limit int) ([]*Signature, error) {
	keys, err := s.readers(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.List(ctx, skip, limit, keys)
}

// ListByDocument returns a document's signatures, [] when there are none
// (the reference answers 404 there; an empty list is what a client of a
// collection expects). In required mode a document the caller may not
// view, or one that does not exist, is NotFound: the two read alike.
func (s *Service) ListByDocument(ctx context.Context, documentID string) ([]*Signature, error) {
	keys, err := s.readers(ctx)
	if err != nil {
		return nil, err
	}
	if keys != nil {
		ok, err := s.store.Visible(ctx, documentID, *keys)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, apperr.E(apperr.NotFound, "document %s not found", documentID)
		}
	}
	return s.store.ListByDocument(ctx, documentID)
}

// PingDocuments is a readiness probe of the document service: any answer
// from DocumentExists means it is serving.
func (s *Service) PingDocuments(ctx context.Context) error {
	_, err := s.docs.DocumentExists(ctx, &documentpb.DocumentExistsRequest{DocumentId: uuid.Nil.String()})
	if transient(err) {
		return fmt.Errorf("document service: %w", err)
	}
	return nil
}

// Ownership is who owns the objects of the signatures bucket, for the blob
// sweeper: the object keyed by a signature id belongs to that signature.
func (s *Service) Ownership() blob.Ownership {
	return blob.Ownership{Owner: blob.FirstSegmentUUID, Existing: s.store.Existing}
}

var registerMetrics sync.Once

// RegisterMetrics puts this package's metrics on the default registry
// (served by every /metrics). The app calls it when it starts the target,
// so a process exports the metrics of the targets it runs and no others (a
// CDC-only process has no docstream_document_redis_up to alert on). Safe
// to call more than once.
func RegisterMetrics() {
	registerMetrics.Do(func() {
		prometheus.MustRegister(statusUpdates, pendingUpdates)
		audit.RegisterMetrics()
	})
}

// mayHold reports whether any of levels (as DocumentExists names them)
// permits need.
func mayHold(levels []string, need auth.Level) bool {
	for _, l := range levels {
		if auth.Level(l).Allows(need) {
			return true
		}
	}
	return false
}
