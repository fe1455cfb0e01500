package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Scenarios `docstream bench` runs.
var Scenarios = []string{"reference-mix", "get", "stats", "create", "search", "list", "sign", "watch"}

// Options configure Run.
type Options struct {
	// Where each service answers: the gateway for all three, or each
	// service's own port.
	DocumentURL, SearchURL, SignatureURL string
	// RealtimeURL is where watch's subscribers connect (/ws/{id}): the
	// gateway or the realtime service.
	RealtimeURL string
	Scenario    string
	// Users is the closed loop's concurrency: simulated users in
	// reference-mix (each waiting between requests as the reference's
	// Locust users do), connections issuing back to back otherwise.
	Users int
	// Rate, when > 0, makes the run open-loop: requests are sent at this
	// rate whatever the answers' latency, and each latency is measured
	// from the request's intended send time, so a stall counts against
	// every request it delayed (no coordinated omission).
	Rate     float64
	Warmup   time.Duration // answers in the first Warmup are not counted
	Duration time.Duration // measured time after the warm-up
	Requests int           // stop after this many measured requests; 0: Duration only
	Query    string        // search: this query; "": the selective mix
	Progress io.Writer     // a live progress line each second; nil: none
	Seed     uint64
	Client   *http.Client // nil: one sized for Users
	// Token is sent as a bearer credential on every request (a JWT or an
	// API key), so a system in required mode can be measured with its
	// verification and permission filter in the path; "": none.
	Token string
	// OpsURL is a gateway whose GET /ops is read once a second while the
	// run measures, and after it until the indexer has caught up: the
	// change stream's backlog goes in the report. "": not read.
	OpsURL string
}

// Report is a run's result: only 2xx answers count as throughput; every
// other answer is an error counted by status ("transport" when there was
// no answer).
type Report struct {
	Scenario   string             `json:"scenario"`
	Users      int                `json:"users,omitempty"`
	Rate       float64            `json:"rate,omitempty"`
	Seconds    float64            `json:"seconds"`
	Requests   int64              `json:"requests"`
	OK         int64              `json:"ok"`
	Throughput float64            `json:"ok_per_s"`
	Errors     map[string]int64   `json:"errors"`
	Latency    Latency            `json:"latency_ms"`    // every answer
	LatencyOK  Latency            `json:"ok_latency_ms"` // 2xx answers only
	Endpoints  []EndpointReport   `json:"endpoints"`
	Lag        *LagReport         `json:"lag,omitempty"` // when Options.OpsURL is set
	endpoints  map[string]*series `json:"-"`
}

// EndpointReport is one endpoint's share of a run.
type EndpointReport struct {
	Name       string           `json:"name"`
	Requests   int64            `json:"requests"`
	OK         int64            `json:"ok"`
	Throughput float64          `json:"ok_per_s"`
	Errors     map[string]int64 `json:"errors"`
	Latency    Latency          `json:"latency_ms"`
	LatencyOK  Latency          `json:"ok_latency_ms"`
}

// Latency is HDR percentiles of every answer (errors included), in ms.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

type series struct {
	h        *hdrhistogram.Histogram // every answer
	hOK      *hdrhistogram.Histogram // 2xx answers
	requests int64
	ok       int64
	errors   map[string]int64
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
}

func newSeries() *series {
	return &series{h: newHistogram(), hOK: newHistogram(), errors: map[string]int64{}}
}

func latency(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()), Mean: h.Mean() / 1000}
}

// recorder collects answers; safe for concurrent use.
type recorder struct {
	mu        sync.Mutex
	measuring bool
	total     *series
	byName    map[string]*series
	interval  *hdrhistogram.Histogram
	intOK     int64
	intErr    int64
	measured  atomic.Int64
}

func (r *recorder) record(name string, status int, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	us := max(1, d.Microseconds())
	_ = r.interval.RecordValue(us)
	ok := status >= 200 && status < 300
	if ok {
		r.intOK++
	} else {
		r.intErr++
	}
	if !r.measuring {
		return
	}
	s := r.byName[name]
	if s == nil {
		s = newSeries()
		r.byName[name] = s
	}
	for _, x := range []*series{s, r.total} {
		_ = x.h.RecordValue(us)
		x.requests++
		if ok {
			x.ok++
			_ = x.hOK.RecordValue(us)
		} else {
			key := "transport"
			if status > 0 {
				key = strconv.Itoa(status)
			}
			x.errors[key]++
		}
	}
	r.measured.Add(1)
}

