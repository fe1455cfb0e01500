package document

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	blobstore "github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is one document service over a fresh database, the package's Redis
// and a file bucket in a temp dir.
type env struct {
	srv    *httptest.Server
	svc    *Service
	pool   *pgxpool.Pool
	rdb    *redis.Client
	bucket *blobstore.Bucket
	dbURL  string
	blobs  string // the bucket's directory
}

func newEnv(t testing.TB) *env {
	return newEnvWith(t, testenv.Database(t), noProxies())
}

func newEnvWith(t testing.TB, dbURL string, cfg Config) *env {
	t.Helper()
	return newEnvAt(t, dbURL, t.TempDir(), cfg)
}

// newEnvAt is a service over dbURL and the bucket under blobDir: a second
// instance of another env's service, or the same one restarted.
func newEnvAt(t testing.TB, dbURL, blobDir string, cfg Config) *env {
	t.Helper()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, dbURL, 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	rdb := redis.NewClient(&redis.Options{Addr: testenv.Redis().Addr(), DialTimeout: 250 * time.Millisecond,
		ReadTimeout: 250 * time.Millisecond, WriteTimeout: 250 * time.Millisecond, MaxRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	bucket, err := blobstore.Open(ctx, "file://"+filepath.ToSlash(blobDir), Bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	log := logging.Discard()
	if os.Getenv("TEST_LOG") != "" {
		log = logging.New(os.Stderr, "debug")
	}
	svc := NewService(NewStore(pool), bucket, NewCache(rdb, time.Minute, log), log)
	srv := httptest.NewServer(NewServer(svc, cfg, log))
	t.Cleanup(srv.Close)
	return &env{srv: srv, svc: svc, pool: pool, rdb: rdb, bucket: bucket, dbURL: dbURL, blobs: blobDir}
}

// do sends a request to the service (see testenv.Do).
func (e *env) do(t testing.TB, method, path string, body any, out any, header ...string) *http.Response {
	t.Helper()
	return testenv.Do(t, method, e.srv.URL+path, body, out, header...)
}

func (e *env) create(t testing.TB, title, content string) Document {
	t.Helper()
	var d Document
	resp := e.do(t, "POST", "/documents", map[string]any{"title": title, "content": content, "created_by": "john.doe@company.com"}, &d)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: status %d", resp.StatusCode)
	}
	return d
}

func testDB(t *testing.T) string { return testenv.Database(t) }

// noProxies is the default configuration trusting no X-Forwarded-For.
func noProxies() Config {
	c := DefaultConfig()
	c.TrustedProxies = nil
	return c
}

// withMaxUpload is noProxies with a smaller upload cap.
func withMaxUpload(n int64) Config {
	c := noProxies()
	c.MaxUpload = n
	return c
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// tryCreate and tryStatus are goroutine-safe (no t.Fatal) request helpers.
func (e *env) tryCreate(title string) (Document, int) {
	var d Document
	body, _ := json.Marshal(map[string]string{"title": title, "content": "pooled content", "created_by": "pool@company.com"})
	resp, err := http.Post(e.srv.URL+"/documents", "application/json", bytes.NewReader(body))
	if err != nil {
		return d, 0
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&d)
	return d, resp.StatusCode
}

func (e *env) tryStatus(method, path, body string) int {
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
