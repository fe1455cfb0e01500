// Package localoidc is a local OpenID Connect provider for tests (see OIDC),
// apart from package localstack so that the docstream binary, which uses
// localstack for `docstream dev`, does not link an identity provider.
package localoidc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// OIDC is a local OpenID Connect provider (github.com/zitadel/oidc/v3's
// op, with its example in-memory storage and username/password login
// page) on a free loopback port, for tests of sign-in: the authorization
// code flow with PKCE (S256) for a public client, JWT access tokens signed
// with an RS256 key published at JWKSURL, and the users it is given.
//
// It runs in this process (no binary to install). It is a test fixture:
// plain HTTP, a fixed token-encryption key, users with plain passwords.
//
// Endpoints (Issuer + …): /.well-known/openid-configuration, /auth
// (authorize), /oauth/token, /keys (JWKS), /userinfo, and the login form
// at /login/username (fields username, password; the form carries the
// auth request's id).
//
// Access tokens are JWTs whose aud holds the client id, iss the issuer,
// sub the user's Subject, plus email, email_verified, name and groups
// claims, so docstream verifies them with --auth-jwks-url=JWKSURL
// --auth-jwt-issuer=Issuer --auth-jwt-audience=ClientID.
type OIDC struct {
	// Issuer is http://127.0.0.1:<port>.
	Issuer string
	// ClientID is the public client (no secret, PKCE required).
	ClientID string
	srv      *http.Server
	done     chan error
}

// OIDCUser is a user who can sign in at the provider's login page.
type OIDCUser struct {
	Subject  string // sub claim (also the login's user id)
	Username string // typed on the login page
	Password string
	Email    string // verified
	Name     string
	Groups   []string
}

// OIDCConfig configures Start.
type OIDCConfig struct {
	// ClientID defaults to "docstream-web".
	ClientID string
	// RedirectURIs are the client's; a loopback one (http://127.0.0.1/…)
	// matches on any port (RFC 8252 7.3), so a test's gateway on a free
	// port needs no registration of its own. Default
	// http://127.0.0.1/app/callback.
	RedirectURIs []string
	// Users default to OIDCTestUser.
	Users []OIDCUser
}

// OIDCTestUser is the default user: alice, password "alice-password".
var OIDCTestUser = OIDCUser{Subject: "alice", Username: "alice", Password: "alice-password",
	Email: "alice@example.com", Name: "Alice Example", Groups: []string{"staff"}}

// Start starts a provider; Close stops it.
func Start(cfg OIDCConfig) (*OIDC, error) {
	if cfg.ClientID == "" {
		cfg.ClientID = "docstream-web"
	}
	if len(cfg.RedirectURIs) == 0 {
		cfg.RedirectURIs = []string{"http://127.0.0.1/app/callback"}
	}
	if len(cfg.Users) == 0 {
		cfg.Users = []OIDCUser{OIDCTestUser}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	issuer := "http://" + ln.Addr().String()
	users := oidcUsers{byID: map[string]*storage.User{}, extra: map[string]OIDCUser{}}
	for _, u := range cfg.Users {
		if u.Subject == "" || u.Username == "" {
			ln.Close()
			return nil, errors.New("localoidc: an OIDC user needs a subject and a username")
		}
		first, last, _ := strings.Cut(u.Name, " ")
		users.byID[u.Subject] = &storage.User{ID: u.Subject, Username: u.Username, Password: u.Password,
			FirstName: first, LastName: last, Email: u.Email, EmailVerified: u.Email != ""}
		users.extra[u.Subject] = u
	}
	client := storage.NativeClient(cfg.ClientID, cfg.RedirectURIs...)
	st := &oidcStorage{Storage: storage.NewStorageWithClients(users, map[string]*storage.Client{cfg.ClientID: client}), users: users}
	// A nil logger leaves the process's default logger alone.
	router := exampleop.SetupServer(issuer, st, nil, false)
	o := &OIDC{Issuer: issuer, ClientID: cfg.ClientID, done: make(chan error, 1),
		srv: &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}}
	go func() { o.done <- o.srv.Serve(ln) }()
	return o, nil
}

// JWKSURL is where the provider publishes its signing keys.
func (o *OIDC) JWKSURL() string { return o.Issuer + "/keys" }

// Close stops the provider.
func (o *OIDC) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := o.srv.Shutdown(ctx)
	if serr := <-o.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// oidcUsers is storage.UserStore over the configured users.
type oidcUsers struct {
	byID  map[string]*storage.User
	extra map[string]OIDCUser
}

func (u oidcUsers) GetUserByID(id string) *storage.User { return u.byID[id] }

func (u oidcUsers) GetUserByUsername(name string) *storage.User {
	for _, x := range u.byID {
		if x.Username == name {
			return x
		}
	}
	return nil
}

func (u oidcUsers) ExampleClientID() string { return "" }

// oidcStorage is the example storage with JWT access tokens for the
// client (the example's are opaque, which docstream cannot verify by
// JWKS) carrying the user's email, name and groups.
type oidcStorage struct {
	*storage.Storage
	users oidcUsers
}

func (s *oidcStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return jwtClient{c}, nil
}

func (s *oidcStorage) GetPrivateClaimsFromScopes(ctx context.Context, userID, clientID string, scopes []string) (map[string]any, error) {
	claims, err := s.Storage.GetPrivateClaimsFromScopes(ctx, userID, clientID, scopes)
	if err != nil {
		return nil, err
	}
	u, ok := s.users.extra[userID]
	if !ok {
		return claims, nil
	}
	if claims == nil {
		claims = map[string]any{}
	}
	if u.Email != "" {
		claims["email"], claims["email_verified"] = u.Email, true
	}
	if u.Name != "" {
		claims["name"] = u.Name
	}
	if len(u.Groups) > 0 {
		claims["groups"] = u.Groups
	}
	return claims, nil
}

// jwtClient is a client whose access tokens are JWTs.
type jwtClient struct{ op.Client }

func (jwtClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

// String names the provider in test logs.
func (o *OIDC) String() string {
	return fmt.Sprintf("oidc provider %s (client %s)", o.Issuer, o.ClientID)
}