// task is one kind of request; do sends it and returns the status (0:
// no answer).
type task struct {
	name   string
	weight int
	do     func(ctx context.Context, u *user) int
}

// class is a kind of simulated user: its tasks and its wait between them.
type class struct {
	name    string
	tasks   []task
	waitMin time.Duration
	waitMax time.Duration
	// paced: the wait counts from the task's start, so that a user runs
	// a task every wait (a rate), not a wait after each (a think time).
	paced   bool
	onStart func(ctx context.Context, u *user)
}

func (c *class) pick(r *rand.Rand) task {
	total := 0
	for _, t := range c.tasks {
		total += t.weight
	}
	n := r.IntN(total)
	for _, t := range c.tasks {
		if n < t.weight {
			return t
		}
		n -= t.weight
	}
	return c.tasks[len(c.tasks)-1]
}

// user is one simulated user's state.
type user struct {
	r   *rand.Rand
	ids []string // documents this user created (reference-mix signs them)
	run *runner
}

type runner struct {
	o      Options
	client *http.Client
	rec    *recorder
	// ids is a shared pool of document ids for get and sign.
	idsMu  sync.Mutex
	ids    []string
	cursor atomic.Value // string: a list cursor to page on
	watch  *watchState  // the watch scenario's subscribers
	lag    *lagSampler  // nil unless Options.OpsURL
}

// send does one request and records it under name. The latency is
// measured from the intended send time the open loop puts in ctx, or from
// now.
func (rn *runner) send(ctx context.Context, name, method, url string, body []byte, out func(*http.Response, []byte)) int {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rn.authorize(req)
	start, scheduled := ctx.Value(intendedKey{}).(time.Time)
	if !scheduled {
		start = time.Now()
	}
	resp, err := rn.client.Do(req)
	status := 0
	if err == nil {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil {
			status = resp.StatusCode
			if out != nil && status/100 == 2 {
				out(resp, b)
			}
		}
	}
	if ctx.Err() != nil && status == 0 {
		return 0 // the run ended under it: not an answer
	}
	rn.rec.record(name, status, time.Since(start))
	return status
}

func (rn *runner) addID(id string) {
	rn.idsMu.Lock()
	defer rn.idsMu.Unlock()
	if len(rn.ids) < 100_000 {
		rn.ids = append(rn.ids, id)
	} else {
		rn.ids[rand.IntN(len(rn.ids))] = id
	}
}

func (rn *runner) randomID(r *rand.Rand) string {
	rn.idsMu.Lock()
	defer rn.idsMu.Unlock()
	if len(rn.ids) == 0 {
		return ""
	}
	return rn.ids[r.IntN(len(rn.ids))]
}

func decodeID(_ *http.Response, b []byte) (string, bool) {
	var d struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(b, &d) != nil || d.ID == "" {
		return "", false
	}
	return d.ID, true
}

// Request builders, with the reference's bodies (load-mix.md).
func (rn *runner) create(ctx context.Context, u *user, title, content string) int {
	body, _ := json.Marshal(map[string]string{"title": title, "content": content,
		"created_by": fmt.Sprintf("user%d@test.com", 1+u.r.IntN(100))})
	return rn.send(ctx, "POST /documents", http.MethodPost, rn.o.DocumentURL+"/documents", body, func(resp *http.Response, b []byte) {
		if id, ok := decodeID(resp, b); ok {
			u.ids = append(u.ids, id)
			rn.addID(id)
		}
	})
}

func (rn *runner) list(ctx context.Context, _ *user, query string) int {
	return rn.send(ctx, "GET /documents", http.MethodGet, rn.o.DocumentURL+"/documents"+query, nil, func(resp *http.Response, _ []byte) {
		if c := resp.Header.Get("X-Next-Cursor"); c != "" {
			rn.cursor.Store(c)
		}
	})
}

func (rn *runner) search(ctx context.Context, q string, size int, filter string) int {
	v := url.Values{"q": {q}, "size": {strconv.Itoa(size)}}
	if filter != "" {
		v.Set("status", filter)
	}
	return rn.send(ctx, "GET /search", http.MethodGet, rn.o.SearchURL+"/search?"+v.Encode(), nil, nil)
}

