package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/client"
	"github.com/docstream/docstream/internal/testenv"
)

// fake serves mux and returns a client of it.
func fake(t *testing.T, mux *http.ServeMux) *client.Client {
	t.Helper()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestErrorAnswersAreAppErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /documents", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		io.WriteString(w, `{"error":{"code":"validation","message":"created_by: is required","details":[{"field":"created_by","message":"is required"}]}}`)
	})
	mux.HandleFunc("GET /documents/{id}", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 page not found", http.StatusNotFound) // a proxy's plain text
	})
	mux.HandleFunc("GET /signatures/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	})
	c := fake(t, mux)
	ctx := context.Background()

	_, err := c.CreateDocument(ctx, api.CreateDocumentRequest{Title: "t", Content: "c"})
	var e *apperr.Error
	if !errors.As(err, &e) || e.Code != apperr.Validation || len(e.Details) != 1 || e.Details[0].Field != "created_by" ||
		e.Message != "created_by: is required" || client.StatusCode(err) != 422 {
		t.Fatalf("JSON error answer: %#v (status %d)", err, client.StatusCode(err))
	}

	_, err = c.GetDocument(ctx, "nope")
	if apperr.CodeOf(err) != apperr.NotFound || apperr.As(err).Message != "404 page not found" || client.StatusCode(err) != 404 {
		t.Fatalf("plain-text answer: %v", err)
	}
	_, err = c.GetSignature(ctx, "x")
	if apperr.CodeOf(err) != apperr.BadGateway || apperr.As(err).Message != "Bad Gateway" || client.StatusCode(err) != 502 {
		t.Fatalf("empty answer: %v", err)
	}

	// No answer at all is not an error answer of the API.
	dead, _ := client.New("http://127.0.0.1:1")
	if _, err := dead.GetDocument(ctx, "x"); err == nil || client.StatusCode(err) != 0 || errors.As(err, &e) {
		t.Fatalf("unreachable server: %v", err)
	}
}

func TestNewRefusesAURLThatIsNotHTTP(t *testing.T) {
	for _, u := range []string{"ftp://x", "localhost:8000", "http://", ""} {
		if _, err := client.New(u); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}

func TestUploadStreamsTheForm(t *testing.T) {
	got := make(chan testenv.Form, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /documents", func(w http.ResponseWriter, r *http.Request) {
		f, err := testenv.ReadForm(r)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		got <- f
		w.Header().Set(api.CommitLSNHeader, "12345")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":"d1","title":"T","content_type":"text/csv","content_size":5,"version":1}`)
	})
	c := fake(t, mux)
	// A reader the client cannot size: the form must be streamed.
	pr, pw := io.Pipe()
	go func() { io.WriteString(pw, "a,b\n1"); pw.Close() }()
	d, err := c.UploadDocument(context.Background(), client.Upload{Title: "T", CreatedBy: "a@b.co", ContentType: "text/csv", FileName: "x.csv", Content: pr})
	if err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.ContentLength != -1 {
		t.Errorf("Content-Length %d: the form was buffered", s.ContentLength)
	}
	if strings.Join(s.Names, ",") != "title,created_by,content_type,file" || s.Fields["title"] != "T" ||
		s.Fields["created_by"] != "a@b.co" || s.Fields["content_type"] != "text/csv" {
		t.Errorf("form parts %v %v", s.Names, s.Fields)
	}
	if s.FileName != "x.csv" || s.FileType != "application/octet-stream" || string(s.File) != "a,b\n1" {
		t.Errorf("file part %q %q %q", s.FileName, s.FileType, s.File)
	}
	if d.ID != "d1" || d.ContentSize != 5 || d.CommitLSN != 12345 {
		t.Errorf("answer %+v", d)
	}
}

