// Package webapp is docstream's browser application: plain ES modules and
// CSS embedded in the binary (no build step, no Node toolchain), served by
// the gateway at / (the document list) and under /app/ (its other pages and
// its assets), so that no page path can shadow an API path: an unknown API
// path stays a JSON 404.
//
// Every answer carries a strict Content-Security-Policy: scripts, styles,
// workers and fonts from this origin only, no inline script or style, no
// eval, no plugins, not framable; connections to this origin (the API and
// the WebSockets) and to the configured OpenID Connect issuer only. The
// application never renders a document's bytes as HTML: previews are made
// from safe types only (PDF through the vendored pdf.js, images, plain
// text as text), untrusted strings are set as text nodes, never markup.
//
// The browser reads its settings (auth mode, whether the dev token issuer
// exists, the OIDC issuer and client) from GET /app/config.json.
package webapp

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/httpx"
)

//go:embed static
var static embed.FS

// Prefix is where the application's pages and assets live; / is its home
// page (the document list).
const Prefix = "/app/"

// Config is the web application's settings.
type Config struct {
	// Enabled serves the application from the gateway.
	Enabled bool
	// OIDCIssuer is the OpenID Connect issuer the browser signs in with
	// (authorization code + PKCE); empty: no OIDC sign-in.
	OIDCIssuer string
	// OIDCClientID is the application's client id at OIDCIssuer (a public
	// client: PKCE, no secret).
	OIDCClientID string
	// OIDCScopes are the scopes asked for.
	OIDCScopes string

	// Set by the wiring, not flags: what the browser is told.
	AuthMode string // open or required
	Dev      bool   // GET /auth/token exists
}

// DefaultConfig is Config when nothing is set: on, no OIDC.
func DefaultConfig() Config {
	return Config{Enabled: true, OIDCScopes: "openid profile email"}
}

// RegisterFlags registers the web application's flags, defaulting to c's
// values.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&c.Enabled, "webapp", c.Enabled, "serve the web application from the gateway at / and /app/ (false: the gateway serves the API only)")
	fs.StringVar(&c.OIDCIssuer, "webapp-oidc-issuer", c.OIDCIssuer, "OpenID Connect issuer URL the web application signs in with (authorization code + PKCE); also allowed by its Content-Security-Policy's connect-src; empty: no OIDC sign-in")
	fs.StringVar(&c.OIDCClientID, "webapp-oidc-client-id", c.OIDCClientID, "the web application's client id at --webapp-oidc-issuer (a public client, no secret)")
	fs.StringVar(&c.OIDCScopes, "webapp-oidc-scopes", c.OIDCScopes, "scopes the web application asks the OIDC issuer for")
}

// Validate refuses settings the application cannot run with.
func (c *Config) Validate() error {
	if c.OIDCIssuer == "" {
		return nil
	}
	if _, err := issuerOrigin(c.OIDCIssuer); err != nil {
		return fmt.Errorf("--webapp-oidc-issuer: %v", err)
	}
	if c.OIDCClientID == "" {
		return fmt.Errorf("--webapp-oidc-client-id is required with --webapp-oidc-issuer")
	}
	return nil
}

// issuerOrigin is the scheme://host[:port] of an issuer URL, as CSP
// source expressions name it.
func issuerOrigin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

// CSP is the Content-Security-Policy of every answer, with the OIDC
// issuer's origin (if any) allowed to be connected to. 'self' in
// connect-src covers the same origin's ws:/wss: (CSP Level 3).
func CSP(oidcIssuer string) string {
	connect := "'self'"
	if o, err := issuerOrigin(oidcIssuer); err == nil {
		connect += " " + o
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		// Previews and the drawn signature are blob: and data: images
		// made by the application itself.
		"img-src 'self' blob: data:",
		"font-src 'self'",
		"connect-src " + connect,
		// pdf.js renders in its worker, loaded from this origin.
		"worker-src 'self'",
		"manifest-src 'self'",
		"object-src 'none'",
		"frame-src 'none'",
		"frame-ancestors 'none'",
		"base-uri 'none'",
		"form-action 'self'",
	}, "; ")
}

