// Package auth is who is asking and what they may do: the principal a
// request carries, the access levels a document can grant, and the mode
// (open or required) a deployment runs in. Verifying tokens and API keys
// and the HTTP and gRPC middleware that put a Principal on a request's
// context live here too, so every service asks the same questions the same
// way.
package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Mode is how a deployment treats callers.
type Mode string

const (
	// ModeOpen is the reference system's behaviour: anonymous callers are
	// allowed and every caller may see and change every document. A token
	// that is presented is still verified, and its principal recorded as
	// owner, signer and actor. Default of `docstream dev`.
	ModeOpen Mode = "open"
	// ModeRequired refuses a request without a valid token (401) and
	// applies access control in full. Default of `docstream serve`.
	ModeRequired Mode = "required"
)

// ParseMode reads a --auth-mode value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeOpen, ModeRequired:
		return m, nil
	}
	return "", fmt.Errorf("auth mode %q: want open or required", s)
}

// Kind is what sort of caller a principal is.
type Kind string

const (
	KindAnonymous Kind = "anonymous" // no credential (open mode only)
	KindUser      Kind = "user"      // a person, from a JWT
	KindAPIKey    Kind = "apikey"    // a machine, from an API key
	KindService   Kind = "service"   // another docstream service acting for itself
)

// Principal is who a request acts as.
type Principal struct {
	Kind Kind
	// Subject identifies the principal within its kind: a JWT's sub, an
	// API key's id, a service's name. Empty for anonymous.
	Subject string
	// Email counts for shares and invitations only when EmailVerified.
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	// Admin sees and may change everything and manages API keys.
	Admin bool
	// Scopes cap what an API key may do; nil means no cap (people).
	Scopes []Scope
}

// Anonymous is the principal of a request without a credential.
var Anonymous = Principal{Kind: KindAnonymous}

// IsAnonymous reports whether p carries no identity.
func (p Principal) IsAnonymous() bool { return p.Kind == KindAnonymous || p.Kind == "" }

// Key is the principal's own reader key ("user:<sub>", "apikey:<id>",
// "service:<name>"), the form stored in documents.owner, in
// documents.readers and in documents.shares.grantee. Empty for anonymous.
func (p Principal) Key() string {
	if p.IsAnonymous() || p.Subject == "" {
		return ""
	}
	return string(p.Kind) + ":" + p.Subject
}

// ReaderKeys are every key a share or a documents.readers entry can name
// this principal by: its own key, "group:<g>" for each group, and
// "email:<lower-cased email>" when the email is verified. A document is
// visible to p when its readers hold any of them (or p is an admin).
func (p Principal) ReaderKeys() []string {
	var keys []string
	if k := p.Key(); k != "" {
		keys = append(keys, k)
	}
	for _, g := range p.Groups {
		if g != "" {
			keys = append(keys, GroupKey(g))
		}
	}
	if p.Email != "" && p.EmailVerified {
		keys = append(keys, EmailKey(p.Email))
	}
	return keys
}

// GroupKey and EmailKey name a group and an email the way shares do.
func GroupKey(g string) string     { return "group:" + g }
func EmailKey(email string) string { return "email:" + strings.ToLower(strings.TrimSpace(email)) }

// Scope caps an API key.
type Scope string

const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
	ScopeSign  Scope = "sign"
	ScopeAdmin Scope = "admin"
)

// HasScope reports whether p's scopes allow s (people have no cap).
func (p Principal) HasScope(s Scope) bool {
	return p.Scopes == nil || slices.Contains(p.Scopes, s) || slices.Contains(p.Scopes, ScopeAdmin)
}

// Level is what a share grants on one document.
type Level string

const (
	LevelView Level = "view" // read metadata, content, stats, signatures
	LevelEdit Level = "edit" // and change or delete it
	LevelSign Level = "sign" // and sign it
	LevelOwn  Level = "own"  // everything, including sharing
)

// ParseLevel reads a share level.
func ParseLevel(s string) (Level, error) {
	switch l := Level(s); l {
	case LevelView, LevelEdit, LevelSign, LevelOwn:
		return l, nil
	}
	return "", fmt.Errorf("level %q: want view, edit, sign or own", s)
}

// Allows reports whether holding l permits an action that needs need.
// Every level includes view and own includes everything; edit and sign are
// separate rights (a signer cannot rewrite what they sign, an editor cannot
// sign in someone's place).
func (l Level) Allows(need Level) bool {
	return l == need || l == LevelOwn || need == LevelView && l != ""
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal ctx carries, or Anonymous.
func FromContext(ctx context.Context) Principal {
	if p, ok := ctx.Value(ctxKey{}).(Principal); ok {
		return p
	}
	return Anonymous
}

// APIKeyPrefix starts every API key ("dsk_<key id>_<secret>"), so a bearer
// credential is told apart from a JWT without trying to parse it.
const APIKeyPrefix = "dsk_"

// IsAPIKey reports whether a bearer credential is an API key.
func IsAPIKey(raw string) bool { return strings.HasPrefix(raw, APIKeyPrefix) }

// KeyVerifier checks an API key presented as a bearer credential (REST
// Authorization header, gRPC metadata, WebSocket subprotocol) and returns
// the principal it acts as (KindAPIKey, capped by its scopes). An unknown,
// malformed or revoked key is an apperr Unauthenticated error.
type KeyVerifier interface {
	VerifyKey(ctx context.Context, raw string) (Principal, error)
}

// KeyExpiryVerifier is a KeyVerifier that also tells when a key expires
// (zero: never). The Authenticator uses it when the verifier has it, so
// that a WebSocket opened with a key that expires is closed when it does,
// as one opened with a JWT is.
type KeyExpiryVerifier interface {
	VerifyKeyExpiry(ctx context.Context, raw string) (Principal, time.Time, error)
}
