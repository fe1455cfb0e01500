package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

type sample struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func TestDecodeMapsEveryMistakeToAClientError(t *testing.T) {
	cases := []struct {
		name, body, ct string
		code           apperr.Code
		field          string
	}{
		{"valid", `{"name":"x","count":1}`, "application/json", "", ""},
		{"no content type is accepted", `{"name":"x"}`, "", "", ""},
		{"malformed", `{"name":`, "application/json", apperr.Invalid, ""},
		{"empty", ``, "application/json", apperr.Invalid, ""},
		{"not an object", `"x"`, "application/json", apperr.Invalid, ""},
		{"trailing value", `{} {}`, "application/json", apperr.Invalid, ""},
		{"wrong type names the field", `{"count":"many"}`, "application/json", apperr.Validation, "count"},
		{"unknown field is named", `{"colour":"red"}`, "application/json", apperr.Validation, "colour"},
		{"too large", `{"name":"` + strings.Repeat("x", 100) + `"}`, "application/json", apperr.TooLarge, ""},
		{"a form body", `name=x`, "application/x-www-form-urlencoded", apperr.Invalid, ""},
		{"JSON under curl's default content type", `{"name":"x"}`, "application/x-www-form-urlencoded", "", ""},
		{"bytes that are not UTF-8 name the field", `{"name":"a` + "\xff" + `b"}`, "application/json", apperr.Validation, "name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
			if c.ct != "" {
				r.Header.Set("Content-Type", c.ct)
			}
			_, err := Decode[sample](httptest.NewRecorder(), r, 64)
			if c.code == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			e := apperr.As(err)
			if e.Code != c.code {
				t.Fatalf("code %q (%v), want %q", e.Code, err, c.code)
			}
			if c.field != "" && (len(e.Details) != 1 || e.Details[0].Field != c.field) {
				t.Fatalf("details %+v, want field %q", e.Details, c.field)
			}
		})
	}
}

