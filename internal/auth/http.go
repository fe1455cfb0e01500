package auth

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/logging"
)

// SubprotocolBearer is the WebSocket subprotocol that carries a credential
// from a browser, whose WebSocket API cannot set an Authorization header.
// The client offers two subprotocols, "bearer" and then the token itself:
//
//	new WebSocket("ws://host:8004/ws/<id>", ["bearer", jwt])
//
// which sends `Sec-WebSocket-Protocol: bearer, <jwt>`. The server selects
// and echoes "bearer" (never the token, so it is not reflected into logs or
// proxies' response headers). A JWT is made of base64url characters and
// dots, all legal in an HTTP token, so it survives as a subprotocol value.
const SubprotocolBearer = "bearer"

// Credential is the credential a request was authenticated with, kept on
// its context so that a service can forward it on the caller's behalf
// (the signature service's gRPC calls). Never log Raw.
type Credential struct {
	Raw string
	// Subprotocol is SubprotocolBearer when the credential came as a
	// WebSocket subprotocol (the handshake must select it), else "".
	Subprotocol string
	// Expires is when the credential stops being valid (zero: unknown,
	// e.g. an API key, which lasts until revoked).
	Expires time.Time
}

// String never shows the credential (a %v in a log line is harmless).
func (c Credential) String() string { return "Credential(redacted)" }

type credKey struct{}

// WithCredential returns ctx carrying c (the middleware and the gRPC
// interceptor set it; tests may too).
func WithCredential(ctx context.Context, c Credential) context.Context {
	return context.WithValue(ctx, credKey{}, c)
}

// CredentialFrom returns the credential ctx's request was authenticated
// with. ok is true when the request went through the middleware or the
// interceptor, even if anonymous (then c.Raw is empty): a context without
// it is background work.
func CredentialFrom(ctx context.Context) (c Credential, ok bool) {
	c, ok = ctx.Value(credKey{}).(Credential)
	return c, ok
}

// publicPaths answer without a credential in every mode: health checks,
// metrics and the development issuer (mounted in dev only).
func public(path string) bool {
	return strings.HasPrefix(path, "/health/") || path == "/metrics" || path == "/auth/token"
}

// Middleware puts the caller's Principal on each request's context
// (WithPrincipal) and its credential (WithCredential), and tags the
// request's log records with the principal's key. A credential is looked
// for in Authorization: Bearer and, on a WebSocket handshake only, in the
// "bearer" subprotocol and ?token=. No credential: 401 in required mode,
// Anonymous in open mode. A credential that does not verify: 401 in both
// modes. Health, metrics and /auth/token are not checked; nor is any path
// starting with one of publicPrefixes (a service's own public routes).
// A nil Authenticator passes every request through as Anonymous.
func (a *Authenticator) Middleware(h http.Handler, publicPrefixes ...string) http.Handler {
	if a == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if public(r.URL.Path) || hasAnyPrefix(r.URL.Path, publicPrefixes) {
			h.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		raw, proto := credentialOf(r)
		if raw == "" {
			if a.mode == ModeRequired {
				httpx.RespondErr(w, r, a.log, errUnauthenticated)
				return
			}
			ctx = WithCredential(WithPrincipal(ctx, Anonymous), Credential{})
			h.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		p, exp, err := a.verify(ctx, raw)
		if err != nil {
			// The cause (why the token was refused) is for the operator
			// at debug; it never holds the token.
			a.log.DebugContext(ctx, "credential refused", "path", httpx.LogPath(r.URL.Path), "err", err)
			httpx.RespondErr(w, r, a.log, err)
			return
		}
		logging.SetPrincipal(ctx, p.Key())
		ctx = WithCredential(WithPrincipal(ctx, p), Credential{Raw: raw, Subprotocol: proto, Expires: exp})
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// credentialOf extracts the raw credential and the subprotocol to echo.
// Query strings and subprotocols are read on WebSocket handshakes only: a
// browser's WebSocket cannot send a header, and a token in the query of
// an ordinary request would end up in every proxy's access log.
func credentialOf(r *http.Request) (raw, subprotocol string) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(rest), ""
		}
	}
	if !isWebSocket(r) {
		return "", ""
	}
	if t := r.URL.Query().Get("token"); t != "" {
		return t, ""
	}
	var protos []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				protos = append(protos, p)
			}
		}
	}
	for i, p := range protos {
		if strings.EqualFold(p, SubprotocolBearer) && i+1 < len(protos) {
			return protos[i+1], SubprotocolBearer
		}
	}
	return "", ""
}

func isWebSocket(r *http.Request) bool {
	for _, v := range r.Header.Values("Upgrade") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "websocket") {
				return true
			}
		}
	}
	return false
}

// AdminOnly is Middleware whose requests must also pass AuthorizeAdmin
// (what names the operation in the refusal): 401 without a credential,
// 403 for one that may not administer.
func (a *Authenticator) AdminOnly(h http.Handler, what string) http.Handler {
	if a == nil {
		return h
	}
	return a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.AuthorizeAdmin(r.Context(), what); err != nil {
			httpx.RespondErr(w, r, a.log, err)
			return
		}
		h.ServeHTTP(w, r)
	}))
}
