package document

import (
	"context"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/validate"
)

// The audit trail (internal/audit) of a document is written by the store
// in the transaction of each change; here it is read and verified. It
// holds IP addresses and user agents, so only the owner (own) and admins
// read it. A deleted document's trail stays: its recorded owner and admins
// still read it.

// Audit returns document id's trail. A document that has none yet (created
// before the audit, or inserted by SQL) gets its genesis entry first.
func (s *Service) Audit(ctx context.Context, id string) (*audit.Log, error) {
	if err := s.checkScope(auth.FromContext(ctx), auth.LevelOwn); err != nil {
		return nil, err
	}
	_, err := s.lookup(ctx, id, auth.LevelOwn)
	gone := apperr.CodeOf(err) == apperr.NotFound
	if err != nil && !gone {
		return nil, err
	}
	if !gone {
		if err := pgx.BeginFunc(ctx, s.store.pool, func(tx pgx.Tx) error {
			_, err := audit.Begin(ctx, tx, id)
			return err
		}); err != nil {
			return nil, postgres.Error(err, "audit of document "+id)
		}
	}
	l, err := audit.Read(ctx, s.store.pool, id)
	if err != nil {
		return nil, err
	}
	if gone {
		// Deleted (or never there, or not the caller's to see): the trail
		// alone answers, to its recorded owner and to admins.
		p := auth.FromContext(ctx)
		admin := p.Admin && p.Kind != auth.KindService
		if len(l.Entries) == 0 && l.Head == nil || s.required() && !admin && (p.Key() == "" || p.Key() != audit.OwnerOf(l)) {
			return nil, notFound(id)
		}
	}
	return l, nil
}

// RecordDownload appends a full download of d's content by ctx's caller.
func (s *Service) RecordDownload(ctx context.Context, d *Document) error {
	return s.store.Downloaded(ctx, d)
}

// fullDownload reports whether r asks for the whole content (not a range,
// not a revalidation that will answer 304, not a HEAD).
func fullDownload(r *http.Request, etag string) bool {
	if r.Method != http.MethodGet || r.Header.Get("Range") != "" {
		return false
	}
	inm := r.Header.Get("If-None-Match")
	return inm == "" || etag == "" || !strings.Contains(inm, etag) && strings.TrimSpace(inm) != "*"
}

// withAuditClient gives the audit entries of a request its client's
// address and user agent.
func withAuditClient(h http.Handler, cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := audit.WithClient(r.Context(), httpx.ClientIP(r, cfg.TrustedProxies), r.UserAgent())
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *Server) handleAudit() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l, err := s.auditOf(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		httpx.Respond(w, http.StatusOK, l)
	})
}

func (s *Server) handleAuditVerify() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l, err := s.auditOf(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		keys, err := audit.KeyMap(audit.PublishedKeys())
		if err != nil {
			s.respondErr(w, r, apperr.Wrap(apperr.Internal, err, "internal error"))
			return
		}
		res := audit.Verify(l, keys)
		audit.CountVerification(res)
		httpx.Respond(w, http.StatusOK, res)
	})
}

func (s *Server) auditOf(r *http.Request) (*audit.Log, error) {
	id, err := validate.ID("document", r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return s.docs.Audit(r.Context(), id)
}

// AuditKeysPath is where the public keys of audit checkpoints are
// published, open to anyone (a verifier needs no account).
const AuditKeysPath = "/.well-known/docstream-audit-keys"

func (s *Server) handleAuditKeys() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		httpx.Respond(w, http.StatusOK, audit.PublishedKeys())
	})
}