func (rn *runner) sign(ctx context.Context, u *user, id string) int {
	n := 1 + u.r.IntN(50)
	body, _ := json.Marshal(map[string]string{"document_id": id, "signer_email": fmt.Sprintf("signer%d@test.com", n),
		"signer_name": fmt.Sprintf("Signer %d", n), "signature_data": "base64encodedimage=="})
	return rn.send(ctx, "POST /signatures", http.MethodPost, rn.o.SignatureURL+"/signatures", body, nil)
}

var (
	searchTermsDoc = []string{"test", "document", "contract", "sales", "agreement"}
	searchTerms    = []string{"test", "document", "contract", "sales", "agreement", "Q4", "2025"}
)

// classes returns the scenario's kinds of user.
func (rn *runner) classes() ([]*class, error) {
	switch rn.o.Scenario {
	case "reference-mix":
		// The reference's Locust file: DocumentUser and SearchUser in
		// equal numbers (both weight 1).
		doc := &class{name: "DocumentUser", waitMin: time.Second, waitMax: 3 * time.Second,
			onStart: func(ctx context.Context, u *user) {
				for i := range 3 {
					rn.create(ctx, u, fmt.Sprintf("Init Document %d", i), "Initial document for testing")
				}
			},
			tasks: []task{
				{"list", 5, func(ctx context.Context, u *user) int { return rn.list(ctx, u, "") }},
				{"create", 3, func(ctx context.Context, u *user) int {
					return rn.create(ctx, u, fmt.Sprintf("Test Document %d", 1+u.r.IntN(10000)), "Load test content for performance testing")
				}},
				{"search", 2, func(ctx context.Context, u *user) int {
					return rn.search(ctx, searchTermsDoc[u.r.IntN(len(searchTermsDoc))], 10, "")
				}},
				{"sign", 1, func(ctx context.Context, u *user) int {
					if len(u.ids) == 0 {
						return -1
					}
					return rn.sign(ctx, u, u.ids[u.r.IntN(len(u.ids))])
				}},
			}}
		srch := &class{name: "SearchUser", waitMin: 500 * time.Millisecond, waitMax: 2 * time.Second,
			tasks: []task{
				{"search", 10, func(ctx context.Context, u *user) int {
					return rn.search(ctx, searchTerms[u.r.IntN(len(searchTerms))], 20, "")
				}},
				{"list", 1, func(ctx context.Context, u *user) int { return rn.list(ctx, u, "") }},
			}}
		return []*class{doc, srch}, nil
	case "get":
		return []*class{{name: "get", tasks: []task{{"get", 1, func(ctx context.Context, u *user) int {
			id := rn.randomID(u.r)
			return rn.send(ctx, "GET /documents/{id}", http.MethodGet, rn.o.DocumentURL+"/documents/"+id, nil, nil)
		}}}}}, nil
	case "stats":
		return []*class{{name: "stats", tasks: []task{{"stats", 1, func(ctx context.Context, u *user) int {
			id := rn.randomID(u.r)
			return rn.send(ctx, "GET /documents/{id}/stats", http.MethodGet, rn.o.DocumentURL+"/documents/"+id+"/stats", nil, nil)
		}}}}}, nil
	case "create":
		return []*class{{name: "create", tasks: []task{{"create", 1, func(ctx context.Context, u *user) int {
			i := u.r.IntN(1 << 30)
			return rn.create(ctx, u, fmt.Sprintf("Bench Document %d", i), kib(Document(i).Content))
		}}}}}, nil
	case "search":
		return []*class{{name: "search", tasks: []task{{"search", 1, func(ctx context.Context, u *user) int {
			if rn.o.Query != "" {
				return rn.search(ctx, rn.o.Query, 10, "")
			}
			// The selective mix: a 0.1 % word with a typo and a status
			// filter, or a 1 % word; size 10–20.
			if u.r.IntN(2) == 0 {
				return rn.search(ctx, Typo(Rare[u.r.IntN(len(Rare))], u.r), 10, "created")
			}
			return rn.search(ctx, Common[u.r.IntN(len(Common))], 20, "")
		}}}}}, nil
	case "sign":
		// The reference's signature body, on documents that exist (the
		// setup's, as get reads them).
		return []*class{{name: "sign", tasks: []task{{"sign", 1, func(ctx context.Context, u *user) int {
			return rn.sign(ctx, u, rn.randomID(u.r))
		}}}}}, nil
	case "watch":
		return []*class{rn.watchClass()}, nil
	case "list":
		// The first page, or the page after one seen earlier (keyset):
		// a flat list costs the same either way.
		return []*class{{name: "list", tasks: []task{{"list", 1, func(ctx context.Context, u *user) int {
			if c, _ := rn.cursor.Load().(string); c != "" && u.r.IntN(2) == 0 {
				return rn.list(ctx, u, "?cursor="+url.QueryEscape(c))
			}
			return rn.list(ctx, u, "")
		}}}}}, nil
	}
	return nil, fmt.Errorf("unknown scenario %q: choose one of %s", rn.o.Scenario, strings.Join(Scenarios, ", "))
}