func TestContentRange(t *testing.T) {
	content := "0123456789"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /documents/{id}/content", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "ignores-range" {
			r.Header.Del("Range")
		}
		w.Header().Set("ETag", `"abc123"`)
		w.Header().Set("Content-Type", "text/plain")
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(content))
	})
	c := fake(t, mux)
	ctx := context.Background()

	part, err := c.DocumentContentRange(ctx, "d1", 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(part)
	part.Close()
	if string(b) != "2345" || part.Offset != 2 || part.Length != 4 || part.Size != 10 || part.SHA256 != "abc123" || part.ContentType != "text/plain" {
		t.Fatalf("range: %q %+v", b, part)
	}
	rest, err := c.DocumentContentRange(ctx, "d1", 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(rest)
	rest.Close()
	if string(b) != "789" || rest.Offset != 7 || rest.Size != 10 {
		t.Fatalf("open range: %q %+v", b, rest)
	}
	whole, err := c.DocumentContent(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(whole)
	whole.Close()
	if string(b) != content || whole.Size != 10 || whole.Offset != 0 {
		t.Fatalf("whole: %q %+v", b, whole)
	}
	if _, err := c.DocumentContentRange(ctx, "d1", 20, 5); client.StatusCode(err) != http.StatusRequestedRangeNotSatisfiable ||
		apperr.CodeOf(err) != apperr.RangeNotSatisfiable {
		t.Fatalf("range past the end: %v", err)
	}
	if _, err := c.DocumentContentRange(ctx, "ignores-range", 2, 4); err == nil {
		t.Fatal("a 200 to a Range request was taken for the range")
	}
}

func TestRequestsCarryTheirParameters(t *testing.T) {
	var mu sync.Mutex
	var got []string
	mux := http.NewServeMux()
	record := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got = append(got, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("If-Match"))
			mu.Unlock()
			io.WriteString(w, body)
		}
	}
	mux.HandleFunc("GET /search", record(`{"total":0,"documents":[]}`))
	mux.HandleFunc("GET /documents", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(api.NextCursorHeader, "next-page")
		record(`[]`)(w, r)
	})
	mux.HandleFunc("PATCH /documents/{id}", record(`{"id":"a b"}`))
	mux.HandleFunc("GET /aggregations/{field}", record(`{"field":"status","values":[]}`))
	c := fake(t, mux)
	ctx := context.Background()
	if _, err := c.Search(ctx, api.SearchRequest{Query: "sales q4", Status: api.StatusSigned, MinLSN: 42}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListDocuments(ctx, api.ListOptions{Skip: 20, Limit: 10}); err != nil {
		t.Fatal(err)
	}
	page, err := c.ListDocumentsPage(ctx, api.ListDocumentsRequest{Limit: 10, Cursor: "abc", Sort: api.SortUpdatedDesc, MinLSN: 42, Status: api.StatusSigned,
		CreatedBy: "a@b.co", CreatedAfter: time.Date(2025, 1, 2, 3, 4, 5, 6000, time.FixedZone("", 3600))})
	if err != nil || page.NextCursor != "next-page" || page.Documents == nil {
		t.Fatalf("%+v %v", page, err)
	}
	if _, err := c.UpdateDocumentIfVersion(ctx, "a b", 3, api.UpdateDocumentRequest{Status: api.StatusSent}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Aggregate(ctx, api.AggregationRequest{Field: api.AggregateStatus, Size: 5}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"GET /search?from=0&min_lsn=42&q=sales+q4&status=signed ",
		"GET /documents?limit=10&skip=20 ",
		"GET /documents?created_after=2025-01-02T02%3A04%3A05.000006Z&created_by=a%40b.co&cursor=abc&limit=10&min_lsn=42&sort=-updated_at&status=signed ",
		`PATCH /documents/a%20b "3"`,
		"GET /aggregations/status?size=5 ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sent\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReadyWhileDraining(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"status":"draining"}`)
	})
	h, err := fake(t, mux).Ready(context.Background())
	if h == nil || h.Status != "draining" || apperr.CodeOf(err) != apperr.Unavailable || client.StatusCode(err) != 503 {
		t.Fatalf("%+v %v", h, err)
	}
}

