package extractor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	blobstore "github.com/docstream/docstream/internal/blob"
	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/extract"
	"github.com/docstream/docstream/internal/extractor"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/search/bleve"
	"github.com/docstream/docstream/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// accessEnv is the extractor's HTTP edge and the document service in
// required mode, both behind the real authenticator (HS256 tokens), over
// real PostgreSQL, NATS and object storage, as `docstream serve` wires
// them.
type accessEnv struct {
	docs, ext string // base URLs
	tok       map[string]string
	bucket    *blobstore.Bucket
	store     *extractor.Store
	bus       *busnats.Bus
	pool      *pgxpool.Pool
	authn     *auth.Authenticator
}

func newAccessEnv(t *testing.T) *accessEnv {
	t.Helper()
	ctx := context.Background()
	log := logging.Discard()
	acfg := auth.DefaultConfig()
	acfg.Mode = string(auth.ModeRequired)
	acfg.JWTSecret = strings.Repeat("0123456789", 4)
	authn, err := auth.New(ctx, acfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := map[string]string{}
	for _, u := range []struct {
		sub   string
		admin bool
	}{{"alice", false}, {"bob", false}, {"carol", false}, {"root", true}} {
		raw, _, err := auth.Mint(acfg, auth.TokenRequest{Subject: u.sub, Email: u.sub + "@company.com", EmailVerified: true, Admin: u.admin, TTL: time.Hour}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tok[u.sub] = raw
	}

	pool, err := postgres.Open(ctx, testenv.Database(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	bucket, err := blobstore.Open(ctx, "file://"+filepath.ToSlash(testenv.TempDir(t)), extractor.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	ns, err := localstack.StartNATSServer(ctx, testenv.TempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	b, err := busnats.Connect(ctx, ns.URL(), busnats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: testenv.Redis().Addr()})
	t.Cleanup(func() { rdb.Close() })

	svc := document.NewService(document.NewStore(pool), bucket, document.NewCache(rdb, time.Minute, log), log)
	svc.SetMode(auth.ModeRequired)
	dcfg := document.DefaultConfig()
	dcfg.TrustedProxies = nil
	dcfg.Auth = authn
	docs := httptest.NewServer(document.NewServer(svc, dcfg, log))
	t.Cleanup(docs.Close)

	xcfg := extractor.DefaultConfig()
	xcfg.Auth = authn
	store := extractor.NewStore(pool)
	// Not Run: no worker takes the queued rows, so what each route
	// answers depends on the caller only.
	ext := httptest.NewServer(extractor.New(store, b, bucket, xcfg, log).Handler(nil))
	t.Cleanup(ext.Close)
	return &accessEnv{docs: docs.URL, ext: ext.URL, tok: tok, bucket: bucket, store: store, bus: b, pool: pool, authn: authn}
}

// as sends a request as who ("": no credential) and returns the status
// and body.
func (e *accessEnv) as(t *testing.T, who, method, url string, body any) (int, string) {
	t.Helper()
	var h []string
	if who != "" {
		h = []string{"Authorization", "Bearer " + e.tok[who]}
	}
	resp := testenv.Do(t, method, url, body, nil, h...)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func pngOf(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The access table of the extractor's routes in required mode: alice owns
// a document she shares with carol for viewing; bob has no share. A
// document the caller may not view does not exist for it (404, the very
// body a missing document gets), one it may view but not change is 403 for
// a re-run, the bulk routes are for admins, and no credential is 401.
func TestExtractorRoutesFollowDocumentPermissions(t *testing.T) {
	e := newAccessEnv(t)
	ctx := context.Background()
	var d api.Document
	if resp := testenv.Do(t, "POST", e.docs+"/documents", map[string]any{"title": "Alice's scan", "content": "private words", "created_by": "alice@company.com"},
		&d, "Authorization", "Bearer "+e.tok["alice"]); resp.StatusCode != http.StatusCreated || d.Owner != "user:alice" {
		t.Fatalf("create: %d %+v", resp.StatusCode, d)
	}
	if code, b := e.as(t, "alice", "POST", e.docs+"/documents/"+d.ID+"/shares", api.ShareRequest{Grantee: "user:carol", Level: "view"}); code != http.StatusOK {
		t.Fatalf("share: %d %s", code, b)
	}
	// What the extractor would have made: a row and a thumbnail.
	if _, err := e.store.Enqueue(ctx, d.ID, strings.Repeat("ab", 32), "pdf", api.ExtractionPending); err != nil {
		t.Fatal(err)
	}
	if err := e.bucket.WriteAll(ctx, extractor.ThumbKey(d.ID), pngOf(t), nil); err != nil {
		t.Fatal(err)
	}
	const missing = "0b9d3e34-7f6a-4c1e-9a51-3f2d7c1e8a90"

	doc := func(id, suffix string) string { return e.ext + "/documents/" + id + suffix }
	rerun := api.ExtractRequest{Failed: true}
	cases := []struct {
		who, method, url string
		body             any
		want             int
	}{
		{"alice", "GET", doc(d.ID, "/thumbnail"), nil, 200},
		{"alice", "GET", doc(d.ID, "/extraction"), nil, 200},
		{"alice", "POST", doc(d.ID, "/extract"), nil, 202},
		{"alice", "POST", e.ext + "/extractions/rerun", rerun, 403},
		{"alice", "GET", e.ext + "/extractions/queue", nil, 403},

		{"bob", "GET", doc(d.ID, "/thumbnail"), nil, 404},
		{"bob", "GET", doc(d.ID, "/extraction"), nil, 404},
		{"bob", "POST", doc(d.ID, "/extract"), nil, 404},
		{"bob", "POST", e.ext + "/extractions/rerun", rerun, 403},
		{"bob", "GET", e.ext + "/extractions/queue", nil, 403},

		{"carol", "GET", doc(d.ID, "/thumbnail"), nil, 200},
		{"carol", "GET", doc(d.ID, "/extraction"), nil, 200},
		{"carol", "POST", doc(d.ID, "/extract"), nil, 403},
		{"carol", "POST", e.ext + "/extractions/rerun", rerun, 403},
		{"carol", "GET", e.ext + "/extractions/queue", nil, 403},

		{"root", "GET", doc(d.ID, "/thumbnail"), nil, 200},
		{"root", "GET", doc(d.ID, "/extraction"), nil, 200},
		{"root", "POST", doc(d.ID, "/extract"), nil, 202},
		{"root", "POST", e.ext + "/extractions/rerun", rerun, 200},
		{"root", "GET", e.ext + "/extractions/queue", nil, 200},

		{"", "GET", doc(d.ID, "/thumbnail"), nil, 401},
		{"", "GET", doc(d.ID, "/extraction"), nil, 401},
		{"", "POST", doc(d.ID, "/extract"), nil, 401},
		{"", "POST", e.ext + "/extractions/rerun", rerun, 401},
		{"", "GET", e.ext + "/extractions/queue", nil, 401},
	}
	for _, c := range cases {
		who := c.who
		if who == "" {
			who = "anonymous"
		}
		t.Run(who+" "+c.method+" "+strings.TrimPrefix(c.url, e.ext), func(t *testing.T) {
			code, body := e.as(t, c.who, c.method, c.url, c.body)
			if code != c.want {
				t.Fatalf("%d %.300q, want %d", code, body, c.want)
			}
			switch {
			case code == 404:
				// Indistinguishable from a document that does not exist.
				mcode, mbody := e.as(t, c.who, c.method, strings.Replace(c.url, d.ID, missing, 1), c.body)
				if mcode != 404 || strings.ReplaceAll(body, d.ID, missing) != mbody {
					t.Fatalf("not visible: %s\nmissing: %d %s", body, mcode, mbody)
				}
			case code >= 400:
				for _, leak := range []string{"Alice's scan", "pdf", "private"} {
					if strings.Contains(body, leak) {
						t.Fatalf("%q leaked: %s", leak, body)
					}
				}
			case strings.HasSuffix(c.url, "/thumbnail"):
				if !bytes.HasPrefix([]byte(body), []byte("\x89PNG")) {
					t.Fatalf("not the thumbnail: %q", body)
				}
			case strings.HasSuffix(c.url, "/extraction"), strings.HasSuffix(c.url, "/extract"):
				var x api.Extraction
				if err := json.Unmarshal([]byte(body), &x); err != nil || x.DocumentID != d.ID {
					t.Fatalf("%v %s", err, body)
				}
			}
		})
	}
}

// A search that waits for a document's extraction (wait_for=extraction)
// in required mode: the extractor's Waiter applies the document service's
// view decision, so bob, who may not view alice's document, gets the very
// 404 a missing document gets; carol, who may, waits and is told stale
// while the extraction is pending, and gets a fresh answer once it ended.
func TestAWaitForExtractionFollowsDocumentPermissions(t *testing.T) {
	e := newAccessEnv(t)
	ctx := context.Background()
	var d api.Document
	if resp := testenv.Do(t, "POST", e.docs+"/documents", map[string]any{"title": "Alice's ledger", "content": "ledger words", "created_by": "alice@company.com"},
		&d, "Authorization", "Bearer "+e.tok["alice"]); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %+v", resp.StatusCode, d)
	}
	if code, b := e.as(t, "alice", "POST", e.docs+"/documents/"+d.ID+"/shares", api.ShareRequest{Grantee: "user:carol", Level: "view"}); code != http.StatusOK {
		t.Fatalf("share: %d %s", code, b)
	}
	if _, err := e.store.Enqueue(ctx, d.ID, d.ContentSHA256, "pdf", api.ExtractionPending); err != nil {
		t.Fatal(err)
	}
	idx, err := bleve.OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	scfg := search.DefaultConfig()
	scfg.Auth, scfg.Mode = e.authn, auth.ModeRequired
	scfg.ExtractionWait = time.Second
	scfg.Extractions = extractor.NewWaiter(e.pool, auth.ModeRequired)
	srv := httptest.NewServer(search.NewServer(idx, scfg, logging.Discard()))
	t.Cleanup(srv.Close)
	const missing = "0b9d3e34-7f6a-4c1e-9a51-3f2d7c1e8a90"
	url := func(id string) string { return srv.URL + "/search?q=ledger&wait_for=extraction&document_id=" + id }

	code, body := e.as(t, "bob", "GET", url(d.ID), nil)
	mcode, mbody := e.as(t, "bob", "GET", url(missing), nil)
	if code != 404 || mcode != 404 || strings.ReplaceAll(body, d.ID, missing) != mbody {
		t.Fatalf("bob: %d %s; missing: %d %s", code, body, mcode, mbody)
	}
	if code, _ := e.as(t, "", "GET", url(d.ID), nil); code != 401 {
		t.Fatalf("anonymous: %d, want 401", code)
	}
	stale := func(who string) bool {
		t.Helper()
		code, body := e.as(t, who, "GET", url(d.ID), nil)
		var r api.SearchResponse
		if code != 200 || json.Unmarshal([]byte(body), &r) != nil {
			t.Fatalf("%s: %d %s", who, code, body)
		}
		return r.Stale
	}
	if !stale("carol") {
		t.Fatal("carol's search did not wait for the pending extraction")
	}
	c, ok, err := e.store.Claim(ctx, time.Minute)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if ok, err := e.store.Finish(ctx, c, api.ExtractionFailed, extract.Result{Status: extract.StatusFailed, Reason: extract.ReasonCorrupt}, time.Millisecond); err != nil || !ok {
		t.Fatalf("finish: %v %v", ok, err)
	}
	// Ended (failed counts): no more waiting for the extraction. The
	// index here has no indexer; say it applied everything, so the answer
	// is fresh once the extraction wait is over.
	if err := idx.SetAppliedLSN(ctx, 1<<62); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"carol", "alice", "root"} {
		if stale(who) {
			t.Fatalf("%s's search after the extraction ended answered stale", who)
		}
	}
}
