package webhooks_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/cdc/cdctest"
	"github.com/docstream/docstream/internal/testenv"
	"github.com/docstream/docstream/internal/webhooks"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is the change stream (PostgreSQL, the CDC engine, NATS) and a
// configuration for webhooks targets over it.
type env struct {
	*cdctest.Pipeline
	cfg webhooks.Config
	bus bus.Bus // the bus targets follow (the pipeline's NATS unless set)
}

// newEnv starts the change stream; tune adjusts the targets' config.
// Retries are fast so that tests spend no time waiting out backoffs.
func newEnv(t testing.TB, tune func(*webhooks.Config)) *env {
	t.Helper()
	cfg := testConfig(t, tune)
	p := cdctest.Start(t)
	return &env{Pipeline: p, cfg: cfg, bus: p.Bus}
}

// testConfig is the targets' configuration; tune adjusts it.
func testConfig(t testing.TB, tune func(*webhooks.Config)) webhooks.Config {
	t.Helper()
	cfg := webhooks.DefaultConfig()
	cfg.SecretKey = webhooks.NewKey()
	cfg.AllowPrivate = true // receivers are on loopback
	cfg.RetryFirst, cfg.RetryMax = 50*time.Millisecond, 300*time.Millisecond
	cfg.Poll = 50 * time.Millisecond
	cfg.Timeout = 20 * time.Second
	cfg.Lease = 30 * time.Second
	if tune != nil {
		tune(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// target is one running webhooks target with its own database pool.
type target struct {
	s      *webhooks.Sender
	pool   *pgxpool.Pool
	api    string // base URL of its HTTP edge
	cancel context.CancelFunc
	done   chan struct{}
}

// start runs a webhooks target (fan-out, workers, HTTP edge) until the
// test ends or stop.
func (e *env) start(t testing.TB, authn *auth.Authenticator) *target {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), e.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.Auth = authn
	s, err := webhooks.New(webhooks.NewStore(pool), e.bus, cfg, testLog())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler(nil))
	ctx, cancel := context.WithCancel(context.Background())
	tg := &target{s: s, pool: pool, api: srv.URL, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(tg.done)
		if err := s.Run(ctx); err != nil {
			t.Errorf("webhooks target: %v", err)
		}
	}()
	t.Cleanup(func() { tg.stop(); srv.Close(); pool.Close() })
	// The fan-out's cursor exists once the target follows the stream:
	// every change committed after it is delivered.
	testenv.WaitFor(t, "the fan-out cursor", func() bool {
		var n int
		_ = e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM webhooks.cursor`).Scan(&n)
		return n >= 1
	})
	return tg
}

func (tg *target) stop() {
	tg.cancel()
	<-tg.done
}

// createEndpoint registers url for events through the API.
func (tg *target) createEndpoint(t testing.TB, url string, events []string, header ...string) api.CreatedWebhook {
	t.Helper()
	var out api.CreatedWebhook
	resp := testenv.Do(t, "POST", tg.api+"/webhooks", api.CreateWebhookRequest{URL: url, Events: events}, &out, header...)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /webhooks: %d", resp.StatusCode)
	}
	return out
}

// hit is one request a receiver got.
type hit struct {
	ID, Timestamp, Signature string
	Header                   http.Header
	Body                     []byte
	Payload                  api.WebhookPayload
	Status                   int // what the receiver answered
}

// receiver is an HTTP endpoint on loopback that records every request and
// answers what answer says for the n-th (0-based) request.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	hits   []hit
	answer func(n int, h hit) int
}

func newReceiver(t *testing.T, answer func(n int, h hit) int) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := hit{ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"),
			Signature: r.Header.Get("webhook-signature"), Header: r.Header.Clone(), Body: body}
		_ = json.Unmarshal(body, &h.Payload)
		rc.mu.Lock()
		n := len(rc.hits)
		rc.mu.Unlock()
		h.Status = http.StatusOK
		if rc.answer != nil {
			h.Status = rc.answer(n, h)
		}
		rc.mu.Lock()
		rc.hits = append(rc.hits, h)
		rc.mu.Unlock()
		w.WriteHeader(h.Status)
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(rc.Close)
	return rc
}

// all returns the requests so far.
func (rc *receiver) all() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hit(nil), rc.hits...)
}

// accepted returns the requests answered 2xx, in order.
func (rc *receiver) accepted() []hit {
	var out []hit
	for _, h := range rc.all() {
		if h.Status >= 200 && h.Status < 300 {
			out = append(out, h)
		}
	}
	return out
}

// insert creates a document row (the CDC engine turns it into an event)
// and returns its id.
func (e *env) insert(t *testing.T, title string, readers ...string) string {
	t.Helper()
	var id string
	if err := e.Pool.QueryRow(context.Background(), "SELECT gen_random_uuid()::text").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if readers == nil {
		readers = []string{}
	}
	e.Exec(t, `INSERT INTO documents.documents (id, title, content_type, content_size, s3_key, status, created_by, readers)
		VALUES ($1::uuid, $2, 'text/plain', 5, $1::text || '/content', 'created', 'john.doe@company.com', $3)`, id, title, readers)
	return id
}

// docIDs lists the document ids of hits, in order.
func docIDs(hs []hit) []string {
	var out []string
	for _, h := range hs {
		if h.Payload.Data.Document != nil {
			out = append(out, h.Payload.Data.Document.ID)
		}
	}
	return out
}
