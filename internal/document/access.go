package document

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/validate"
)

// Access control (issue 12). In required mode every use case asks
// authorize before it answers; in open mode nothing is checked (the
// reference's behaviour) but the principal is still recorded as owner.
//
// What each level permits here:
//
//	view  get, list, content, stats, signatures of the document
//	edit  PATCH (title, status) and gRPC UpdateDocumentStatus
//	sign  make a signature (checked by the signature service through
//	      DocumentExists's level)
//	own   everything, and delete and share: a deletion cannot be undone
//	      and takes the signatures with it, so an editor may not do it
//
// The owner holds own; a share grants its level to its grantee; admins
// hold own on every document. A service principal (the signature
// service's outbox, acting after the signer's token may have expired) may
// only set a document's status to signed and nothing else.
//
// A caller that may not view a document gets 404, as if it did not exist;
// one that may view but not do what it asked gets 403.

// Record is a document row with what access control needs beside it.
type Record struct {
	*Document
	// Readers are every principal key that may view the document.
	Readers []string
	// AccessVersion counts changes of Readers; the cache orders entries on
	// (Version, AccessVersion).
	AccessVersion int64
	// Levels are the levels the caller's shares grant (only when the
	// store was asked with the caller's keys).
	Levels []auth.Level
}

// required reports whether access control applies.
func (s *Service) required() bool { return s.mode == auth.ModeRequired }

// canView reports whether p may view a document with these readers.
func canView(p auth.Principal, readers []string) bool {
	switch {
	case p.Kind == auth.KindService:
		return false
	case p.Admin:
		return true
	}
	for _, k := range p.ReaderKeys() {
		if slices.Contains(readers, k) {
			return true
		}
	}
	return false
}

// levelsOf are the levels p holds on r: own for the owner and admins, and
// every level the caller's shares grant.
func levelsOf(p auth.Principal, r *Record) []auth.Level {
	switch {
	case p.Kind == auth.KindService:
		return nil
	case p.Admin || (r.Owner != "" && r.Owner == p.Key()):
		return []auth.Level{auth.LevelOwn}
	}
	return r.Levels
}

// allows reports whether any of levels permits need.
func allows(levels []auth.Level, need auth.Level) bool {
	for _, l := range levels {
		if l.Allows(need) {
			return true
		}
	}
	return false
}

// checkScope refuses an API key whose scopes do not cover need (403: the
// key's capability, decided before any document is looked at, so it
// reveals nothing about one).
func (s *Service) checkScope(p auth.Principal, need auth.Level) error {
	if !s.required() || p.HasScope(auth.ScopeFor(need)) {
		return nil
	}
	return apperr.E(apperr.Forbidden, "this API key lacks the %s scope", auth.ScopeFor(need))
}

// authorize decides whether the caller may do need to r: nil, a NotFound
// error naming the id (it may not view r), or Forbidden (it may view r
// but not do need). Open mode decides nothing.
func (s *Service) authorize(ctx context.Context, r *Record, need auth.Level) error {
	if !s.required() {
		return nil
	}
	return Decide(auth.FromContext(ctx), r, need)
}

// Decide is required mode's decision for p doing need to document r: nil,
// Forbidden for an API key without the scope, NotFound (with the words of
// a missing document) when p may not view r, Forbidden when p may view
// but not do need. The signature service decides with it from the
// database when the document service cannot be reached.
func Decide(p auth.Principal, r *Record, need auth.Level) error {
	if !p.HasScope(auth.ScopeFor(need)) {
		return apperr.E(apperr.Forbidden, "this API key lacks the %s scope", auth.ScopeFor(need))
	}
	if !canView(p, r.Readers) {
		return notFound(r.ID)
	}
	if need == auth.LevelView || allows(levelsOf(p, r), need) {
		return nil
	}
	return apperr.E(apperr.Forbidden, "you may view document %s but not %s it", r.ID, verb(need))
}

// NewRecord builds a Record for Decide.
func NewRecord(id, owner string, readers []string, shareLevels []auth.Level) *Record {
	return &Record{Document: &Document{ID: id, Owner: owner}, Readers: readers, Levels: shareLevels}
}

func verb(need auth.Level) string {
	switch need {
	case auth.LevelEdit:
		return "change"
	case auth.LevelSign:
		return "sign"
	default:
		return "delete or share"
	}
}

// notFound is the answer for a document the caller may not view: the same
// words as for one that does not exist.
func notFound(id string) error { return apperr.E(apperr.NotFound, "document %s not found", id) }

// callerKeys are the keys the store looks up share levels for (nil in open
// mode: nothing is checked).
func (s *Service) callerKeys(ctx context.Context) []string {
	if !s.required() {
		return nil
	}
	return auth.FromContext(ctx).ReaderKeys()
}

// asCaller fills in who is creating: the owner is the principal (none when
// anonymous), and in required mode created_by is the principal's email —
// or, when it has none, an address standing for it (PrincipalAddress) —
// unless an
// admin names someone else (a different value in the body is overwritten,
// not refused: the reference's clients always send one). Never the body's
// word for anyone else: created_by is shown, searched and aggregated on.
func (s *Service) asCaller(ctx context.Context, in CreateInput) CreateInput {
	p := auth.FromContext(ctx)
	in.owner = p.Key()
	if !s.required() || p.Admin && in.CreatedBy != "" {
		return in
	}
	switch {
	case p.Email != "":
		in.CreatedBy = p.Email
	case p.Key() != "":
		in.CreatedBy = PrincipalAddress(p)
	}
	return in
}

// PrincipalAddress is the created_by of a caller without an email (an API
// key, a token without an email claim): "<kind>.<subject>@docstream.invalid",
// the subject hashed when it is long or not a plain name. It is a valid
// address that no mailbox has (RFC 2606 reserves .invalid) and that no
// caller can claim for someone else.
func PrincipalAddress(p auth.Principal) string {
	local := p.Subject
	plain := len(local) > 0 && len(local) <= 40 && strings.IndexFunc(local, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0
	if !plain {
		sum := sha256.Sum256([]byte(p.Subject))
		local = hex.EncodeToString(sum[:8])
	}
	return string(p.Kind) + "." + local + "@docstream.invalid"
}

// MaxGrantee bounds a share's grantee (documents.shares.grantee).
const MaxGrantee = 300

// ParseGrantee checks a share's grantee and returns its canonical form:
// "user:<subject>", "group:<name>", "apikey:<id>" or "email:<address>"
// (lower-cased, as auth.EmailKey writes it); or a message for the field.
func ParseGrantee(s string) (string, string) {
	const want = `must be user:<subject>, group:<name>, apikey:<id> or email:<address>`
	kind, name, ok := strings.Cut(s, ":")
	if !ok || name == "" || strings.TrimSpace(name) != name {
		return "", want
	}
	if len(s) > MaxGrantee {
		return "", fmt.Sprintf("must be at most %d bytes", MaxGrantee)
	}
	if !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", "must be text without control characters"
	}
	switch kind {
	case "user", "group", "apikey":
		return s, ""
	case "email":
		if msg := validate.Email(name); msg != "" {
			return "", "email " + msg
		}
		return auth.EmailKey(name), ""
	}
	return "", want
}
