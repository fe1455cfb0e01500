package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/testenv"
)

const testDocJSON = `{"id":"0194c3a0-0000-7000-8000-000000000001","title":"Sales Agreement Q4 2025","content_type":"text/plain","content_size":36,"s3_key":"documents/0194c3a0-0000-7000-8000-000000000001","status":"created","created_by":"ebemad@company.com","created_at":"2025-11-20T01:46:31.657647Z","updated_at":"2025-11-20T01:46:31.657647Z","version":1}`

// cli runs the binary's run function as a user would, against server.
func cli(t *testing.T, server string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	// A config dir of the test's own: never the developer's stored token.
	configDir := t.TempDir()
	getenv := func(k string) string {
		switch k {
		case "DOCSTREAM_SERVER":
			return server
		case "DOCSTREAM_CONFIG_DIR":
			return configDir
		}
		return ""
	}
	err = run(context.Background(), args, getenv, &out, &errb)
	return out.String(), errb.String(), err
}

// recorded is one request the fake gateway saw.
type recorded struct {
	Method, Path, Query, ContentType string
	Body                             []byte
	Authorization                    string
}

// fakeGateway answers each "METHOD /path" with a canned status and body and
// records what it was sent.
func fakeGateway(t *testing.T, answers map[string]func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, func() []recorded) {
	t.Helper()
	var mu sync.Mutex
	var seen []recorded
	mux := http.NewServeMux()
	for pattern, h := range answers {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				seen = append(seen, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), b, r.Header.Get("Authorization")})
				mu.Unlock()
				r.Body = io.NopCloser(bytes.NewReader(b))
			}
			h(w, r)
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, func() []recorded { mu.Lock(); defer mu.Unlock(); return append([]recorded(nil), seen...) }
}

func answer(status int, body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestDocCreateInlineSendsTheReferenceJSON(t *testing.T) {
	srv, seen := fakeGateway(t, map[string]func(http.ResponseWriter, *http.Request){"POST /documents": answer(201, testDocJSON)})
	out, _, err := cli(t, srv.URL, "doc", "create", "--title", "Sales Agreement Q4 2025", "--content", "This agreement outlines the terms...", "--created-by", "ebemad@company.com")
	if err != nil {
		t.Fatal(err)
	}
	req := seen()[0]
	var body map[string]string
	if err := json.Unmarshal(req.Body, &body); err != nil || req.ContentType != "application/json" {
		t.Fatalf("request %s %q: %v", req.ContentType, req.Body, err)
	}
	if body["title"] != "Sales Agreement Q4 2025" || body["content"] != "This agreement outlines the terms..." || body["created_by"] != "ebemad@company.com" || len(body) != 3 {
		t.Fatalf("body %v", body)
	}
	for _, want := range []string{"0194c3a0-0000-7000-8000-000000000001", "created", "36 B", "ebemad@company.com"} {
		if !strings.Contains(out, want) {
			t.Fatalf("text output lacks %q:\n%s", want, out)
		}
	}

	out, _, err = cli(t, srv.URL, "doc", "create", "--title", "t", "--content", "c", "--created-by", "a@b.c", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var d api.Document
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.ID == "" {
		t.Fatalf("-o json output %q: %v", out, err)
	}
}

func TestDocCreateFileStreamsMultipartWithProgress(t *testing.T) {
	content := make([]byte, 3<<20)
	rand.Read(content)
	path := filepath.Join(t.TempDir(), "contract.pdf")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	gotc := make(chan testenv.Form, 1)
	srv, _ := fakeGateway(t, map[string]func(http.ResponseWriter, *http.Request){"POST /documents": func(w http.ResponseWriter, r *http.Request) {
		f, err := testenv.ReadForm(r)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		gotc <- f
		answer(201, testDocJSON)(w, r)
	}})
	_, stderr, err := cli(t, srv.URL, "doc", "create", "-f", path, "--created-by", "ebemad@company.com")
	if err != nil {
		t.Fatal(err)
	}
	g := <-gotc
	if g.Fields["title"] != "contract.pdf" || g.Fields["created_by"] != "ebemad@company.com" {
		t.Fatalf("form fields %v", g.Fields)
	}
	if g.FileName != "contract.pdf" || g.FileType != "application/pdf" || !bytes.Equal(g.File, content) {
		t.Fatalf("file part %q %q, content intact: %v", g.FileName, g.FileType, bytes.Equal(g.File, content))
	}
	if g.ContentLength != -1 {
		t.Fatalf("Content-Length %d: the form was buffered, not streamed", g.ContentLength)
	}
	if !strings.Contains(stderr, "uploading contract.pdf") || !strings.Contains(stderr, "100%") {
		t.Fatalf("no progress bar on stderr: %q", stderr)
	}
}

func TestAPIErrorsAreShownWithTheirFields(t *testing.T) {
	srv, _ := fakeGateway(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /documents":     answer(422, `{"error":{"code":"validation","message":"invalid input","details":[{"field":"created_by","message":"is required"}]}}`),
		"GET /documents/{id}": answer(404, `{"error":{"code":"not_found","message":"document nope not found","details":[]}}`),
	})
	_, _, err := cli(t, srv.URL, "doc", "create", "--title", "t", "--content", "c")
	if err == nil || !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "created_by: is required") {
		t.Fatalf("error %v", err)
	}
	_, _, err = cli(t, srv.URL, "doc", "get", "nope")
	if err == nil || !strings.Contains(err.Error(), "404 document nope not found (not_found)") {
		t.Fatalf("error %v", err)
	}
}

