package document

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/docstream/docstream/internal/audit"
)

func init() {
	// Every test of the package signs its audit heads with this key.
	audit.SetSigner(audit.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))))
}

func types(l *audit.Log) []string {
	var out []string
	for _, r := range l.Entries {
		out = append(out, r.Type)
	}
	return out
}

// Each write of the document service appends its entry in the same
// transaction, with the caller, address and user agent; GET metadata and
// ranges are not downloads; the trail outlives the document.
func TestEveryWriteAppendsItsAuditEntry(t *testing.T) {
	e := newAccessEnv(t)
	var d Document
	if code, b := e.as(t, alice, "POST", "/documents", map[string]any{"title": "lease", "content": "the lease terms"}); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	} else if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	p := "/documents/" + d.ID
	steps := []struct {
		method, path string
		body         any
		want         int
	}{
		{"PATCH", p, map[string]any{"status": "sent"}, http.StatusOK},
		{"PATCH", p, map[string]any{"title": "lease 2026"}, http.StatusOK},
		{"POST", p + "/shares", map[string]any{"grantee": "user:bob", "level": "view"}, http.StatusOK},
		{"GET", p, nil, http.StatusOK},              // metadata: not audited
		{"GET", p + "/content", nil, http.StatusOK}, // a full download
		{"DELETE", p + "/shares/user:bob", nil, http.StatusNoContent},
	}
	for _, s := range steps {
		if code, b := e.as(t, alice, s.method, s.path, s.body); code != s.want {
			t.Fatalf("%s %s: %d %s", s.method, s.path, code, b)
		}
	}
	// A range is not a download.
	req, _ := http.NewRequest("GET", e.srv.URL+p+"/content", nil)
	req.Header.Set("Range", "bytes=0-2")
	req.Header.Set(testPrincipal, principalHeader(alice))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("range: %d", resp.StatusCode)
	}
	if code, b := e.as(t, alice, "DELETE", p, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, b)
	}

	var l audit.Log
	code, b := e.as(t, alice, "GET", p+"/audit", nil)
	if code != http.StatusOK {
		t.Fatalf("audit of a deleted document, by its owner: %d %s", code, b)
	}
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	want := []string{audit.TypeCreated, audit.TypeStatusChanged, audit.TypeUpdated, audit.TypeShared, audit.TypeDownloaded, audit.TypeUnshared, audit.TypeDeleted}
	if got := types(&l); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("entries %v, want %v", got, want)
	}
	created := l.Entries[0]
	if created.Actor != "user:alice" || created.IP != "127.0.0.1" || !strings.Contains(created.UserAgent, "Go-http-client") ||
		!strings.Contains(string(created.Data), d.ContentSHA256) {
		t.Fatalf("created entry: %+v %s", created, created.Data)
	}
	if !strings.Contains(string(l.Entries[1].Data), `"from":"created"`) || !strings.Contains(string(l.Entries[1].Data), `"to":"sent"`) {
		t.Fatalf("status entry: %s", l.Entries[1].Data)
	}
	var res audit.Result
	if code, b := e.as(t, alice, "GET", p+"/audit/verify", nil); code != http.StatusOK {
		t.Fatalf("verify: %d %s", code, b)
	} else if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Valid || !res.Signed || res.Entries != len(want) || res.Head == nil || res.Head.Seq != int64(len(want)) {
		t.Fatalf("verify: %+v", res)
	}
}

