package document

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
	"github.com/docstream/docstream/internal/validate"
	pb "github.com/docstream/docstream/proto/documentpb"
)

// Until the authenticator's middleware is wired, these tests put the
// principal on the request themselves: a test-only header (HTTP) or
// metadata key (gRPC) carrying the principal as JSON. What is under test
// is every decision the service takes from auth.FromContext.
const testPrincipal = "x-test-principal"

func principalHeader(p auth.Principal) string {
	b, _ := json.Marshal(p)
	return string(b)
}

func withTestPrincipal(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get(testPrincipal); v != "" {
			var p auth.Principal
			if err := json.Unmarshal([]byte(v), &p); err != nil {
				panic(err)
			}
			r = r.WithContext(auth.WithPrincipal(r.Context(), p))
		}
		h.ServeHTTP(w, r)
	})
}

func testPrincipalInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(testPrincipal); len(v) == 1 {
		var p auth.Principal
		if err := json.Unmarshal([]byte(v[0]), &p); err != nil {
			return nil, err
		}
		ctx = auth.WithPrincipal(ctx, p)
	}
	return h(ctx, req)
}

var (
	alice   = auth.Principal{Kind: auth.KindUser, Subject: "alice", Email: "alice@company.com", EmailVerified: true}
	bob     = auth.Principal{Kind: auth.KindUser, Subject: "bob", Email: "bob@company.com", EmailVerified: true, Groups: []string{"sales"}}
	admin   = auth.Principal{Kind: auth.KindUser, Subject: "root", Email: "root@company.com", EmailVerified: true, Admin: true}
	service = auth.Principal{Kind: auth.KindService, Subject: "signature"}
)

// accessEnv is a document service in required mode, over HTTP and gRPC.
type accessEnv struct {
	*env
	grpc pb.DocumentServiceClient
}

func newAccessEnv(t *testing.T) *accessEnv {
	t.Helper()
	e := newEnv(t)
	e.svc.SetMode(auth.ModeRequired)
	srv := httptest.NewServer(withTestPrincipal(NewServer(e.svc, noProxies(), logging.Discard())))
	t.Cleanup(srv.Close)
	e.srv = srv

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(testPrincipalInterceptor, errorInterceptor(logging.Discard())))
	pb.RegisterDocumentServiceServer(gs, &GRPCServer{docs: e.svc, log: logging.Discard()})
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return &accessEnv{env: e, grpc: pb.NewDocumentServiceClient(cc)}
}

// as sends a request as p and returns the status and body.
func (e *accessEnv) as(t *testing.T, p auth.Principal, method, path string, body any) (int, []byte) {
	t.Helper()
	resp := e.do(t, method, path, body, nil, testPrincipal, principalHeader(p))
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *accessEnv) createAs(t *testing.T, p auth.Principal, title string) Document {
	t.Helper()
	code, b := e.as(t, p, "POST", "/documents", map[string]any{"title": title, "content": "secret terms", "created_by": "someone.else@company.com"})
	if code != http.StatusCreated {
		t.Fatalf("create as %s: %d %s", p.Key(), code, b)
	}
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func (e *accessEnv) share(t *testing.T, by auth.Principal, id, grantee, level string) {
	t.Helper()
	if code, b := e.as(t, by, "POST", "/documents/"+id+"/shares", api.ShareRequest{Grantee: grantee, Level: level}); code != http.StatusOK {
		t.Fatalf("share %s %s: %d %s", grantee, level, code, b)
	}
}

func (e *accessEnv) unshare(t *testing.T, by auth.Principal, id, grantee string) {
	t.Helper()
	if code, b := e.as(t, by, "DELETE", "/documents/"+id+"/shares/"+grantee, nil); code != http.StatusNoContent {
		t.Fatalf("unshare %s: %d %s", grantee, code, b)
	}
}

func asGRPC(p auth.Principal) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), testPrincipal, principalHeader(p))
}

// listed reports whether id is in p's GET /documents.
func (e *accessEnv) listed(t *testing.T, p auth.Principal, id string) bool {
	t.Helper()
	code, b := e.as(t, p, "GET", "/documents?limit=100", nil)
	if code != http.StatusOK {
		t.Fatalf("list: %d %s", code, b)
	}
	var docs []Document
	if err := json.Unmarshal(b, &docs); err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(docs, func(d Document) bool { return d.ID == id })
}

// warm makes sure Redis holds the document with its readers.
func (e *accessEnv) warm(t *testing.T, id string) {
	t.Helper()
	for range 2 {
		if code, b := e.as(t, alice, "GET", "/documents/"+id, nil); code != http.StatusOK {
			t.Fatalf("warm: %d %s", code, b)
		}
	}
	if v, err := e.rdb.Get(context.Background(), docKey(id)).Result(); err != nil || !strings.Contains(v, `"readers"`) {
		t.Fatalf("cache not warm: %q %v", v, err)
	}
}