// kib repeats s to 1 KiB: the create payload.
func kib(s string) string {
	var b strings.Builder
	for b.Len() < 1024 {
		b.WriteString(s)
		b.WriteByte(' ')
	}
	return b.String()[:1024]
}

// Run runs a scenario and reports what it measured.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Users <= 0 {
		o.Users = 1
	}
	if o.Duration <= 0 && o.Requests <= 0 {
		return nil, fmt.Errorf("bench: a duration or a request count is needed")
	}
	client := o.Client
	if client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 0
		t.MaxIdleConnsPerHost = max(o.Users, 64)
		client = &http.Client{Transport: t, Timeout: 60 * time.Second}
	}
	rn := &runner{o: o, client: client,
		rec: &recorder{total: newSeries(), byName: map[string]*series{}, interval: newHistogram()}}
	classes, err := rn.classes()
	if err != nil {
		return nil, err
	}
	if err := rn.setup(ctx); err != nil {
		return nil, err
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	users := o.Users
	if o.Scenario == "watch" {
		// Users are the subscribers; one writer changes the document.
		if err := rn.setupWatch(ctx, runCtx); err != nil {
			return nil, err
		}
		defer rn.closeWatch()
		users = 1
	}
	var wg sync.WaitGroup
	if o.OpsURL != "" {
		rn.lag = newLagSampler(o.OpsURL, o.Token, client)
	}
	lagCtx, stopLag := context.WithCancel(ctx)
	defer stopLag()
	var lagDone sync.WaitGroup
	startLag := func() {
		if rn.lag != nil {
			lagDone.Add(1)
			go func() { defer lagDone.Done(); rn.lag.run(lagCtx) }()
		}
	}
	started := time.Now()
	if o.Rate > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); rn.openLoop(runCtx, classes) }()
	} else {
		for i := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rn.userLoop(runCtx, classes[i%len(classes)], o.Seed+uint64(i))
			}()
		}
	}

	// The clock: warm-up, then measure until Duration or Requests.
	var measureStart time.Time
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	warm := time.After(o.Warmup)
	if o.Warmup <= 0 {
		warm = nil
		rn.startMeasuring()
		measureStart = time.Now()
		startLag()
	}
	var end <-chan time.Time
	if measureStart != (time.Time{}) && o.Duration > 0 {
		end = time.After(o.Duration)
	}
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-warm:
			rn.startMeasuring()
			measureStart = time.Now()
			startLag()
			if o.Duration > 0 {
				end = time.After(o.Duration)
			}
			warm = nil
		case <-end:
			break loop
		case <-poll.C:
			if o.Requests > 0 && rn.rec.measured.Load() >= int64(o.Requests) {
				break loop
			}
		case <-tick.C:
			rn.progress(started, measureStart)
		}
	}
	rn.rec.mu.Lock()
	rn.rec.measuring = false
	rn.rec.mu.Unlock()
	elapsed := time.Since(measureStart)
	stop()
	wg.Wait()
	stopLag()
	lagDone.Wait()
	if o.Progress != nil {
		fmt.Fprintln(o.Progress)
	}
	rep := rn.report(elapsed)
	if rn.lag != nil {
		// The backlog at the end: read now that the load has stopped
		// (the last read of the run may have been cut short by it).
		end := time.Now()
		rn.lag.sample(ctx)
		rn.lag.catchUp(ctx, end)
		rep.Lag = rn.lag.report()
	}
	return rep, nil
}

func (rn *runner) startMeasuring() {
	rn.rec.mu.Lock()
	rn.rec.measuring = true
	rn.rec.mu.Unlock()
}