func TestDocCommandsCallTheirEndpoints(t *testing.T) {
	id := "0194c3a0-0000-7000-8000-000000000001"
	srv, seen := fakeGateway(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /documents":                          answer(200, "["+testDocJSON+"]"),
		"GET /documents/{id}":                     answer(200, testDocJSON),
		"PATCH /documents/{id}":                   answer(200, strings.Replace(testDocJSON, `"created"`, `"sent"`, 1)),
		"DELETE /documents/{id}":                  func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
		"GET /documents/{id}/content":             func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the content") },
		"GET /documents/{id}/stats":               answer(200, `{"document_id":"`+id+`","total_views":3,"unique_views":2}`),
		"POST /documents/{id}/shares":             answer(200, `{"document_id":"`+id+`","grantee":"group:legal","level":"edit","created_by":"user:alice","created_at":"2025-11-20T01:46:31Z"}`),
		"GET /documents/{id}/shares":              answer(200, `[{"document_id":"`+id+`","grantee":"group:legal","level":"edit","created_by":"user:alice","created_at":"2025-11-20T01:46:31Z"}]`),
		"DELETE /documents/{id}/shares/{grantee}": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
	})
	cases := []struct {
		args               []string
		method, path, body string
		query              string
		out                string
	}{
		{[]string{"doc", "list", "--limit", "5"}, "GET", "/documents", "", "limit=5", "Sales Agreement Q4 2025"},
		{[]string{"doc", "get", id}, "GET", "/documents/" + id, "", "", "ebemad@company.com"},
		{[]string{"doc", "update", id, "--status", "sent"}, "PATCH", "/documents/" + id, `{"status":"sent"}`, "", "sent"},
		{[]string{"doc", "delete", id}, "DELETE", "/documents/" + id, "", "", "deleted " + id},
		{[]string{"doc", "content", id}, "GET", "/documents/" + id + "/content", "", "", "the content"},
		{[]string{"doc", "stats", id}, "GET", "/documents/" + id + "/stats", "", "", "unique views  2"},
		{[]string{"doc", "share", id, "group:legal", "--level", "edit"}, "POST", "/documents/" + id + "/shares", `{"grantee":"group:legal","level":"edit"}`, "", "shared " + id + " with group:legal (edit)"},
		{[]string{"doc", "shares", id}, "GET", "/documents/" + id + "/shares", "", "", "group:legal  edit   user:alice"},
		{[]string{"doc", "unshare", id, "group:legal"}, "DELETE", "/documents/" + id + "/shares/group:legal", "", "", "unshared " + id + " from group:legal"},
	}
	for i, c := range cases {
		t.Run(strings.Join(c.args[:2], " "), func(t *testing.T) {
			out, _, err := cli(t, srv.URL, c.args...)
			if err != nil {
				t.Fatal(err)
			}
			r := seen()[i]
			if r.Method != c.method || r.Path != c.path || r.Query != c.query || string(r.Body) != c.body {
				t.Fatalf("sent %s %s?%s %q", r.Method, r.Path, r.Query, r.Body)
			}
			if !strings.Contains(out, c.out) {
				t.Fatalf("output lacks %q:\n%s", c.out, out)
			}
		})
	}
	t.Run("update with nothing to change is refused locally", func(t *testing.T) {
		if _, _, err := cli(t, srv.URL, "doc", "update", id); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestSignAndSearch(t *testing.T) {
	id := "0194c3a0-0000-7000-8000-000000000001"
	srv, seen := fakeGateway(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /signatures": answer(201, `{"id":"s1","document_id":"`+id+`","signer_email":"ebemad@client.com","signer_name":"Ebrahim Emad","signed_at":"2025-11-20T01:46:31.657647Z","signature_data":"x","ip_address":"127.0.0.1"}`),
		"GET /search":      answer(200, `{"total":1,"documents":[{"id":"`+id+`","title":"Sales Agreement","status":"signed","score":1.5,"highlights":{"title":["<mark>Sales</mark> Agreement"]}}],"took_ms":2,"from":0,"size":10}`),
	})
	out, _, err := cli(t, srv.URL, "sign", id, "--email", "ebemad@client.com", "--name", "Ebrahim Emad", "--data", "x", "--document-status", "pending")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	_ = json.Unmarshal(seen()[0].Body, &body)
	if body["document_id"] != id || body["signer_email"] != "ebemad@client.com" || body["document_status"] != "pending" || body["signature_data"] != "x" {
		t.Fatalf("sign sent %v", body)
	}
	if !strings.Contains(out, "Ebrahim Emad <ebemad@client.com>") {
		t.Fatalf("sign output %s", out)
	}
	out, _, err = cli(t, srv.URL, "search", "sales", "--status", "signed", "--signing-status", "completed")
	if err != nil {
		t.Fatal(err)
	}
	if q := seen()[1].Query; q != "from=0&q=sales&signing_status=completed&size=10&status=signed" {
		t.Fatalf("search query %s", q)
	}
	if !strings.Contains(out, "1 found") || !strings.Contains(out, "<mark>Sales</mark> Agreement") {
		t.Fatalf("search output %s", out)
	}
}

func TestWatchPrintsLiveEvents(t *testing.T) {
	srv, _ := fakeGateway(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /auth/token": answer(200, `{"access_token":"dev-token","token_type":"bearer","user_id":"docstream-cli","email":""}`),
		"GET /ws/{id}": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("token") != "dev-token" {
				http.Error(w, "no token", 401)
				return
			}
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			ctx := r.Context()
			c.Write(ctx, websocket.MessageText, []byte(`{"type":"document.created","data":{"document_id":"`+r.PathValue("id")+`","title":"T","status":"created"},"timestamp":"2025-11-20T01:46:31Z"}`))
			c.Write(ctx, websocket.MessageText, []byte(`{"type":"document.signed","data":{"document_id":"`+r.PathValue("id")+`","old_status":"pending","new_status":"signed"},"timestamp":"2025-11-20T01:46:32Z"}`))
			c.Close(websocket.StatusNormalClosure, "test over")
		},
	})
	out, _, err := cli(t, srv.URL, "watch", "d1")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "document.created") || !strings.Contains(lines[1], "old_status=pending new_status=signed") {
		t.Fatalf("watch output:\n%s", out)
	}
	out, _, err = cli(t, srv.URL, "watch", "d1", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !json.Valid([]byte(l)) {
			t.Fatalf("-o json line is not JSON: %s", l)
		}
	}
}