// wsFake is a realtime WebSocket: each connection gets the messages of
// its turn and is then closed with the turn's code.
type wsFake struct {
	mu    sync.Mutex
	dials []string // the query of each handshake
	turns []wsTurn
}

type wsTurn struct {
	frames []string
	close  websocket.StatusCode
}

func (f *wsFake) handshakes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.dials...)
}

func (f *wsFake) handler(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("token") != "tok" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"code":"unauthenticated","message":"a bearer token is required","details":[]}}`)
		return
	}
	f.mu.Lock()
	f.dials = append(f.dials, r.URL.RawQuery)
	turn := f.turns[min(len(f.dials), len(f.turns))-1]
	f.mu.Unlock()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	for _, m := range turn.frames {
		_ = c.Write(r.Context(), websocket.MessageText, []byte(m))
	}
	c.Close(turn.close, "")
}

func TestWatchResumesAfterTheLastMessage(t *testing.T) {
	f := &wsFake{turns: []wsTurn{
		{frames: []string{`{"type":"document.sent","data":{"document_id":"d1","old_status":"created","new_status":"sent"},"timestamp":"t1","lsn":100}`}, close: websocket.StatusGoingAway},
		{frames: []string{`{"type":"document.signed","data":{"document_id":"d1","old_status":"sent","new_status":"signed"},"timestamp":"t2","lsn":200}`}, close: websocket.StatusNormalClosure},
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/{id}", f.handler)
	c := fake(t, mux)
	ctx := context.Background()

	if _, err := c.Watch(ctx, "d1", client.WatchOptions{}); apperr.CodeOf(err) != apperr.Unauthenticated || client.StatusCode(err) != 401 {
		t.Fatalf("handshake without a token: %v", err)
	}

	var reconnects []uint64
	w, err := c.Watch(ctx, "d1", client.WatchOptions{Token: "tok", Since: 50, Resume: true,
		Reconnecting: func(since uint64, _ error) { reconnects = append(reconnects, since) }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var types []string
	for {
		m, err := w.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sd, ok := m.Data.(api.StatusData)
		if !ok || sd.DocumentID != "d1" {
			t.Fatalf("data %#v", m.Data)
		}
		types = append(types, m.Type+">"+sd.NewStatus)
		if !strings.Contains(string(w.Frame()), `"lsn":`+map[string]string{"sent": "100", "signed": "200"}[sd.NewStatus]) {
			t.Fatalf("frame %s", w.Frame())
		}
	}
	if strings.Join(types, ",") != "document.sent>sent,document.signed>signed" {
		t.Fatalf("messages %v", types)
	}
	if d := f.handshakes(); strings.Join(d, " ") != "since=50&token=tok since=100&token=tok" {
		t.Fatalf("handshakes %v: the reconnect must ask for what follows the last message", d)
	}
	if w.LSN() != 200 {
		t.Fatalf("LSN %d", w.LSN())
	}
	if len(reconnects) != 1 || reconnects[0] != 100 {
		t.Fatalf("Reconnecting told %v; want once, since 100", reconnects)
	}
}

func TestWatchWithoutResumeEndsWhenTheServerGoesAway(t *testing.T) {
	f := &wsFake{turns: []wsTurn{{frames: []string{`{"type":"document.deleted","data":{"document_id":"d1"},"timestamp":"t","lsn":7}`}, close: websocket.StatusGoingAway}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/{id}", f.handler)
	w, err := fake(t, mux).Watch(context.Background(), "d1", client.WatchOptions{Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := w.Next(context.Background())
	if err != nil || m.Type != api.TypeDocumentDeleted || m.Data.(api.DocumentData).DocumentID != "d1" {
		t.Fatalf("%+v %v", m, err)
	}
	if _, err := w.Next(context.Background()); err != io.EOF {
		t.Fatalf("after 1001: %v, want io.EOF", err)
	}
	if d := f.handshakes(); len(d) != 1 {
		t.Fatalf("%d handshakes without Resume", len(d))
	}
}

// A watch that cannot connect says so without the token: the transport's
// message quotes the URL, and CLI output or a caller's log must not carry
// the credential.
func TestAFailedWatchDialDoesNotShowTheToken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: the dial fails in the transport
	c, err := client.New("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	const token = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl"
	_, err = c.Watch(context.Background(), "7d9b1a3e-8a7f-4b52-9f3e-2f6d1c0b9a11", client.WatchOptions{Token: token})
	if err == nil {
		t.Fatal("watch of a closed port succeeded")
	}
	if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "c2VjcmV0LXBheWxvYWQ") {
		t.Fatalf("the error shows the token: %v", err)
	}
	if !strings.Contains(err.Error(), "REDACTED") {
		t.Fatalf("the error does not show where the token was (want REDACTED): %v", err)
	}
}

// TestACreateWhoseAnswerWasLostIsRetriedWithTheSameKey: the server commits
// the first create and the connection drops before the answer; the client
// sends it again with the same Idempotency-Key and returns the document
// the server answers (the first one, replayed), never erroring and never
// asking for a second.
func TestACreateWhoseAnswerWasLostIsRetriedWithTheSameKey(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /documents", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get(api.IdempotencyKeyHeader))
		n := len(keys)
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		switch n {
		case 1: // committed, then the answer is lost
			c, _, _ := http.NewResponseController(w).Hijack()
			c.Close()
		case 2: // "retry later"
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":"unavailable","message":"database unavailable","details":[]}}`)
		default: // the first create's answer, replayed
			w.Header().Set(api.IdempotentReplayedHeader, "true")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"01a2","title":"Lease","version":1}`)
		}
	})
	c := fake(t, mux)
	d, err := c.CreateDocument(context.Background(), api.CreateDocumentRequest{Title: "Lease", Content: "x", CreatedBy: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != "01a2" {
		t.Fatalf("id %q", d.ID)
	}
	if len(keys) != 3 || keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Fatalf("Idempotency-Key of each attempt: %q; want one key, sent three times", keys)
	}
	// A mistake is not retried, and each create has its own key.
	mux2 := http.NewServeMux()
	var calls int
	mux2.HandleFunc("POST /documents", func(w http.ResponseWriter, r *http.Request) {
		calls++
		keys = append(keys, r.Header.Get(api.IdempotencyKeyHeader))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		io.WriteString(w, `{"error":{"code":"validation","message":"title: is required","details":[]}}`)
	})
	c = fake(t, mux2)
	if _, err := c.CreateDocument(context.Background(), api.CreateDocumentRequest{}); apperr.CodeOf(err) != apperr.Validation || calls != 1 {
		t.Fatalf("err %v after %d calls; want validation after 1", err, calls)
	}
	if keys[3] == keys[0] {
		t.Fatal("two creates sent the same key")
	}
}

// WithToken sends the credential as a bearer header on every request and
// on a watch's handshake (never in the URL, where access logs keep it).
func TestWithTokenSendsTheBearerHeader(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization")+" "+r.URL.RawQuery)
		mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/ws/") {
			c, err := websocket.Accept(w, r, nil)
			if err == nil {
				c.Close(websocket.StatusNormalClosure, "")
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `[]`)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, client.WithToken("tok-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListDocuments(context.Background(), api.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(context.Background(), "7d9b1a3e-8a7f-4b52-9f3e-2f6d1c0b9a11", client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || !strings.HasPrefix(seen[0], "Bearer tok-1 ") || seen[1] != "Bearer tok-1 " {
		t.Fatalf("requests saw %q", seen)
	}
}