// The attack table: user B against user A's private document, with the
// cache warm, over REST and gRPC. A document B may not view does not
// exist for B (404 / NOT_FOUND); one B may view but not change is 403 /
// PERMISSION_DENIED.
func TestUserBCannotTouchUserAsPrivateDocument(t *testing.T) {
	e := newAccessEnv(t)
	d := e.createAs(t, alice, "Alice's private contract")
	e.warm(t, d.ID)
	before, _ := e.as(t, alice, "GET", "/documents/"+d.ID+"/stats", nil)
	if before != http.StatusOK {
		t.Fatalf("stats as owner: %d", before)
	}

	rest := []struct {
		method, path string
		body         any
	}{
		{"GET", "/documents/" + d.ID, nil},
		{"GET", "/documents/" + d.ID + "/content", nil},
		{"GET", "/documents/" + d.ID + "/stats", nil},
		{"PATCH", "/documents/" + d.ID, map[string]any{"title": "Bob's now"}},
		{"PATCH", "/documents/" + d.ID, map[string]any{"status": "cancelled"}},
		{"DELETE", "/documents/" + d.ID, nil},
		{"GET", "/documents/" + d.ID + "/shares", nil},
		{"POST", "/documents/" + d.ID + "/shares", api.ShareRequest{Grantee: "user:bob", Level: "own"}},
		{"DELETE", "/documents/" + d.ID + "/shares/user:alice", nil},
	}
	for _, who := range []auth.Principal{bob, service, {Kind: auth.KindAPIKey, Subject: "k1", Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeWrite}}} {
		for _, c := range rest {
			t.Run(who.Key()+" "+c.method+" "+c.path, func(t *testing.T) {
				if code, b := e.as(t, who, c.method, c.path, c.body); code != http.StatusNotFound {
					t.Fatalf("%d %s, want 404", code, b)
				} else if !strings.Contains(string(b), "document "+d.ID+" not found") {
					t.Fatalf("the refusal must read like a missing document: %s", b)
				}
			})
		}
		if e.listed(t, who, d.ID) {
			t.Fatalf("%s lists alice's document", who.Key())
		}
		ctx := asGRPC(who)
		if _, err := e.grpc.GetDocument(ctx, &pb.GetDocumentRequest{DocumentId: d.ID}); status.Code(err) != codes.NotFound {
			t.Fatalf("gRPC GetDocument as %s: %v", who.Key(), err)
		}
		if ex, err := e.grpc.DocumentExists(ctx, &pb.DocumentExistsRequest{DocumentId: d.ID}); err != nil || ex.Exists || len(ex.Levels) != 0 {
			t.Fatalf("gRPC DocumentExists as %s: %v %v", who.Key(), ex, err)
		}
		if _, err := e.grpc.UpdateDocumentStatus(ctx, &pb.UpdateDocumentStatusRequest{DocumentId: d.ID, Status: "cancelled"}); status.Code(err) != codes.NotFound {
			t.Fatalf("gRPC UpdateDocumentStatus as %s: %v", who.Key(), err)
		}
	}
	// Nothing changed, and B's reads were not counted as views.
	var got Document
	e.do(t, "GET", "/documents/"+d.ID, nil, &got, testPrincipal, principalHeader(alice))
	if got.Title != "Alice's private contract" || got.Status != StatusCreated || got.Version != 1 {
		t.Fatalf("document changed: %+v", got)
	}
	var st Stats
	e.do(t, "GET", "/documents/"+d.ID+"/stats", nil, &st, testPrincipal, principalHeader(alice))
	if st.TotalViews != 3 { // alice's two warm-ups and this read
		t.Fatalf("views %d, want 3: refused reads must not count", st.TotalViews)
	}
	if ex, err := e.grpc.DocumentExists(asGRPC(alice), &pb.DocumentExistsRequest{DocumentId: d.ID}); err != nil || !ex.Exists || !slices.Equal(ex.Levels, []string{"own"}) {
		t.Fatalf("DocumentExists as owner: %v %v", ex, err)
	}
}