// authorize adds the run's credential, if any.
func (rn *runner) authorize(req *http.Request) {
	if rn.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+rn.o.Token)
	}
}

// setup gives get, stats and sign documents to work on (not measured).
func (rn *runner) setup(ctx context.Context) error {
	if rn.o.Scenario != "get" && rn.o.Scenario != "stats" && rn.o.Scenario != "sign" {
		return nil
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rn.o.DocumentURL+"/documents?limit=1000", nil)
	rn.authorize(req)
	resp, err := rn.client.Do(req)
	if err != nil {
		return fmt.Errorf("bench %s: list documents: %w", rn.o.Scenario, err)
	}
	defer resp.Body.Close()
	var docs []struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&docs) != nil {
		return fmt.Errorf("bench %s: list documents: %s", rn.o.Scenario, resp.Status)
	}
	for _, d := range docs {
		rn.addID(d.ID)
	}
	u := &user{r: rand.New(rand.NewPCG(rn.o.Seed, 1)), run: rn}
	for len(rn.ids) < 100 && ctx.Err() == nil {
		if st := rn.create(ctx, u, "Bench Document", rn.o.Scenario+" scenario"); st/100 != 2 {
			return fmt.Errorf("bench %s: creating documents to work on: status %d", rn.o.Scenario, st)
		}
	}
	return nil
}

// userLoop is one closed-loop user: a task, then the class's wait.
func (rn *runner) userLoop(ctx context.Context, c *class, seed uint64) {
	u := &user{r: rand.New(rand.NewPCG(seed, 0xbe7c4)), run: rn}
	if c.onStart != nil {
		c.onStart(ctx, u)
	}
	for ctx.Err() == nil {
		started := time.Now()
		c.pick(u.r).do(ctx, u)
		if c.waitMax > 0 {
			w := c.waitMin + time.Duration(u.r.Int64N(int64(c.waitMax-c.waitMin)+1))
			if c.paced {
				w -= time.Since(started)
			}
			select {
			case <-ctx.Done():
			case <-time.After(w):
			}
		}
	}
}

// openLoop sends at Rate, each request at its intended time whatever the
// others are doing (up to 10,000 in flight; beyond, the schedule waits
// and the wait is in every delayed request's latency).
func (rn *runner) openLoop(ctx context.Context, classes []*class) {
	// Reference-mix: each class's share of requests is its users' rate,
	// the inverse of its mean wait.
	shares := make([]float64, len(classes))
	var sum float64
	for i, c := range classes {
		shares[i] = 1
		if c.waitMax > 0 {
			shares[i] = 1 / (float64(c.waitMin+c.waitMax) / 2 / float64(time.Second))
		}
		sum += shares[i]
	}
	sem := make(chan struct{}, 10_000)
	var wg sync.WaitGroup
	defer wg.Wait()
	r := rand.New(rand.NewPCG(rn.o.Seed, 0x09e7))
	users := make([]*user, len(classes))
	for i, c := range classes {
		users[i] = &user{r: rand.New(rand.NewPCG(rn.o.Seed+uint64(i), 7)), run: rn}
		if c.onStart != nil {
			c.onStart(ctx, users[i])
		}
	}
	var umu sync.Mutex
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rn.o.Rate)
	for i := 0; ctx.Err() == nil; i++ {
		intended := start.Add(time.Duration(i) * interval)
		if d := time.Until(intended); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		x, ci := r.Float64()*sum, 0
		for ci < len(classes)-1 && x >= shares[ci] {
			x -= shares[ci]
			ci++
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func(c *class, u *user) {
			defer wg.Done()
			defer func() { <-sem }()
			umu.Lock()
			t := c.pick(u.r)
			umu.Unlock()
			rn.sendAt(ctx, t, u, intended, &umu)
		}(classes[ci], users[ci])
	}
}

// sendAt runs t with its latency measured from intended (send reads it
// from the context).
func (rn *runner) sendAt(ctx context.Context, t task, u *user, intended time.Time, umu *sync.Mutex) {
	// A user's rand and ids are not safe for concurrent use: the open
	// loop shares one user per class, so each request takes a private
	// copy of what it needs under umu.
	umu.Lock()
	pu := &user{r: rand.New(rand.NewPCG(u.r.Uint64(), u.r.Uint64())), ids: append([]string(nil), u.ids...), run: rn}
	umu.Unlock()
	base := len(pu.ids)
	t.do(context.WithValue(ctx, intendedKey{}, intended), pu)
	umu.Lock()
	for _, id := range pu.ids[base:] {
		if len(u.ids) < 1000 {
			u.ids = append(u.ids, id)
		}
	}
	umu.Unlock()
}