// pages are the application's page paths under Prefix that answer with
// index.html (the router in js/main.js draws them). A trailing slash
// stands for one more non-empty segment (an id, an invitation token).
var pages = []string{"documents/", "invitations/", "search", "ops", "signin", "callback", "admin/keys", "admin/webhooks"}

// InvitationPage is the page a signing invitation's mailed link opens
// (Prefix + "invitations/{token}"): the recipient's page, which works
// without an account in every auth mode (the token is the credential
// its API calls carry). internal/signature builds its links with it.
const InvitationPage = Prefix + "invitations/"

// Handler serves the application: / and every page under Prefix answer
// index.html, Prefix+"config.json" the browser's settings, anything else
// under Prefix an embedded asset or a JSON 404.
func Handler(c Config) http.Handler {
	assets, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	index, err := fs.ReadFile(assets, "index.html")
	if err != nil {
		panic(err)
	}
	settings, err := json.Marshal(browserConfig(c))
	if err != nil {
		panic(err)
	}
	csp := CSP(c.OIDCIssuer)
	files := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			httpx.RespondErr(w, r, nil, apperr.E(apperr.MethodNotAllowed, "method %s is not allowed on %s (allowed: GET, HEAD)", r.Method, r.URL.Path))
			return
		}
		rest, under := strings.CutPrefix(r.URL.Path, Prefix)
		switch {
		case r.URL.Path == "/" || isPage(rest) && under:
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
			if r.Method == http.MethodGet {
				w.Write(index)
			}
		case under && rest == "config.json":
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-cache")
			if r.Method == http.MethodGet {
				w.Write(settings)
			}
		case under && rest != "" && rest != "index.html" && !strings.HasSuffix(rest, "/") && exists(assets, rest):
			// Assets change with the binary: revalidate (ETag-less embed
			// files answer If-Modified-Since with the build's zero time,
			// so no-cache keeps a new binary's assets fresh).
			h.Set("Cache-Control", "no-cache")
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/" + rest
			files.ServeHTTP(w, r2)
		default:
			httpx.RespondErr(w, r, nil, apperr.E(apperr.NotFound, "no route for %s", r.URL.Path))
		}
	})
}

func isPage(rest string) bool {
	for _, p := range pages {
		if prefix, ok := strings.CutSuffix(p, "/"); ok {
			// documents/{id}: one more segment, not empty.
			if id, found := strings.CutPrefix(rest, prefix+"/"); found && id != "" && !strings.Contains(id, "/") {
				return true
			}
		} else if rest == p {
			return true
		}
	}
	return false
}

func exists(fsys fs.FS, name string) bool {
	name = path.Clean(name)
	if !fs.ValidPath(name) {
		return false
	}
	st, err := fs.Stat(fsys, name)
	return err == nil && !st.IsDir()
}

// Settings is GET /app/config.json: what the browser needs to sign in.
type Settings struct {
	AuthMode string `json:"auth_mode"`
	// DevTokens: GET /auth/token issues a token for any user (docstream dev).
	DevTokens bool  `json:"dev_tokens"`
	OIDC      *OIDC `json:"oidc,omitempty"`
}

// OIDC is the OpenID Connect client the browser acts as.
type OIDC struct {
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	Scopes   string `json:"scopes"`
	// RedirectPath is the callback page, under Prefix (never under /auth,
	// which is the realtime service's).
	RedirectPath string `json:"redirect_path"`
}

func browserConfig(c Config) Settings {
	s := Settings{AuthMode: c.AuthMode, DevTokens: c.Dev}
	if c.OIDCIssuer != "" {
		s.OIDC = &OIDC{Issuer: c.OIDCIssuer, ClientID: c.OIDCClientID, Scopes: c.OIDCScopes, RedirectPath: Prefix + "callback"}
	}
	return s
}
