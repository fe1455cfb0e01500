package apikey

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is the API keys over a fresh database: the verifier, the service and
// the REST API behind the real authenticator (HS256 tokens for people, the
// verifier for keys; open mode unless newEnvMode says otherwise), with
// every log line captured.
type env struct {
	url     string
	pool    *pgxpool.Pool
	keys    *Verifier
	svc     *Service
	srv     *httptest.Server
	clock   *clock
	logs    *testenv.SyncBuffer
	authCfg auth.Config
	admin   []string // headers of an admin's request
}

// clock is a settable time for the verifier (expiry, cache age).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const testSecret = "apikey-tests-hs256-secret-0123456789"

func newEnv(t *testing.T, cfg Config) *env { return newEnvMode(t, cfg, auth.ModeOpen) }

func newEnvMode(t *testing.T, cfg Config, mode auth.Mode) *env {
	t.Helper()
	url := testenv.Database(t)
	e := &env{url: url, logs: &testenv.SyncBuffer{}, clock: &clock{t: time.Now()}}
	e.pool = open(t, url)
	log := logging.New(e.logs, "debug")
	e.keys = e.verifier(cfg)
	e.authCfg = auth.DefaultConfig()
	e.authCfg.Mode, e.authCfg.JWTSecret, e.authCfg.Log = string(mode), testSecret, log
	authn, err := auth.New(context.Background(), e.authCfg, e.keys)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth = authn
	e.svc = NewService(NewStore(e.pool), e.keys, cfg, log)
	e.srv = httptest.NewServer(NewServer(e.svc, cfg, log))
	t.Cleanup(e.srv.Close)
	e.admin = bearer(e.token(t, "root", true))
	return e
}

// token mints a person's HS256 token the env's authenticator accepts.
func (e *env) token(t *testing.T, subject string, admin bool) string {
	t.Helper()
	tok, _, err := auth.Mint(e.authCfg, auth.TokenRequest{Subject: subject, Admin: admin}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func open(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(context.Background(), url, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// verifier is another verifier over the same database, as another
// instance of a service would run, on the env's clock.
func (e *env) verifier(cfg Config) *Verifier {
	v := NewVerifier(NewStore(e.pool), cfg, logging.New(e.logs, "debug"))
	v.now = e.clock.now
	return v
}

func (e *env) do(t *testing.T, method, path string, body, out any, header ...string) *http.Response {
	t.Helper()
	return testenv.Do(t, method, e.srv.URL+path, body, out, header...)
}

// create makes a key as an admin and returns the answer.
func (e *env) create(t *testing.T, name string, scopes ...string) api.CreatedAPIKey {
	t.Helper()
	var k api.CreatedAPIKey
	resp := e.do(t, "POST", "/apikeys", api.CreateAPIKeyRequest{Name: name, Scopes: scopes}, &k, e.admin...)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create %s: status %d", name, resp.StatusCode)
	}
	return k
}

func bearer(key string) []string { return []string{"Authorization", "Bearer " + key} }

func defaultConfig() Config { return DefaultConfig() }

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return string(b)
}

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(readAll(t, resp)), v); err != nil {
		t.Fatal(err)
	}
}

func testenvDatabase(t testing.TB) string { return testenv.Database(t) }

func discard() *slog.Logger { return logging.Discard() }