type intendedKey struct{}

func (rn *runner) progress(started, measureStart time.Time) {
	r := rn.rec
	r.mu.Lock()
	ok, bad := r.intOK, r.intErr
	p50, p99 := r.interval.ValueAtQuantile(50), r.interval.ValueAtQuantile(99)
	r.interval.Reset()
	r.intOK, r.intErr = 0, 0
	measuring := r.measuring
	r.mu.Unlock()
	if rn.o.Progress == nil {
		return
	}
	phase := "warm-up"
	if measuring {
		phase = "measuring " + time.Since(measureStart).Round(time.Second).String()
	}
	lag := ""
	if rn.lag != nil {
		lag = rn.lag.progress()
	}
	fmt.Fprintf(rn.o.Progress, "\r[%4s] %-16s 2xx/s %7d  errors/s %5d  p50 %7.2f ms  p99 %8.2f ms%s   ",
		time.Since(started).Round(time.Second), phase, ok, bad, float64(p50)/1000, float64(p99)/1000, lag)
}

func (rn *runner) report(elapsed time.Duration) *Report {
	r := rn.rec
	r.mu.Lock()
	defer r.mu.Unlock()
	secs := elapsed.Seconds()
	rep := &Report{Scenario: rn.o.Scenario, Users: rn.o.Users, Rate: rn.o.Rate, Seconds: secs,
		Requests: r.total.requests, OK: r.total.ok, Throughput: float64(r.total.ok) / secs,
		Errors: r.total.errors, Latency: latency(r.total.h), LatencyOK: latency(r.total.hOK), endpoints: r.byName}
	if rn.o.Rate > 0 {
		rep.Users = 0
	}
	for name, s := range r.byName {
		rep.Endpoints = append(rep.Endpoints, EndpointReport{Name: name, Requests: s.requests, OK: s.ok,
			Throughput: float64(s.ok) / secs, Errors: s.errors, Latency: latency(s.h), LatencyOK: latency(s.hOK)})
	}
	sort.Slice(rep.Endpoints, func(i, j int) bool { return rep.Endpoints[i].Name < rep.Endpoints[j].Name })
	return rep
}

// Text writes the report as a table, one row per endpoint and a total.
func (rep *Report) Text(w io.Writer) {
	mode := fmt.Sprintf("%d users, closed loop", rep.Users)
	if rep.Rate > 0 {
		mode = fmt.Sprintf("open loop at %.0f requests/s (latency from the intended send time)", rep.Rate)
	}
	fmt.Fprintf(w, "scenario %s, %s, %.1f s measured\n", rep.Scenario, mode, rep.Seconds)
	fmt.Fprintln(w, "latency of 2xx answers (of every answer, errors included, where they differ)")
	fmt.Fprintf(w, "%-22s %9s %9s %9s %9s %9s %9s %9s  %s\n", "endpoint", "requests", "2xx/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors")
	row := func(name string, req int64, tput float64, l, all Latency, errs map[string]int64) {
		fmt.Fprintf(w, "%-22s %9d %9.1f %9.2f %9.2f %9.2f %9.2f %9.2f  %s\n", name, req, tput, l.P50, l.P90, l.P99, l.P999, l.Max, errorList(errs))
		if len(errs) > 0 {
			fmt.Fprintf(w, "%-22s %9s %9s %9.2f %9.2f %9.2f %9.2f %9.2f\n", "  every answer", "", "", all.P50, all.P90, all.P99, all.P999, all.Max)
		}
	}
	for _, e := range rep.Endpoints {
		row(e.Name, e.Requests, e.Throughput, e.LatencyOK, e.Latency, e.Errors)
	}
	row("total", rep.Requests, rep.Throughput, rep.LatencyOK, rep.Latency, rep.Errors)
	if rep.Lag != nil {
		rep.Lag.Text(w)
	}
}

func errorList(errs map[string]int64) string {
	if len(errs) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, errs[k]))
	}
	return strings.Join(parts, " ")
}
