package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The watch scenario: Users WebSocket subscribers of one document, and one
// writer changing its title, ten times a second (closed loop) or at --rate
// (open loop). Each subscriber's receipt of a change is one "WS event"
// answer, its latency from the PATCH's send time (its intended time in the
// open loop) to the moment the subscriber's Read returned it: the fan-out
// and the subscriber's WebSocket reading are in it, JSON decoding is not
// (the title is found in the frame's bytes).

const watchEndpoint = "WS event"

// watchTitle matches the titles the writer sets; a change's frame carries
// the old title too, and the newest number is the change's.
var watchTitle = regexp.MustCompile(`bench-watch-([0-9]+)`)

// watchState is the watch scenario's share of the runner.
type watchState struct {
	doc   string
	seq   sync.Mutex
	n     int
	sent  sync.Map // change number → time.Time it was (meant to be) sent; the last watchWindow
	conns []*websocket.Conn
	wg    sync.WaitGroup
}

// watchWindow is how many changes' send times are kept (about 10 MB):
// 10,000 s of the closed loop, 100 s at --rate 1000. A receipt of a change
// older than that cannot be timed and counts as an error.
const watchWindow = 100_000

func (rn *runner) watchClass() *class {
	return &class{name: "watch", waitMin: 100 * time.Millisecond, waitMax: 100 * time.Millisecond, paced: true,
		tasks: []task{{"update", 1, func(ctx context.Context, u *user) int { return rn.update(ctx) }}}}
}

// update sets the watched document's title to the next change number.
func (rn *runner) update(ctx context.Context) int {
	w := rn.watch
	w.seq.Lock()
	w.n++
	n := w.n
	w.seq.Unlock()
	start, scheduled := ctx.Value(intendedKey{}).(time.Time)
	if !scheduled {
		start = time.Now()
	}
	w.sent.Store(n, start)
	w.sent.Delete(n - watchWindow)
	body, _ := json.Marshal(map[string]string{"title": fmt.Sprintf("bench-watch-%d", n)})
	return rn.send(ctx, "PATCH /documents/{id}", http.MethodPatch, rn.o.DocumentURL+"/documents/"+w.doc, body, nil)
}

// setupWatch creates the watched document and connects the subscribers
// (not measured); their readers run until ctx is done.
func (rn *runner) setupWatch(ctx, runCtx context.Context) error {
	u := &user{r: rand.New(rand.NewPCG(rn.o.Seed, 2)), run: rn}
	if st := rn.create(ctx, u, "bench-watch-0", "watch scenario"); st/100 != 2 {
		return fmt.Errorf("bench watch: creating the watched document: status %d", st)
	}
	w := &watchState{doc: u.ids[0]}
	rn.watch = w
	base := strings.TrimRight(rn.o.RealtimeURL, "/")
	if rest, ok := strings.CutPrefix(base, "http"); ok {
		base = "ws" + rest
	}
	opts := &websocket.DialOptions{HTTPClient: rn.client}
	if rn.o.Token != "" {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + rn.o.Token}}
	}
	for range rn.o.Users {
		c, _, err := websocket.Dial(ctx, base+"/ws/"+w.doc, opts)
		if err != nil {
			rn.closeWatch()
			return fmt.Errorf("bench watch: subscriber %d of %d: %w", len(w.conns)+1, rn.o.Users, err)
		}
		c.SetReadLimit(1 << 20)
		w.conns = append(w.conns, c)
	}
	for _, c := range w.conns {
		w.wg.Go(func() { rn.subscriber(runCtx, c) })
	}
	return nil
}

// subscriber records each change it reads; a connection the server ends
// (a slow subscriber closed with 1013, a restart) is one transport error.
func (rn *runner) subscriber(ctx context.Context, c *websocket.Conn) {
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				rn.rec.record(watchEndpoint, 0, 0)
			}
			return
		}
		at := time.Now()
		n := 0
		for _, m := range watchTitle.FindAllSubmatch(b, -1) {
			if v, err := strconv.Atoi(string(m[1])); err == nil {
				n = max(n, v)
			}
		}
		if sent, ok := rn.watch.sent.Load(n); ok {
			rn.rec.record(watchEndpoint, http.StatusOK, at.Sub(sent.(time.Time)))
		} else if n > 0 {
			rn.rec.record(watchEndpoint, 0, 0) // older than watchWindow
		}
	}
}

// closeWatch ends the subscribers and waits for their readers.
func (rn *runner) closeWatch() {
	if rn.watch == nil {
		return
	}
	for _, c := range rn.watch.conns {
		_ = c.CloseNow()
	}
	rn.watch.wg.Wait()
}