// B with a view share sees the document and may not change it (403);
// with edit B may change it and still not delete or share it.
func TestSharesGrantExactlyTheirLevel(t *testing.T) {
	e := newAccessEnv(t)
	d := e.createAs(t, alice, "Shared contract")
	e.warm(t, d.ID)
	e.share(t, alice, d.ID, "user:bob", "view")

	for _, path := range []string{"/documents/" + d.ID, "/documents/" + d.ID + "/content", "/documents/" + d.ID + "/stats"} {
		if code, b := e.as(t, bob, "GET", path, nil); code != http.StatusOK {
			t.Fatalf("view share: GET %s: %d %s", path, code, b)
		}
	}
	if !e.listed(t, bob, d.ID) {
		t.Fatal("view share: not listed")
	}
	forbidden := []struct {
		method, path string
		body         any
	}{
		{"PATCH", "/documents/" + d.ID, map[string]any{"title": "Bob's now"}},
		{"DELETE", "/documents/" + d.ID, nil},
		{"GET", "/documents/" + d.ID + "/shares", nil},
		{"POST", "/documents/" + d.ID + "/shares", api.ShareRequest{Grantee: "user:bob", Level: "own"}},
		{"DELETE", "/documents/" + d.ID + "/shares/user:bob", nil},
	}
	for _, c := range forbidden {
		if code, b := e.as(t, bob, c.method, c.path, c.body); code != http.StatusForbidden {
			t.Fatalf("view share: %s %s: %d %s, want 403", c.method, c.path, code, b)
		}
	}
	if _, err := e.grpc.UpdateDocumentStatus(asGRPC(bob), &pb.UpdateDocumentStatusRequest{DocumentId: d.ID, Status: "sent"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("view share: gRPC status update: %v", err)
	}
	if _, err := e.grpc.UpdateDocumentStatus(asGRPC(bob), &pb.UpdateDocumentStatusRequest{DocumentId: d.ID, Status: "signed"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("view share: gRPC set signed: %v", err)
	}
	if ex, err := e.grpc.DocumentExists(asGRPC(bob), &pb.DocumentExistsRequest{DocumentId: d.ID}); err != nil || !slices.Equal(ex.Levels, []string{"view"}) {
		t.Fatalf("view share: levels %v %v", ex, err)
	}

	e.share(t, alice, d.ID, "user:bob", "edit") // a level change is an upsert
	if code, b := e.as(t, bob, "PATCH", "/documents/"+d.ID, map[string]any{"title": "Edited by Bob"}); code != http.StatusOK {
		t.Fatalf("edit share: PATCH %d %s", code, b)
	}
	if code, _ := e.as(t, bob, "DELETE", "/documents/"+d.ID, nil); code != http.StatusForbidden {
		t.Fatalf("edit share: DELETE %d, want 403 (delete needs own)", code)
	}
	if code, _ := e.as(t, bob, "POST", "/documents/"+d.ID+"/shares", api.ShareRequest{Grantee: "user:carol", Level: "view"}); code != http.StatusForbidden {
		t.Fatalf("edit share: share %d, want 403", code)
	}

	e.share(t, alice, d.ID, "user:bob", "own")
	e.share(t, bob, d.ID, "user:carol", "view")
	var shares []api.Share
	e.do(t, "GET", "/documents/"+d.ID+"/shares", nil, &shares, testPrincipal, principalHeader(bob))
	if len(shares) != 2 || shares[0].Grantee != "user:bob" || shares[0].Level != "own" || shares[1].Grantee != "user:carol" || shares[1].CreatedBy != "user:bob" {
		t.Fatalf("shares: %+v", shares)
	}
	if code, _ := e.as(t, bob, "DELETE", "/documents/"+d.ID, nil); code != http.StatusNoContent {
		t.Fatalf("own share: DELETE %d", code)
	}
}

// The readers cached with a document are never trusted after a share
// changed them: warm cache, revoke, and the next read by the revoked user
// is 404 (the fast path); a fill that read the row before the revocation
// and arrives after it is refused (the stamp orders them); and the change
// stream's copy of the same revocation is not ignored although the
// version did not move.
func TestARevokedShareIsRefusedAtOnceWithTheCacheWarm(t *testing.T) {
	ctx := context.Background()
	e := newAccessEnv(t)
	d := e.createAs(t, alice, "Revocable")
	e.share(t, alice, d.ID, "user:bob", "view")
	e.warm(t, d.ID)
	if code, _ := e.as(t, bob, "GET", "/documents/"+d.ID, nil); code != http.StatusOK {
		t.Fatalf("bob before revoke: %d", code)
	}
	old, err := e.svc.store.Record(ctx, d.ID, nil) // a slow reader's row, bob still a reader
	if err != nil {
		t.Fatal(err)
	}

	e.unshare(t, alice, d.ID, "user:bob")
	if code, _ := e.as(t, bob, "GET", "/documents/"+d.ID, nil); code != http.StatusNotFound {
		t.Fatalf("bob after revoke: %d, want 404", code)
	}
	e.svc.cache.Put(ctx, old) // the late fill
	for range 2 {
		if code, _ := e.as(t, bob, "GET", "/documents/"+d.ID, nil); code != http.StatusNotFound {
			t.Fatalf("bob after a late fill: %d, want 404", code)
		}
	}
	// A readers-only change moves neither version nor updated_at.
	var now Document
	e.do(t, "GET", "/documents/"+d.ID, nil, &now, testPrincipal, principalHeader(alice))
	if now.Version != d.Version || !now.UpdatedAt.Time.Equal(d.UpdatedAt.Time) {
		t.Fatalf("a share changed the document: version %d→%d, updated_at %v→%v", d.Version, now.Version, d.UpdatedAt, now.UpdatedAt)
	}

	// The change stream's invalidation of a readers-only change: version
	// unchanged, access_version moved. Redis holds bob's old entry as if
	// the fast path had been lost; the event must replace it.
	if err := e.rdb.Del(ctx, docKey(d.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	e.svc.cache.Put(ctx, old)
	if code, _ := e.as(t, bob, "GET", "/documents/"+d.ID, nil); code != http.StatusOK {
		t.Fatalf("setup: the stale entry should admit bob: %d", code)
	}
	cur, err := e.svc.store.Record(ctx, d.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version != old.Version || cur.AccessVersion <= old.AccessVersion {
		t.Fatalf("stamps: old %d/%d, now %d/%d", old.Version, old.AccessVersion, cur.Version, cur.AccessVersion)
	}
	ev := cdcUpdate(t, cur)
	inv, _, _, err := invalidation(ev)
	if err != nil || inv.AccessVersion != cur.AccessVersion {
		t.Fatalf("decoded %+v %v", inv, err)
	}
	if err := e.svc.cache.Apply(ctx, []Invalidation{inv}); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.as(t, bob, "GET", "/documents/"+d.ID, nil); code != http.StatusNotFound {
		t.Fatalf("bob after the stream's invalidation: %d, want 404", code)
	}
}

// Groups and verified emails name readers; an unverified email does not.
func TestGroupAndVerifiedEmailShares(t *testing.T) {
	e := newAccessEnv(t)
	d := e.createAs(t, alice, "For sales")
	e.warm(t, d.ID)
	e.share(t, alice, d.ID, "group:sales", "view")
	if code, _ := e.as(t, bob, "GET", "/documents/"+d.ID, nil); code != http.StatusOK {
		t.Fatalf("group member: %d", code)
	}
	e.unshare(t, alice, d.ID, "group:sales")

	e.share(t, alice, d.ID, "email:Carol@Partner.example", "sign")
	carol := auth.Principal{Kind: auth.KindUser, Subject: "carol", Email: "carol@partner.example", EmailVerified: true}
	if code, b := e.as(t, carol, "GET", "/documents/"+d.ID, nil); code != http.StatusOK {
		t.Fatalf("verified email: %d %s", code, b)
	}
	if ex, err := e.grpc.DocumentExists(asGRPC(carol), &pb.DocumentExistsRequest{DocumentId: d.ID}); err != nil || !slices.Equal(ex.Levels, []string{"sign"}) {
		t.Fatalf("verified email: levels %v %v", ex, err)
	}
	mallory := auth.Principal{Kind: auth.KindUser, Subject: "mallory", Email: "carol@partner.example", EmailVerified: false}
	if code, _ := e.as(t, mallory, "GET", "/documents/"+d.ID, nil); code != http.StatusNotFound {
		t.Fatalf("unverified email: %d, want 404", code)
	}
	if e.listed(t, mallory, d.ID) {
		t.Fatal("unverified email lists the document")
	}
	if ex, err := e.grpc.DocumentExists(asGRPC(mallory), &pb.DocumentExistsRequest{DocumentId: d.ID}); err != nil || ex.Exists {
		t.Fatalf("unverified email: exists %v %v", ex, err)
	}
}

// Admins see and change everything, also documents created anonymously
// (in open mode) that nobody else sees in required mode.
func TestAdminSeesEverything(t *testing.T) {
	e := newAccessEnv(t)
	d := e.createAs(t, alice, "Alice's")
	e.svc.SetMode(auth.ModeOpen)
	anon := e.create(t, "Made in open mode", "x")
	e.svc.SetMode(auth.ModeRequired)
	if anon.Owner != "" {
		t.Fatalf("anonymous document has owner %q", anon.Owner)
	}
	for _, id := range []string{d.ID, anon.ID} {
		if code, _ := e.as(t, admin, "GET", "/documents/"+id, nil); code != http.StatusOK {
			t.Fatalf("admin GET: %d", code)
		}
		if !e.listed(t, admin, id) {
			t.Fatal("admin list")
		}
	}
	if code, _ := e.as(t, alice, "GET", "/documents/"+anon.ID, nil); code != http.StatusNotFound {
		t.Fatalf("an anonymous document in required mode: %d, want 404", code)
	}
	if code, _ := e.as(t, admin, "PATCH", "/documents/"+d.ID, map[string]any{"status": "sent"}); code != http.StatusOK {
		t.Fatalf("admin PATCH: %d", code)
	}
	if code, _ := e.as(t, admin, "POST", "/documents/"+d.ID+"/shares", api.ShareRequest{Grantee: "user:bob", Level: "view"}); code != http.StatusOK {
		t.Fatalf("admin share: %d", code)
	}
	if code, _ := e.as(t, admin, "DELETE", "/documents/"+anon.ID, nil); code != http.StatusNoContent {
		t.Fatalf("admin DELETE: %d", code)
	}
}

// The creator owns the document; created_by is the creator's email, a
// different one in the body is overwritten; an admin may name someone.
func TestCreateRecordsTheOwnerAndCreator(t *testing.T) {
	e := newAccessEnv(t)
	d := e.createAs(t, alice, "Mine")
	if d.Owner != "user:alice" || d.CreatedBy != "alice@company.com" {
		t.Fatalf("owner %q created_by %q", d.Owner, d.CreatedBy)
	}
	// created_by may be left out when the token has an email.
	code, b := e.as(t, bob, "POST", "/documents", map[string]any{"title": "No created_by", "content": "x"})
	if code != http.StatusCreated || !strings.Contains(string(b), `"created_by":"bob@company.com"`) {
		t.Fatalf("create without created_by: %d %s", code, b)
	}
	code, b = e.as(t, admin, "POST", "/documents", map[string]any{"title": "On behalf", "content": "x", "created_by": "ceo@company.com"})
	if code != http.StatusCreated || !strings.Contains(string(b), `"created_by":"ceo@company.com"`) || !strings.Contains(string(b), `"owner":"user:root"`) {
		t.Fatalf("admin create: %d %s", code, b)
	}
	var rows []struct {
		Readers []string
	}
	r, err := e.pool.Query(context.Background(), `SELECT readers FROM documents.documents WHERE id = $1`, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var rd []string
		_ = r.Scan(&rd)
		rows = append(rows, struct{ Readers []string }{rd})
	}
	r.Close()
	if len(rows) != 1 || !slices.Equal(rows[0].Readers, []string{"user:alice"}) {
		t.Fatalf("readers %v", rows)
	}
	// Required mode without an identity, or as a service: no document.
	if code, _ := e.as(t, auth.Anonymous, "POST", "/documents", map[string]any{"title": "x", "content": "x", "created_by": "a@b.co"}); code != http.StatusUnauthorized {
		t.Fatalf("anonymous create: %d", code)
	}
	if code, _ := e.as(t, service, "POST", "/documents", map[string]any{"title": "x", "content": "x", "created_by": "a@b.co"}); code != http.StatusForbidden {
		t.Fatalf("service create: %d", code)
	}
}

// An API key is capped by its scopes even on its own document.
func TestAPIKeyScopesCapAccess(t *testing.T) {
	e := newAccessEnv(t)
	writer := auth.Principal{Kind: auth.KindAPIKey, Subject: "k1", Scopes: []auth.Scope{auth.ScopeWrite}}
	code, b := e.as(t, writer, "POST", "/documents", map[string]any{"title": "By a key", "content": "x", "created_by": "bot@company.com"})
	if code != http.StatusCreated {
		t.Fatalf("create with write scope: %d %s", code, b)
	}
	var d Document
	_ = json.Unmarshal(b, &d)
	// A key has no email: created_by is its key, never the body's word
	// (created_by is shown, searched and aggregated on).
	if d.Owner != "apikey:k1" || d.CreatedBy != "apikey.k1@docstream.invalid" {
		t.Fatalf("owner %q created_by %q", d.Owner, d.CreatedBy)
	}
	noEmail := auth.Principal{Kind: auth.KindUser, Subject: "mallory"}
	code, b = e.as(t, noEmail, "POST", "/documents", map[string]any{"title": "Spoof", "content": "x", "created_by": "ceo@company.com"})
	if code != http.StatusCreated || !strings.Contains(string(b), `"created_by":"user.mallory@docstream.invalid"`) {
		t.Fatalf("a user without an email naming the CEO: %d %s", code, b)
	}
	if code, _ := e.as(t, writer, "GET", "/documents/"+d.ID, nil); code != http.StatusForbidden {
		t.Fatalf("GET without read scope: %d, want 403", code)
	}
	reader := auth.Principal{Kind: auth.KindAPIKey, Subject: "k1", Scopes: []auth.Scope{auth.ScopeRead}}
	if code, _ := e.as(t, reader, "GET", "/documents/"+d.ID, nil); code != http.StatusOK {
		t.Fatalf("GET with read scope: %d", code)
	}
	if code, _ := e.as(t, reader, "PATCH", "/documents/"+d.ID, map[string]any{"title": "t"}); code != http.StatusForbidden {
		t.Fatalf("PATCH without write scope: %d, want 403", code)
	}
	if code, _ := e.as(t, reader, "POST", "/documents", map[string]any{"title": "t", "content": "x", "created_by": "bot@company.com"}); code != http.StatusForbidden {
		t.Fatalf("create without write scope: %d, want 403", code)
	}
}

// The signature service's own credential may set signed, and nothing else.
func TestServiceCredentialMayOnlySetSigned(t *testing.T) {
	e := newAccessEnv(t)
	d := e.createAs(t, alice, "To be signed")
	ctx := asGRPC(service)
	if _, err := e.grpc.UpdateDocumentStatus(ctx, &pb.UpdateDocumentStatusRequest{DocumentId: d.ID, Status: "cancelled"}); status.Code(err) != codes.NotFound {
		t.Fatalf("service sets cancelled: %v", err)
	}
	if _, err := e.grpc.GetDocument(ctx, &pb.GetDocumentRequest{DocumentId: d.ID}); status.Code(err) != codes.NotFound {
		t.Fatalf("service reads: %v", err)
	}
	// Even a share (the API refuses one; written here by hand) does not
	// open anything else to a service.
	if _, err := e.pool.Exec(context.Background(), `WITH s AS (INSERT INTO documents.shares (document_id, grantee, level) VALUES ($1, 'service:signature', 'own'))
		UPDATE documents.documents SET readers = readers || '{service:signature}'::text[] WHERE id = $1`, d.ID); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.as(t, service, "GET", "/documents/"+d.ID, nil); code != http.StatusNotFound {
		t.Fatalf("service GET with a share: %d", code)
	}
	if code, _ := e.as(t, service, "DELETE", "/documents/"+d.ID, nil); code != http.StatusNotFound {
		t.Fatalf("service DELETE: %d", code)
	}
	// Another service is no signature service.
	other := asGRPC(auth.Principal{Kind: auth.KindService, Subject: "extractor"})
	if _, err := e.grpc.UpdateDocumentStatus(other, &pb.UpdateDocumentStatusRequest{DocumentId: d.ID, Status: "signed"}); status.Code(err) != codes.NotFound {
		t.Fatalf("another service sets signed: %v", err)
	}
	up, err := e.grpc.UpdateDocumentStatus(ctx, &pb.UpdateDocumentStatusRequest{DocumentId: d.ID, Status: "signed"})
	if err != nil || up.Status != "signed" {
		t.Fatalf("service sets signed: %v %v", up, err)
	}
}

// Bad shares name the field; an unknown share is 404.
func TestShareValidation(t *testing.T) {
	e := newAccessEnv(t)
	d := e.createAs(t, alice, "Validated")
	for _, c := range []struct {
		req   api.ShareRequest
		field string
	}{
		{api.ShareRequest{Grantee: "bob", Level: "view"}, "grantee"},
		{api.ShareRequest{Grantee: "user:", Level: "view"}, "grantee"},
		{api.ShareRequest{Grantee: "root:bob", Level: "view"}, "grantee"},
		{api.ShareRequest{Grantee: "service:signature", Level: "view"}, "grantee"},
		{api.ShareRequest{Grantee: "email:not-an-email", Level: "view"}, "grantee"},
		{api.ShareRequest{Grantee: "user:" + strings.Repeat("x", 400), Level: "view"}, "grantee"},
		{api.ShareRequest{Grantee: "user:bob\x00", Level: "view"}, "grantee"},
		{api.ShareRequest{Grantee: "user: bob", Level: "view"}, "grantee"},
		{api.ShareRequest{Grantee: "user:bob", Level: "admin"}, "level"},
		{api.ShareRequest{Grantee: "user:bob", Level: ""}, "level"},
	} {
		code, b := e.as(t, alice, "POST", "/documents/"+d.ID+"/shares", c.req)
		if code != http.StatusUnprocessableEntity || !strings.Contains(string(b), `"field":"`+c.field+`"`) {
			t.Fatalf("%+v: %d %s", c.req, code, b)
		}
	}
	if code, b := e.as(t, alice, "POST", "/documents/"+d.ID+"/shares", `{"grantee":`); code != http.StatusBadRequest {
		t.Fatalf("malformed body: %d %s", code, b)
	}
	if code, _ := e.as(t, alice, "DELETE", "/documents/"+d.ID+"/shares/user:nobody", nil); code != http.StatusNotFound {
		t.Fatalf("unknown share: %d", code)
	}
	if code, _ := e.as(t, alice, "DELETE", "/documents/"+d.ID+"/shares/nonsense", nil); code != http.StatusUnprocessableEntity {
		t.Fatalf("bad grantee in the path: %d", code)
	}
	if code, _ := e.as(t, alice, "POST", "/documents/0691e72f-799b-7efd-8000-e5c4e1cb7813/shares", api.ShareRequest{Grantee: "user:bob", Level: "view"}); code != http.StatusNotFound {
		t.Fatalf("share of an unknown document: %d", code)
	}
}

// In open mode nothing is checked, but a presented principal is recorded.
func TestOpenModeChecksNothingButRecordsTheOwner(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(withTestPrincipal(NewServer(e.svc, noProxies(), logging.Discard())))
	t.Cleanup(srv.Close)
	e.srv = srv
	ae := &accessEnv{env: e}
	d := ae.createAs(t, alice, "Open")
	if d.Owner != "user:alice" || d.CreatedBy != "someone.else@company.com" {
		t.Fatalf("open mode: owner %q created_by %q (the body's created_by stands)", d.Owner, d.CreatedBy)
	}
	for _, who := range []auth.Principal{bob, auth.Anonymous} {
		if code, _ := ae.as(t, who, "GET", "/documents/"+d.ID, nil); code != http.StatusOK {
			t.Fatalf("open GET: %d", code)
		}
		if code, _ := ae.as(t, who, "PATCH", "/documents/"+d.ID, map[string]any{"title": "Anyone's " + who.Key()}); code != http.StatusOK {
			t.Fatalf("open PATCH: %d", code)
		}
	}
	anon := e.create(t, "Anonymous", "x")
	raw := e.do(t, "GET", "/documents/"+anon.ID, nil, nil)
	b, _ := io.ReadAll(raw.Body)
	if strings.Contains(string(b), "owner") {
		t.Fatalf("an anonymous document's JSON gained a field: %s", b)
	}
}

// cdcUpdate is the change event the cdc target would publish for the row
// r (only what the invalidator reads).
func cdcUpdate(t *testing.T, r *Record) bus.Message {
	t.Helper()
	after, _ := json.Marshal(map[string]any{"id": r.ID, "version": r.Version, "access_version": r.AccessVersion,
		"readers": r.Readers, "title": r.Title, "status": r.Status, "created_by": r.CreatedBy})
	env := map[string]any{"op": "u", "after": json.RawMessage(after),
		"source": map[string]any{"lsn": 1 << 40, "ts_ms": time.Now().UnixMilli(), "snapshot": "false"}}
	b, _ := json.Marshal(env)
	return bus.Message{Value: b, Key: []byte(`{"id":"` + r.ID + `"}`)}
}

// The attack table's core through the real authenticator (HS256 tokens,
// the REST middleware and the gRPC interceptor), as `docstream serve`
// wires the document service: no token is 401, B's token sees nothing of
// A's document until A shares it, and again nothing once A revokes it,
// with the cache warm; no token reaches the log.
func TestAccessThroughTheAuthenticator(t *testing.T) {
	ctx := context.Background()
	var logs testenv.SyncBuffer
	log := logging.New(&logs, "debug")
	cfg := auth.DefaultConfig()
	cfg.Mode = string(auth.ModeRequired)
	cfg.JWTSecret = strings.Repeat("0123456789", 4)
	authn, err := auth.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(sub string, admin bool) string {
		raw, _, err := auth.Mint(cfg, auth.TokenRequest{Subject: sub, Email: sub + "@company.com", EmailVerified: true, Admin: admin, TTL: time.Hour}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	aliceTok, bobTok, rootTok := mint("alice", false), mint("bob", false), mint("root", true)

	e := newEnv(t)
	e.svc.SetMode(auth.ModeRequired)
	dcfg := noProxies()
	dcfg.Auth = authn
	srv := httptest.NewServer(NewServer(e.svc, dcfg, log))
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs, _ := NewGRPCServer(e.svc, log, authn)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	gc := pb.NewDocumentServiceClient(cc)
	withTok := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	do := func(tok, method, path string, body, out any) int {
		var h []string
		if tok != "" {
			h = []string{"Authorization", "Bearer " + tok}
		}
		return testenv.Do(t, method, srv.URL+path, body, out, h...).StatusCode
	}

	var d Document
	if code := do(aliceTok, "POST", "/documents", map[string]any{"title": "Private", "content": "x", "created_by": "mallory@company.com"}, &d); code != http.StatusCreated || d.Owner != "user:alice" || d.CreatedBy != "alice@company.com" {
		t.Fatalf("create: %d %+v", code, d)
	}
	for range 2 {
		if code := do(aliceTok, "GET", "/documents/"+d.ID, nil, nil); code != http.StatusOK {
			t.Fatalf("owner GET: %d", code)
		}
	}
	if code := do("", "GET", "/documents/"+d.ID, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	bobSees := func() (rest int, grpcCode codes.Code, listed bool) {
		rest = do(bobTok, "GET", "/documents/"+d.ID, nil, nil)
		_, err := gc.GetDocument(withTok(bobTok), &pb.GetDocumentRequest{DocumentId: d.ID})
		var docs []Document
		do(bobTok, "GET", "/documents", nil, &docs)
		return rest, status.Code(err), slices.ContainsFunc(docs, func(x Document) bool { return x.ID == d.ID })
	}
	if rest, gcode, listed := bobSees(); rest != http.StatusNotFound || gcode != codes.NotFound || listed {
		t.Fatalf("bob before a share: %d %v %v", rest, gcode, listed)
	}
	for _, p := range []string{"/content", "/stats", "/shares"} {
		if code := do(bobTok, "GET", "/documents/"+d.ID+p, nil, nil); code != http.StatusNotFound {
			t.Fatalf("bob GET %s: %d", p, code)
		}
	}
	if code := do(bobTok, "DELETE", "/documents/"+d.ID, nil, nil); code != http.StatusNotFound {
		t.Fatalf("bob DELETE: %d", code)
	}
	if _, err := gc.UpdateDocumentStatus(withTok(bobTok), &pb.UpdateDocumentStatusRequest{DocumentId: d.ID, Status: "signed"}); status.Code(err) != codes.NotFound {
		t.Fatalf("bob sets signed over gRPC: %v", err)
	}
	if code := do(aliceTok, "POST", "/documents/"+d.ID+"/shares", api.ShareRequest{Grantee: "email:bob@company.com", Level: "view"}, nil); code != http.StatusOK {
		t.Fatalf("share: %d", code)
	}
	if rest, gcode, listed := bobSees(); rest != http.StatusOK || gcode != codes.OK || !listed {
		t.Fatalf("bob with a share: %d %v %v", rest, gcode, listed)
	}
	if code := do(bobTok, "PATCH", "/documents/"+d.ID, map[string]any{"title": "Bob's"}, nil); code != http.StatusForbidden {
		t.Fatalf("bob PATCH with view: %d", code)
	}
	if code := do(aliceTok, "DELETE", "/documents/"+d.ID+"/shares/email:bob@company.com", nil, nil); code != http.StatusNoContent {
		t.Fatalf("unshare: %d", code)
	}
	if rest, gcode, listed := bobSees(); rest != http.StatusNotFound || gcode != codes.NotFound || listed {
		t.Fatalf("bob after the revocation: %d %v %v", rest, gcode, listed)
	}
	if code := do(rootTok, "GET", "/documents/"+d.ID, nil, nil); code != http.StatusOK {
		t.Fatalf("admin GET: %d", code)
	}
	for _, tok := range []string{aliceTok, bobTok, rootTok} {
		if strings.Contains(logs.String(), tok) {
			t.Fatal("a token reached the log")
		}
	}
}

// A caller without an email gets an address that stands for it: valid,
// unclaimable, and within created_by's 255 characters whatever the subject.
func TestPrincipalAddress(t *testing.T) {
	for _, tc := range []struct {
		p    auth.Principal
		want string
	}{
		{auth.Principal{Kind: auth.KindAPIKey, Subject: "0123abcd4567ef89"}, "apikey.0123abcd4567ef89@docstream.invalid"},
		{auth.Principal{Kind: auth.KindUser, Subject: "auth0|5f7c8ec7c33c6c004bbafe82"}, ""},
		{auth.Principal{Kind: auth.KindUser, Subject: strings.Repeat("x", 255)}, ""},
		{auth.Principal{Kind: auth.KindUser, Subject: "a@b.c"}, ""},
	} {
		got := PrincipalAddress(tc.p)
		if tc.want != "" && got != tc.want {
			t.Errorf("%q: %q, want %q", tc.p.Subject, got, tc.want)
		}
		if msg := validate.Email(got); msg != "" || len(got) > 255 || !strings.HasSuffix(got, "@docstream.invalid") || strings.Count(got, "@") != 1 {
			t.Errorf("%q: %q is not a valid stand-in address (%s)", tc.p.Subject, got, msg)
		}
	}
}