func TestWrapSetsRequestIDAndRecoversPanics(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("bug") })
	mux.HandleFunc("GET /id", func(w http.ResponseWriter, r *http.Request) {
		Respond(w, 200, map[string]string{"id": logging.RequestID(r.Context())})
	})
	h := Wrap("test", logging.Discard(), mux)

	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/id", nil)
	req.Header.Set(RequestIDHeader, "abc-123")
	h.ServeHTTP(rec, req)
	var got map[string]string
	_ = json.Unmarshal(rec.Body.Bytes(), &got)
	if got["id"] != "abc-123" || rec.Header().Get(RequestIDHeader) != "abc-123" {
		t.Fatalf("request id not passed through: %v %q", got, rec.Header().Get(RequestIDHeader))
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/id", nil))
	if len(rec.Header().Get(RequestIDHeader)) != 32 {
		t.Fatalf("no request id created: %q", rec.Header().Get(RequestIDHeader))
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 500 || body.Error.Code != "internal" || body.Error.Message != "internal error" {
		t.Fatalf("panic: %d %s", rec.Code, rec.Body)
	}
}

func TestClientIPTrustsForwardedForOnlyFromTrustedPeers(t *testing.T) {
	trusted, err := ParsePrefixes("10.0.0.0/8, ::1")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ remote, xff, want string }{
		{"10.1.2.3:5000", "203.0.113.7, 10.1.2.3", "203.0.113.7"},
		{"[::1]:5000", "198.51.100.1", "198.51.100.1"},
		{"192.0.2.9:5000", "203.0.113.7", "192.0.2.9"},
		{"10.1.2.3:5000", "", "10.1.2.3"},
		{"10.1.2.3:5000", "not-an-ip", "10.1.2.3"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := ClientIP(r, trusted); got != c.want {
			t.Errorf("%s via %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
	if _, err := ParsePrefixes("10.0.0.0/99"); err == nil {
		t.Error("a bad prefix parsed")
	}
}

func TestReadyIs200WithDependencyStatesAsDetail(t *testing.T) {
	down := func(context.Context) error { return errors.New("connection refused") }
	up := func(context.Context) error { return nil }
	hung := func(context.Context) error { select {} } // ignores its context
	off := func(context.Context) error { return Off("not configured") }
	cases := []struct {
		name   string
		checks []Check
		code   int
		status string
	}{
		{"all up", []Check{{Name: "db", Probe: up}, {Name: "cache", Probe: up}}, 200, "ok"},
		{"one down", []Check{{Name: "db", Probe: up}, {Name: "cache", Probe: down}}, 200, "degraded"},
		{"all down", []Check{{Name: "db", Probe: down}, {Name: "cache", Probe: down}}, 200, "degraded"},
		{"one hung past ReadyTimeout", []Check{{Name: "db", Probe: up}, {Name: "grpc", Probe: hung}}, 200, "degraded"},
		{"one off by configuration", []Check{{Name: "db", Probe: up}, {Name: "invalidator", Probe: off}}, 200, "ok"},
		{"one off, one down", []Check{{Name: "db", Probe: down}, {Name: "invalidator", Probe: off}}, 200, "degraded"},
		{"a critical one down", []Check{{Name: "db", Probe: down}, {Name: "consumers", Probe: down, Critical: true}}, 503, "unavailable"},
		{"a critical one up, another down", []Check{{Name: "db", Probe: down}, {Name: "consumers", Probe: up, Critical: true}}, 200, "degraded"},
		{"a critical one hung", []Check{{Name: "engine", Probe: hung, Critical: true}}, 503, "unavailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mux := http.NewServeMux()
			Routes(mux, c.checks...)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("GET", "/health/ready", nil))
			var body struct{ Status string }
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != c.code || body.Status != c.status {
				t.Fatalf("%d %s; want %d %s", rec.Code, rec.Body, c.code, c.status)
			}
		})
	}
}

func TestWrapLabelsMetricsByRoutePattern(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := Wrap("metrics-test", logging.Discard(), mux)
	for _, id := range []string{"a", "b", "c"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/items/"+id, nil))
	}
	got := testutil.ToFloat64(requests.WithLabelValues("metrics-test", "GET", "GET /items/{id}", "418"))
	if got != 3 {
		t.Fatalf("requests labelled by the route pattern: %v, want 3 (one series for every id)", got)
	}
}

// net/http takes any token as a method: invented ones share one "OTHER"
// series, so a client cannot grow the metrics (or the series map) at will.
func TestInventedMethodsShareOneMetricSeries(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {})
	h := Wrap("methods-test", logging.Discard(), mux)
	for i := range 50 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(fmt.Sprintf("FOO%d", i), "/items/a", nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/items/a", nil))
	n := 0
	ch := make(chan prometheus.Metric, 1000)
	requests.Collect(ch)
	close(ch)
	for m := range ch {
		var d dto.Metric
		_ = m.Write(&d)
		for _, l := range d.GetLabel() {
			if l.GetName() == "service" && l.GetValue() == "methods-test" {
				n++
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d request series for one GET and 50 invented methods, want 2 (GET and OTHER)", n)
	}
	if got := testutil.ToFloat64(requests.WithLabelValues("methods-test", "OTHER", "unmatched", "405")); got != 50 {
		t.Errorf("OTHER series: %v, want 50", got)
	}
}

func TestUnknownPathAndMethodAnswerTheJSONErrorShape(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("DELETE /items/{id}", func(w http.ResponseWriter, r *http.Request) {})
	Routes(mux)
	srv := httptest.NewServer(Wrap("unmatched-test", logging.Discard(), mux))
	t.Cleanup(srv.Close)
	cases := []struct {
		name, method, path string
		status             int
		code               apperr.Code
		allow              string
	}{
		{"an unknown path is not_found", "GET", "/nope", 404, apperr.NotFound, ""},
		{"an unknown path under a known one is not_found", "GET", "/items/1/more", 404, apperr.NotFound, ""},
		{"a known path with another method is method_not_allowed", "POST", "/items/1", 405, apperr.MethodNotAllowed, "DELETE, GET, HEAD"},
		{"a health route with another method is method_not_allowed", "POST", "/health/live", 405, apperr.MethodNotAllowed, "GET, HEAD"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var er apperr.Body
			resp := testenv.Do(t, c.method, srv.URL+c.path, nil, &er)
			if resp.StatusCode != c.status || er.Error.Code != c.code || er.Error.Message == "" || er.Error.Details == nil {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, er.Error, c.status, c.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if got := resp.Header.Get("Allow"); got != c.allow {
				t.Fatalf("Allow %q, want %q", got, c.allow)
			}
		})
	}
}

func TestServeContentAnswersRangeAndPreconditionErrorsAsJSON(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("ETag", `"abc"`)
		ServeContent(w, r, time.Unix(1_700_000_000, 0), strings.NewReader("0123456789"))
	})
	cases := []struct {
		name, header, value string
		status              int
		code                apperr.Code
	}{
		{"a range inside the content is served", "Range", "bytes=2-5", 206, ""},
		{"a range past the end is range_not_satisfiable", "Range", "bytes=20-30", 416, apperr.RangeNotSatisfiable},
		{"an If-Match that does not match is precondition_failed", "If-Match", `"other"`, 412, apperr.PreconditionFailed},
		{"an If-None-Match that matches is not modified", "If-None-Match", `"abc"`, 304, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set(c.header, c.value)
			h.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body)
			}
			if c.code == "" {
				if c.status == 206 && rec.Body.String() != "2345" {
					t.Fatalf("body %q", rec.Body)
				}
				return
			}
			var body struct {
				Error struct {
					Code    apperr.Code `json:"code"`
					Message string      `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code != c.code || body.Error.Message == "" {
				t.Fatalf("body %q (%v), want code %s", rec.Body, err, c.code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
}

func TestRequestIDFromTheClientIsKeptOnlyWhenItIsSafe(t *testing.T) {
	h := Wrap("test", logging.Discard(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(r.Header.Get(RequestIDHeader)))
	}))
	cases := []struct {
		name, given string
		kept        bool
	}{
		{"a UUID is kept", "0195f3c2-7d1e-7b3a-9c4d-1f2e3a4b5c6d", true},
		{"a trace ID with = and : is kept", "Root=1-5e1b4151-5ac6c58f:span.7", true},
		{"markup is replaced", "<script>alert(1)</script>", false},
		{"spaces and quotes are replaced", `a "b" c`, false},
		{"a newline is replaced", "a\nb", false},
		{"longer than 128 bytes is replaced", strings.Repeat("a", 129), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set(RequestIDHeader, c.given)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			got := w.Header().Get(RequestIDHeader)
			if (got == c.given) != c.kept || got == "" || w.Body.String() != got {
				t.Fatalf("given %q: answered %q, handler saw %q, want kept=%v", c.given, got, w.Body.String(), c.kept)
			}
			if strings.ContainsAny(got, "<>\" \n") {
				t.Fatalf("unsafe request ID reflected: %q", got)
			}
		})
	}
}

func TestPathsWithDotOrEmptySegmentsAreNotFoundNotRedirected(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /documents/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	mux.HandleFunc("GET /etc/passwd", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	srv := httptest.NewServer(Wrap("test", logging.Discard(), mux))
	t.Cleanup(srv.Close)
	for _, p := range []string{"/documents/../../etc/passwd", "/documents/./x", "/documents//x", "/documents/%2e%2e/%2e%2e/etc/passwd"} {
		t.Run(p, func(t *testing.T) {
			// A raw request line: Go's client would clean nothing, but be
			// explicit that the path reaches the server as written.
			req, _ := http.NewRequest("GET", srv.URL, nil)
			req.URL.Opaque = p
			resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != http.StatusNotFound || body.Error.Code != "not_found" || resp.Header.Get("Location") != "" {
				t.Fatalf("%s: %d %+v Location=%q, want 404 JSON", p, resp.StatusCode, body, resp.Header.Get("Location"))
			}
		})
	}
	resp, err := http.Get(srv.URL + "/documents/abc")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a clean path: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestQueryNamesEveryBadParameterWithOneRule(t *testing.T) {
	cases := []struct {
		name, query string
		skip, limit int
		fields      []string
	}{
		{"defaults", "", 0, DefaultLimit, nil},
		{"in range", "skip=5&limit=1000", 5, 1000, nil},
		{"every bad one is named", "skip=-1&limit=1001", 0, DefaultLimit, []string{"skip", "limit"}},
		{"a word is refused", "skip=ten&limit=1.5", 0, DefaultLimit, []string{"skip", "limit"}},
		{"zero is not a limit", "limit=0", 0, DefaultLimit, []string{"limit"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := NewQuery(httptest.NewRequest("GET", "/?"+c.query, nil))
			skip, limit := q.Page()
			var got []string
			if err := q.Err(); err != nil {
				e := apperr.As(err)
				if e.Code != apperr.Validation {
					t.Fatalf("code %s", e.Code)
				}
				for _, d := range e.Details {
					got = append(got, d.Field)
				}
			}
			if skip != c.skip || limit != c.limit || strings.Join(got, ",") != strings.Join(c.fields, ",") {
				t.Fatalf("skip %d limit %d fields %v; want %d %d %v", skip, limit, got, c.skip, c.limit, c.fields)
			}
		})
	}
	q := NewQuery(httptest.NewRequest("GET", "/?since=12", nil))
	if lsn, ok := q.LSN("since", q.Get("since")); !ok || lsn != 12 || q.Err() != nil {
		t.Fatalf("LSN 12: %d %v %v", lsn, ok, q.Err())
	}
	if _, ok := q.LSN("since", "-3"); ok || q.Err() == nil {
		t.Fatal("a negative LSN was taken")
	}
}
