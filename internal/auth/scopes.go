package auth

import (
	"context"
	"fmt"

	"github.com/docstream/docstream/apperr"
)

// Scopes lists every scope an API key may carry, in the order they are
// shown.
var Scopes = []Scope{ScopeRead, ScopeWrite, ScopeSign, ScopeAdmin}

// ParseScope reads a scope name.
func ParseScope(s string) (Scope, error) {
	switch sc := Scope(s); sc {
	case ScopeRead, ScopeWrite, ScopeSign, ScopeAdmin:
		return sc, nil
	}
	return "", fmt.Errorf("scope %q: want read, write, sign or admin", s)
}

// ScopeFor is the scope an action needing level asks of an API key: read
// to view, write to edit, delete or share (own), sign to sign. Creating a
// document asks ScopeWrite.
func ScopeFor(need Level) Scope {
	switch need {
	case LevelView:
		return ScopeRead
	case LevelSign:
		return ScopeSign
	default: // edit, own
		return ScopeWrite
	}
}

// ScopeAllows reports whether p's scopes let it take an action needing
// level. It is the first half of an API key's effective rights; the other
// half is what the document grants p's reader keys (or p.Admin). People
// have no cap, so for them it is always true.
func (p Principal) ScopeAllows(need Level) bool { return p.HasScope(ScopeFor(need)) }

// MayAdminister reports whether p may run administrative operations (API
// keys and the like) outside `docstream dev`: an admin, and for an API key
// one whose scopes include admin.
func (p Principal) MayAdminister() bool { return p.Admin && p.HasScope(ScopeAdmin) }

// AuthorizeAdmin lets ctx's principal run an administrative operation
// (what names it in the refusal): anyone in `docstream dev` in open mode
// (AdminOpen), elsewhere — open mode of `docstream serve` included — only
// a principal that MayAdminister. Without a credential it is 401 (send
// one), with one that is not an admin's 403. A nil Authenticator (a
// service wired without authentication, as some tests do) lets everyone.
func (a *Authenticator) AuthorizeAdmin(ctx context.Context, what string) error {
	if a == nil || a.AdminOpen() {
		return nil
	}
	switch p := FromContext(ctx); {
	case p.IsAnonymous():
		return apperr.E(apperr.Unauthenticated, "%s needs an admin's credential", what)
	case !p.MayAdminister():
		return apperr.E(apperr.Forbidden, "%s needs an admin (an API key needs the admin scope)", what)
	}
	return nil
}
