package realtime

import (
	"context"
	"errors"
	"slices"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/document"
)

// Subscription access (issue 12). In required mode a subscription to a
// document is authorised when it is made, against PostgreSQL: the bus
// keeps only --bus-max-age of history, so who may view a document cannot
// be rebuilt from the stream. The caller must be allowed to view it by the
// document service's own rule (document.Decide: an admin, or one of the
// caller's reader keys among the document's readers, and an API key with
// the read scope); otherwise the handshake is answered 404 with the words
// of a missing document, so a refusal says nothing about existence.
//
// After that the change stream revokes live: every cdc.documents event
// carries the row's readers, and a subscriber whose keys are no longer
// among them is closed with 1008 "access revoked" before anything of that
// event reaches it (a readers-only update has no message of its own; see
// ignoredColumns). Replayed history (?since=) holds nothing of a change
// made while the subscriber's keys were not among the readers.
//
// The subscription is authorised twice: before the upgrade (to answer
// 404), and once it is registered with the hub (so a revocation committed
// between the first check and the registration, whose event the hub
// dispatched before it knew the client, is still caught: it is either in
// the second check's snapshot or dispatched after the registration).
//
// Pushed messages never carry readers or owner, whoever watches: the
// message data are fixed field lists (api.DocumentData and friends).

// DocumentAccess reads a document's owner and readers where they live.
type DocumentAccess interface {
	// DocumentAccess returns the document's owner ("" when none) and
	// readers; found is false when there is no such document.
	DocumentAccess(ctx context.Context, id string) (owner string, readers []string, found bool, err error)
}

// PGAccess is DocumentAccess over documents.documents.
type PGAccess struct{ pool *pgxpool.Pool }

// NewPGAccess reads access from pool's database.
func NewPGAccess(pool *pgxpool.Pool) *PGAccess { return &PGAccess{pool: pool} }

// DocumentAccess implements DocumentAccess with one primary-key lookup.
func (a *PGAccess) DocumentAccess(ctx context.Context, id string) (owner string, readers []string, found bool, err error) {
	err = a.pool.QueryRow(ctx, `SELECT coalesce(owner, ''), readers FROM documents.documents WHERE id = $1::uuid`, id).Scan(&owner, &readers)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, false, nil
	}
	return owner, readers, err == nil, err
}

// viewer is whom a subscription watches as: unrestricted (open mode,
// admins), or the reader keys one of which must stay among the document's
// readers.
type viewer struct {
	restricted bool
	keys       []string
}

// mayView reports whether v may see a document with readers.
func (v viewer) mayView(readers []string) bool {
	if !v.restricted {
		return true
	}
	for _, k := range v.keys {
		if slices.Contains(readers, k) {
			return true
		}
	}
	return false
}

// mayViewEvent reports whether v may see ev: events that carry no readers
// (signatures, rows from before access control) are judged by the
// subscription's authorisation alone.
func (v viewer) mayViewEvent(ev Event) bool { return !ev.HasReaders || v.mayView(ev.Readers) }

var closeRevoked = closeCode{code: websocket.StatusPolicyViolation, reason: "access revoked"}

// authorize decides whether p may watch document id: the viewer it
// watches as, or a NotFound error (it may not view the document or there
// is none), or Forbidden (an API key without the read scope), or
// Unavailable when the database cannot say.
func (s *Server) authorize(ctx context.Context, p auth.Principal, id string) (viewer, error) {
	if s.auth.Mode() != auth.ModeRequired {
		return viewer{}, nil
	}
	if s.cfg.Access == nil {
		return viewer{}, apperr.E(apperr.Unavailable, "document access cannot be checked: no database")
	}
	owner, readers, found, err := s.cfg.Access.DocumentAccess(ctx, id)
	if err != nil {
		return viewer{}, apperr.Wrap(apperr.Unavailable, err, "document access cannot be checked")
	}
	if !found {
		return viewer{}, apperr.E(apperr.NotFound, "document %s not found", id)
	}
	if err := document.Decide(p, document.NewRecord(id, owner, readers, nil), auth.LevelView); err != nil {
		return viewer{}, err
	}
	if p.Admin {
		return viewer{}, nil
	}
	return viewer{restricted: true, keys: p.ReaderKeys()}, nil
}