func TestServerFlagAliasAndBadValues(t *testing.T) {
	srv, _ := fakeGateway(t, map[string]func(http.ResponseWriter, *http.Request){"GET /documents/{id}/stats": answer(200, `{"document_id":"x","total_views":1,"unique_views":1}`)})
	// --server wins over DOCSTREAM_SERVER.
	if _, _, err := cli(t, "http://127.0.0.1:1", "doc", "stats", "x", "--server", srv.URL); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, "ftp://x", "doc", "stats", "x"); err == nil || !strings.Contains(err.Error(), "--server") {
		t.Fatalf("bad server: %v", err)
	}
	if _, _, err := cli(t, srv.URL, "doc", "stats", "x", "--output", "yaml"); err == nil || !strings.Contains(err.Error(), "--output") {
		t.Fatalf("bad output: %v", err)
	}
}

// TestWatchReconnectsWithSinceWhenRealtimeGoesAway: the realtime instance
// goes away (1001, as on a restart); watch reconnects asking for what
// follows the last event it printed, says so on stderr, and goes on.
func TestWatchReconnectsWithSinceWhenRealtimeGoesAway(t *testing.T) {
	var mu sync.Mutex
	var sinces []string
	srv, _ := fakeGateway(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /auth/token": answer(200, `{"access_token":"dev-token","token_type":"bearer","user_id":"docstream-cli","email":""}`),
		"GET /ws/{id}": func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			sinces = append(sinces, r.URL.Query().Get("since"))
			n := len(sinces)
			mu.Unlock()
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			ctx := r.Context()
			if n == 1 {
				c.Write(ctx, websocket.MessageText, []byte(`{"type":"document.created","data":{"document_id":"d1","title":"T","status":"created"},"timestamp":"2025-11-20T01:46:31Z","lsn":100}`))
				c.Close(websocket.StatusGoingAway, "restarting")
				return
			}
			c.Write(ctx, websocket.MessageText, []byte(`{"type":"document.signed","data":{"document_id":"d1","old_status":"pending","new_status":"signed"},"timestamp":"2025-11-20T01:46:32Z","lsn":200}`))
			c.Close(websocket.StatusNormalClosure, "test over")
		},
	})
	out, stderr, err := cli(t, srv.URL, "watch", "d1")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "new_status=signed") {
		t.Fatalf("watch output:\n%s", out)
	}
	if !strings.Contains(stderr, "reconnecting with since=100") {
		t.Fatalf("stderr does not say it reconnects: %q", stderr)
	}
	if strings.Join(sinces, ",") != ",100" {
		t.Fatalf("handshakes asked since %q; want none, then 100", sinces)
	}
}
