package auth

import "fmt"

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
