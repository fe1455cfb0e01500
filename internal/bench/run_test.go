package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeSystem answers the routes the scenarios use, like the services do
// (shape only), and counts what it was sent.
type fakeSystem struct {
	mu    sync.Mutex
	paths map[string]int
	n     atomic.Int64
	srv   *httptest.Server
	// watchers are the WebSocket subscribers (/ws/{id}); a PATCH of a
	// title is sent to each, with the old title too, as realtime does.
	watchers []*websocket.Conn
	title    string
}

func newFakeSystem(t *testing.T, h func(w http.ResponseWriter, r *http.Request) bool) *fakeSystem {
	f := &fakeSystem{paths: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		key := r.Method + " " + r.URL.Path
		if strings.HasPrefix(r.URL.Path, "/documents/") {
			key = r.Method + " /documents/{id}"
			if strings.HasSuffix(r.URL.Path, "/stats") {
				key += "/stats"
			}
		}
		if strings.HasPrefix(r.URL.Path, "/ws/") {
			f.mu.Unlock()
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			f.mu.Lock()
			f.watchers = append(f.watchers, c)
			f.mu.Unlock()
			_, _, _ = c.Read(context.Background()) // until the client goes
			return
		}
		f.paths[key]++
		f.mu.Unlock()
		f.n.Add(1)
		if h != nil && h(w, r) {
			return
		}
		switch key {
		case "POST /documents":
			w.WriteHeader(201)
			fmt.Fprintf(w, `{"id":"doc-%d"}`, f.n.Load())
		case "GET /documents":
			w.Header().Set("X-Next-Cursor", "c1")
			fmt.Fprint(w, `[{"id":"a"},{"id":"b"}]`)
		case "GET /documents/{id}":
			fmt.Fprint(w, `{"id":"a"}`)
		case "GET /documents/{id}/stats":
			fmt.Fprint(w, `{"document_id":"a","views":1}`)
		case "PATCH /documents/{id}":
			var b struct{ Title string }
			_ = json.NewDecoder(r.Body).Decode(&b)
			f.mu.Lock()
			msg := fmt.Sprintf(`{"type":"document.updated","data":{"title":%q},"changes":{"title":{"old":%q}}}`, b.Title, f.title)
			f.title = b.Title
			watchers := slices.Clone(f.watchers)
			f.mu.Unlock()
			for _, c := range watchers {
				_ = c.Write(r.Context(), websocket.MessageText, []byte(msg))
			}
			fmt.Fprint(w, `{"id":"a"}`)
		case "GET /search":
			fmt.Fprint(w, `{"total":0,"documents":[]}`)
		case "POST /signatures":
			w.WriteHeader(201)
			fmt.Fprint(w, `{}`)
		default:
			w.WriteHeader(404)
		}
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSystem) options(scenario string) Options {
	return Options{DocumentURL: f.srv.URL, SearchURL: f.srv.URL, SignatureURL: f.srv.URL, RealtimeURL: f.srv.URL, Scenario: scenario,
		Users: 4, Requests: 40, Duration: time.Minute, Seed: 1}
}

// TestEveryScenarioRuns runs each scenario for a bounded number of
// requests and checks that it sends what the scenario says and reports it.
func TestEveryScenarioRuns(t *testing.T) {
	want := map[string][]string{
		"reference-mix": {"GET /documents", "POST /documents", "GET /search"},
		"get":           {"GET /documents/{id}"},
		"stats":         {"GET /documents/{id}/stats"},
		"create":        {"POST /documents"},
		"search":        {"GET /search"},
		"list":          {"GET /documents"},
		"sign":          {"POST /signatures"},
		"watch":         {"PATCH /documents/{id}"},
	}
	for _, sc := range Scenarios {
		t.Run(sc, func(t *testing.T) {
			f := newFakeSystem(t, nil)
			o := f.options(sc)
			if sc == "reference-mix" {
				o.Users = 40 // users wait 0.5–3 s between requests
			}
			rep, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Requests < 40 || rep.OK != rep.Requests || len(rep.Errors) != 0 || rep.Latency.P99 <= 0 {
				t.Fatalf("report %+v", rep)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, p := range want[sc] {
				if f.paths[p] == 0 {
					t.Errorf("%s sent no %s (sent %v)", sc, p, f.paths)
				}
			}
			var out bytes.Buffer
			rep.Text(&out)
			if !strings.Contains(out.String(), "total") {
				t.Errorf("text report:\n%s", out.String())
			}
			if _, err := json.Marshal(rep); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestOnlySuccessCountsAsThroughput: a 503 and a dropped connection are
// errors by status, not throughput.
func TestOnlySuccessCountsAsThroughput(t *testing.T) {
	var n atomic.Int64
	f := newFakeSystem(t, func(w http.ResponseWriter, r *http.Request) bool {
		switch n.Add(1) % 3 {
		case 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
			return true
		case 2:
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
			return true
		}
		return false
	})
	o := f.options("search")
	o.Users = 1
	o.Client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK == 0 || rep.Errors["503"] == 0 || rep.Errors["transport"] == 0 || rep.OK+rep.Errors["503"]+rep.Errors["transport"] != rep.Requests {
		t.Fatalf("ok %d errors %v of %d", rep.OK, rep.Errors, rep.Requests)
	}
	if rep.LatencyOK.P50 <= 0 || rep.LatencyOK.Max > rep.Latency.Max || rep.Endpoints[0].LatencyOK.P99 <= 0 {
		t.Fatalf("2xx latency %+v beside every answer's %+v", rep.LatencyOK, rep.Latency)
	}
	if rep.Throughput != float64(rep.OK)/rep.Seconds {
		t.Fatalf("throughput %.1f counts more than the 2xx answers", rep.Throughput)
	}
}

// TestOpenLoopMeasuresFromTheIntendedSendTime: a server that serves one
// request at a time, 20 ms each (50/s), offered 100 requests/s. A closed
// loop would report ~20 ms; the open loop reports the queue that builds
// up, since each request's clock starts when it should have been sent.
func TestOpenLoopMeasuresFromTheIntendedSendTime(t *testing.T) {
	var mu sync.Mutex
	f := newFakeSystem(t, func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		time.Sleep(20 * time.Millisecond)
		mu.Unlock()
		return false
	})
	o := f.options("search")
	o.Rate, o.Requests = 100, 40
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	// The 40th request was due at 390 ms and served at ~800 ms.
	if rep.Latency.Max < 200 || rep.Latency.P50 < 40 {
		t.Fatalf("open loop latency %+v: the queue behind a slow server is not in it", rep.Latency)
	}
}

func TestUnknownScenarioIsRefused(t *testing.T) {
	if _, err := Run(context.Background(), Options{Scenario: "nope", Requests: 1}); err == nil || !strings.Contains(err.Error(), "reference-mix") {
		t.Fatalf("err = %v", err)
	}
}

// TestSignSignsDocumentsThatExist: the sign scenario posts the reference's
// signature body for documents the system has (listed, or created by the
// setup when there are fewer than 100), never an empty id.
func TestSignSignsDocumentsThatExist(t *testing.T) {
	var mu sync.Mutex
	signed := map[string]int{}
	f := newFakeSystem(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Path == "/signatures" {
			var b map[string]string
			_ = json.NewDecoder(r.Body).Decode(&b)
			mu.Lock()
			signed[b["document_id"]]++
			mu.Unlock()
			if b["signer_email"] == "" || b["signer_name"] == "" || b["signature_data"] == "" {
				w.WriteHeader(422)
				return true
			}
		}
		return false
	})
	rep, err := Run(context.Background(), f.options("sign"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK < 40 || len(rep.Errors) != 0 || len(rep.Endpoints) != 1 || rep.Endpoints[0].Name != "POST /signatures" {
		t.Fatalf("report %+v", rep)
	}
	mu.Lock()
	defer mu.Unlock()
	for id := range signed {
		if id != "a" && id != "b" && !strings.HasPrefix(id, "doc-") {
			t.Errorf("signed %q, which the system never had", id)
		}
	}
}

// TestWatchTimesEachSubscribersReceipt: with 5 subscribers, every change
// the writer makes is one "WS event" answer per subscriber, timed from
// the PATCH (the frame's newest bench-watch number, not the old title it
// also carries), and the PATCHes are their own endpoint.
func TestWatchTimesEachSubscribersReceipt(t *testing.T) {
	f := newFakeSystem(t, nil)
	o := f.options("watch")
	o.Users, o.Requests = 5, 60
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]EndpointReport{}
	for _, e := range rep.Endpoints {
		byName[e.Name] = e
	}
	ev, patch := byName["WS event"], byName["PATCH /documents/{id}"]
	if patch.OK == 0 || ev.OK == 0 || len(rep.Errors) != 0 {
		t.Fatalf("report %+v", rep)
	}
	// Each PATCH reaches 5 subscribers; the run may stop between a PATCH
	// and its receipts.
	if ev.OK < 5*(patch.OK-1) || ev.OK > 5*(patch.OK+1) {
		t.Fatalf("%d receipts for %d changes to 5 subscribers", ev.OK, patch.OK)
	}
	if ev.LatencyOK.P50 <= 0 || ev.LatencyOK.Max > 10_000 {
		t.Fatalf("receipt latency %+v", ev.LatencyOK)
	}
}
