package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docstream/docstream/internal/auth"
)

// cliIn runs the CLI with its own environment (a shared config dir).
func cliIn(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return out.String(), errb.String(), err
}

// login stores the token 0600 in the config dir; every user command then
// sends it as a bearer token, and --token (or DOCSTREAM_TOKEN) wins.
func TestLoginStoresTheTokenAndEveryCommandSendsIt(t *testing.T) {
	srv, seen := fakeGateway(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /documents":  answer(200, `[]`),
		"GET /auth/token": answer(200, `{"access_token":"dev-issued","token_type":"bearer","user_id":"alice","email":""}`),
	})
	dir := t.TempDir()
	env := map[string]string{"DOCSTREAM_SERVER": srv.URL, "DOCSTREAM_CONFIG_DIR": dir}
	if _, _, err := cliIn(t, env, "doc", "list"); err != nil {
		t.Fatal(err)
	}
	if a := seen()[0].Authorization; a != "" {
		t.Fatalf("sent %q before login", a)
	}
	if _, _, err := cliIn(t, env, "login", "--token", "stored-token"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, _, err := cliIn(t, env, "doc", "list"); err != nil {
		t.Fatal(err)
	}
	if a := seen()[1].Authorization; a != "Bearer stored-token" {
		t.Fatalf("after login sent %q", a)
	}
	env["DOCSTREAM_TOKEN"] = "env-token"
	if _, _, err := cliIn(t, env, "doc", "list"); err != nil {
		t.Fatal(err)
	}
	if a := seen()[2].Authorization; a != "Bearer env-token" {
		t.Fatalf("with DOCSTREAM_TOKEN sent %q", a)
	}
	if _, _, err := cliIn(t, env, "doc", "list", "--token", "flag-token"); err != nil {
		t.Fatal(err)
	}
	if a := seen()[3].Authorization; a != "Bearer flag-token" {
		t.Fatalf("with --token sent %q", a)
	}
	delete(env, "DOCSTREAM_TOKEN")
	// --dev asks the development issuer.
	if _, _, err := cliIn(t, env, "login", "--dev", "--user", "alice", "--groups", "legal,ops", "--admin"); err != nil {
		t.Fatal(err)
	}
	if q := seen()[4].Query; q != "admin=true&groups=legal%2Cops&user_id=alice" {
		t.Fatalf("dev issuer query %s", q)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "token"))
	if strings.TrimSpace(string(b)) != "dev-issued" {
		t.Fatalf("stored %q", b)
	}
	// logout forgets it: the next command sends no token; a second logout
	// is no error.
	if out, _, err := cliIn(t, env, "logout"); err != nil || !strings.Contains(out, "token removed") {
		t.Fatalf("logout: %q %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "token")); !os.IsNotExist(err) {
		t.Fatalf("the token file after logout: %v", err)
	}
	if _, _, err := cliIn(t, env, "doc", "list"); err != nil {
		t.Fatal(err)
	}
	if a := seen()[5].Authorization; a != "" {
		t.Fatalf("sent %q after logout", a)
	}
	if out, _, err := cliIn(t, env, "logout"); err != nil || !strings.Contains(out, "not logged in") {
		t.Fatalf("a second logout: %q %v", out, err)
	}
}

// token mint signs with the deployment's secret and settings: the token
// verifies with an authenticator of the same configuration.
func TestTokenMintVerifies(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	env := map[string]string{"AUTH_JWT_SECRET": secret, "AUTH_JWT_ISSUER": "acme"}
	out, _, err := cliIn(t, env, "token", "mint", "--subject", "bob", "--email", "bob@example.com", "--groups", "legal", "--admin", "--ttl", "1h")
	if err != nil {
		t.Fatal(err)
	}
	cfg := auth.DefaultConfig()
	cfg.JWTSecret, cfg.Issuer = secret, "acme"
	a, err := auth.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(context.Background(), strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	if p.Key() != "user:bob" || !p.Admin || !p.EmailVerified || p.Groups[0] != "legal" {
		t.Fatalf("principal %+v", p)
	}
	if _, _, err := cliIn(t, map[string]string{}, "token", "mint", "--subject", "bob"); err == nil || !strings.Contains(err.Error(), "--auth-jwt-secret") {
		t.Fatalf("mint without a secret: %v", err)
	}
}