// The trail holds IPs: only the owner, a holder of own and admins read it.
func TestOnlyOwnersAndAdminsReadTheAudit(t *testing.T) {
	e := newAccessEnv(t)
	var d Document
	_, b := e.as(t, alice, "POST", "/documents", map[string]any{"title": "private", "content": "x"})
	if err := json.Unmarshal(b, &d); err != nil || d.ID == "" {
		t.Fatalf("create: %s %v", b, err)
	}
	p := "/documents/" + d.ID
	for _, path := range []string{p + "/audit", p + "/audit/verify"} {
		if code, b := e.as(t, bob, "GET", path, nil); code != http.StatusNotFound {
			t.Fatalf("%s by a stranger: %d %s, want 404", path, code, b)
		}
	}
	if code, _ := e.as(t, alice, "POST", p+"/shares", map[string]any{"grantee": "user:bob", "level": "edit"}); code != http.StatusOK {
		t.Fatalf("share: %d", code)
	}
	if code, b := e.as(t, bob, "GET", p+"/audit", nil); code != http.StatusForbidden {
		t.Fatalf("audit by an editor: %d %s, want 403", code, b)
	}
	if code, b := e.as(t, admin, "GET", p+"/audit/verify", nil); code != http.StatusOK || !strings.Contains(string(b), `"valid":true`) {
		t.Fatalf("verify by an admin: %d %s", code, b)
	}
	if code, _ := e.as(t, alice, "DELETE", p, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code, b := e.as(t, bob, "GET", p+"/audit", nil); code != http.StatusNotFound {
		t.Fatalf("audit of a deleted document by a former editor: %d %s, want 404", code, b)
	}
	if code, b := e.as(t, admin, "GET", p+"/audit", nil); code != http.StatusOK {
		t.Fatalf("audit of a deleted document by an admin: %d %s", code, b)
	}
	// The keys are public.
	resp := e.do(t, "GET", AuditKeysPath, nil, nil)
	var ks audit.KeySet
	if err := json.NewDecoder(resp.Body).Decode(&ks); err != nil || resp.StatusCode != http.StatusOK || len(ks.Keys) != 1 {
		t.Fatalf("keys: %d %+v %v", resp.StatusCode, ks, err)
	}
}

// A document inserted by SQL has no trail: reading it gives it a genesis
// entry, and it verifies with its history before unknown. An entry
// deleted in PostgreSQL afterwards is named by the verify route.
func TestADocumentInsertedBySQLVerifiesWithUnknownHistory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const id = "0190c5d4-0000-7000-8000-000000000001"
	if _, err := e.pool.Exec(ctx, `INSERT INTO documents.documents (id, title, created_by) VALUES ($1, 'old', 'a@example.com')`, id); err != nil {
		t.Fatal(err)
	}
	var res audit.Result
	if resp := e.do(t, "GET", "/documents/"+id+"/audit/verify", nil, &res); resp.StatusCode != http.StatusOK {
		t.Fatalf("verify: %d", resp.StatusCode)
	}
	if !res.Valid || res.Entries != 1 || res.HistoryUnknownBefore == "" || !strings.Contains(res.Reason, "history before") {
		t.Fatalf("verify: %+v", res)
	}
	if resp := e.do(t, "PATCH", "/documents/"+id, map[string]any{"status": "sent"}, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("patch: %d", resp.StatusCode)
	}
	if resp := e.do(t, "PATCH", "/documents/"+id, map[string]any{"title": "older"}, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("patch: %d", resp.StatusCode)
	}
	if _, err := e.pool.Exec(ctx, `DELETE FROM audit.entries WHERE document_id = $1 AND seq = 3`, id); err != nil {
		t.Fatal(err)
	}
	res = audit.Result{}
	e.do(t, "GET", "/documents/"+id+"/audit/verify", nil, &res)
	if res.Valid || res.FirstBroken == nil || res.FirstBroken.Seq != 3 {
		t.Fatalf("verify after deleting the newest entry: %+v", res)
	}
}

// Reading the trail of a document that has none writes its genesis only
// for a caller who may read it: a stranger's GET (404) writes nothing.
func TestAStrangersAuditReadWritesNothing(t *testing.T) {
	e := newAccessEnv(t)
	ctx := context.Background()
	const id = "0190c5d4-0000-7000-8000-000000000002"
	if _, err := e.pool.Exec(ctx, `INSERT INTO documents.documents (id, title, created_by, owner, readers) VALUES ($1, 'old', 'a@example.com', 'user:alice', '{user:alice}')`, id); err != nil {
		t.Fatal(err)
	}
	count := func() (n int) {
		if err := e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM audit.entries WHERE document_id = $1) + (SELECT count(*) FROM audit.heads WHERE document_id = $1)`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, path := range []string{"/audit", "/audit/verify"} {
		if code, b := e.as(t, bob, "GET", "/documents/"+id+path, nil); code != http.StatusNotFound {
			t.Fatalf("%s by a stranger: %d %s, want 404", path, code, b)
		}
	}
	if n := count(); n != 0 {
		t.Fatalf("after a stranger's reads: %d audit rows, want 0", n)
	}
	if code, b := e.as(t, alice, "GET", "/documents/"+id+"/audit", nil); code != http.StatusOK {
		t.Fatalf("by the owner: %d %s", code, b)
	}
	if n := count(); n != 2 {
		t.Fatalf("after the owner's read: %d audit rows, want the genesis entry and its head", n)
	}
}
