package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/docstream/docstream/api"
)

// LagReport is the change stream's backlog while a run measured, read from
// the gateway's GET /ops once a second: a write benchmark that outruns the
// pipeline behind it looks fast only until the backlog is counted. Each
// figure is given at the run's end and at its largest; CaughtUpSeconds is
// how long after the run the indexer took to apply everything.
type LagReport struct {
	Samples int `json:"samples"`
	// CDCSlotLagBytes is WAL not yet published to the bus.
	CDCSlotLagBytes LagFigure `json:"cdc_slot_lag_bytes"`
	// IndexerLagBytes is WAL published but not yet searchable.
	IndexerLagBytes LagFigure `json:"indexer_lag_bytes"`
	// IndexerPending is the indexer's bus backlog, in messages.
	IndexerPending LagFigure `json:"indexer_pending"`
	// CaughtUpSeconds: from the run's end until two samples in a row saw
	// the indexer's bus backlog empty (nothing pending, nothing delivered
	// and unacknowledged) and no new event published; absent when that did
	// not happen within the wait.
	CaughtUpSeconds *float64 `json:"caught_up_s,omitempty"`
	// Error says why the figures are missing or stopped (e.g. --ops-url
	// is a service, not a gateway, or the token is not an admin's).
	Error string `json:"error,omitempty"`
}

// LagFigure is one backlog figure at the run's end and at its largest.
type LagFigure struct {
	End float64 `json:"end"`
	Max float64 `json:"max"`
}

func (f *LagFigure) add(v *float64) {
	if v == nil {
		return
	}
	f.End = *v
	f.Max = max(f.Max, *v)
}

// lagSampler reads GET /ops; safe for concurrent use.
type lagSampler struct {
	url    string
	token  string
	client *http.Client

	mu     sync.Mutex
	rep    LagReport
	latest *api.Ops
}

// opsCatchUpWait bounds the wait for the indexer after a run.
const opsCatchUpWait = 2 * time.Minute

func newLagSampler(base, token string, client *http.Client) *lagSampler {
	return &lagSampler{url: base + "/ops", token: token, client: client}
}

func (s *lagSampler) fetch(ctx context.Context) (*api.Ops, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil, fmt.Errorf("GET %s: %s", s.url, resp.Status)
	}
	var o api.Ops
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<22)).Decode(&o); err != nil {
		return nil, fmt.Errorf("GET %s: %w", s.url, err)
	}
	return &o, nil
}

// run samples once a second until ctx ends; the first failure stops it
// (one error, not one a second) and is reported. A read cut short by the
// end of the run is not one: sample takes the end's figure.
func (s *lagSampler) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for s.sample(ctx) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample reads GET /ops once and records it; false when sampling is over
// (ctx ended, or this or an earlier read failed).
func (s *lagSampler) sample(ctx context.Context) bool {
	s.mu.Lock()
	failed := s.rep.Error != ""
	s.mu.Unlock()
	if failed {
		return false
	}
	o, err := s.fetch(ctx)
	if ctx.Err() != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.rep.Error = err.Error()
		return false
	}
	s.rep.Samples++
	s.rep.CDCSlotLagBytes.add(o.CDC.SlotLagBytes)
	if o.Indexer.LagBytes != nil {
		v := float64(*o.Indexer.LagBytes)
		s.rep.IndexerLagBytes.add(&v)
	}
	s.rep.IndexerPending.add(o.Indexer.Pending)
	s.latest = o
	return true
}

// progress is the latest sample for the progress line ("" before one).
func (s *lagSampler) progress() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.latest == nil {
		return ""
	}
	var cdc, idx, pending float64
	if v := s.latest.CDC.SlotLagBytes; v != nil {
		cdc = *v
	}
	if v := s.latest.Indexer.LagBytes; v != nil {
		idx = float64(*v)
	}
	if v := s.latest.Indexer.Pending; v != nil {
		pending = *v
	}
	return fmt.Sprintf("  lag: cdc %.0f kB, indexer %.0f kB / %.0f msgs", cdc/1000, idx/1000, pending)
}

// catchUp waits (at most opsCatchUpWait) until the indexer has applied
// everything the run wrote, and records how long that took.
func (s *lagSampler) catchUp(ctx context.Context, end time.Time) {
	s.mu.Lock()
	failed := s.rep.Error != "" || s.rep.Samples == 0
	s.mu.Unlock()
	if failed {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, opsCatchUpWait)
	defer cancel()
	var prevPublished *float64
	quiet := 0
	for ctx.Err() == nil {
		o, err := s.fetch(ctx)
		if err == nil {
			// The indexer's bus backlog, not its lag in WAL bytes: the CDC
			// engine confirms WAL that carries no document change (audit,
			// outbox, journal rows), which the indexer has nothing to apply
			// for, so the byte lag can stay above 0 with nothing to do.
			c, ok := o.Bus.Consumers[api.IndexerConsumer]
			idle := ok && c.Pending == 0 && c.AckPending == 0 &&
				prevPublished != nil && o.CDC.EventsPublished != nil && *o.CDC.EventsPublished == *prevPublished
			prevPublished = o.CDC.EventsPublished
			if idle {
				quiet++
			} else {
				quiet = 0
			}
			if quiet == 2 {
				secs := time.Since(end).Seconds()
				s.mu.Lock()
				s.rep.CaughtUpSeconds = &secs
				s.mu.Unlock()
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (s *lagSampler) report() *LagReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rep
	return &r
}

// Text writes the backlog line of a report.
func (l *LagReport) Text(w io.Writer) {
	if l.Samples == 0 {
		fmt.Fprintf(w, "change stream backlog: not read (%s)\n", l.Error)
		return
	}
	caught := fmt.Sprintf("not caught up within %s", opsCatchUpWait)
	if l.CaughtUpSeconds != nil {
		caught = fmt.Sprintf("indexer caught up %.1f s after the run", *l.CaughtUpSeconds)
	}
	fmt.Fprintf(w, "change stream backlog (%d samples of GET /ops, at the end / largest): CDC slot %.0f / %.0f kB, indexer %.0f / %.0f kB, %.0f / %.0f messages; %s\n",
		l.Samples, l.CDCSlotLagBytes.End/1000, l.CDCSlotLagBytes.Max/1000, l.IndexerLagBytes.End/1000, l.IndexerLagBytes.Max/1000,
		l.IndexerPending.End, l.IndexerPending.Max, caught)
	if l.Error != "" {
		fmt.Fprintf(w, "  sampling stopped: %s\n", l.Error)
	}
}
