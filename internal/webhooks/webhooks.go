// Package webhooks is the webhooks target: every change, delivered to the
// HTTP endpoints users register, signed (Standard Webhooks), retried,
// never lost.
//
// Fan-out. Every instance follows cdc.documents and cdc.signatures on the
// bus (one subscription over both, so one commit order on NATS) and turns
// each change into a webhooks.events row and one webhooks.deliveries row
// per enabled endpoint that subscribes to it, in one PostgreSQL transaction
// that also moves the fan-out cursor (the commit LSN of the last change
// handled). The cursor row is held FOR UPDATE during it, so instances take
// turns and a change is fanned out once whoever sees it first; a restart
// resumes from the cursor. This is the durable consumer of the target:
// its position lives beside the deliveries it produced, so it can never
// be acknowledged without them (a bus group acks separately, and two
// groups, one per topic, would lose the order across topics).
//
// Delivery. Workers of every instance claim one endpoint's queue at a time
// (FOR UPDATE SKIP LOCKED, a lease with a token), and send its deliveries
// in queue order — commit order — one in flight per endpoint. A retriable
// failure (connection, timeout, 408, 429, 5xx) holds that endpoint's queue
// until its next attempt (backoff from --webhooks-retry-first doubling with
// jitter to --webhooks-retry-max; 429 and 503 Retry-After honoured) and
// lets the worker go; other endpoints are served by other workers, so a
// slow or failing endpoint never delays another. A 3xx or a 4xx other than
// 408/429 cannot succeed by retrying: the delivery is parked as failed at
// once and the queue moves on. After --webhooks-retry-period from its
// first attempt a delivery is parked as failed; an endpoint whose
// attempts all failed for --webhooks-disable-after is disabled with the
// reason kept.
//
// A worker killed mid-delivery leaves the queue leased; after --webhooks-
// lease another instance (or the restarted one) sends the delivery again
// with the same webhook-id: at least once, receivers dedupe by the id.
//
// Bus retention: deliveries live in PostgreSQL from the moment they are
// fanned out, so an endpoint down longer than the bus keeps events still
// gets everything until --webhooks-retry-period ends for each delivery;
// replays reach back --webhooks-event-retention (webhooks.events), not the
// bus.
//
// Who sees what: an endpoint created by a non-admin in required mode
// receives only the events of documents its owner's reader keys may view
// at delivery time (a deleted document: the readers it had); others are
// recorded as skipped.
package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/change"
)

// ConsumerName names the fan-out's subscription in readiness and metrics.
const ConsumerName = "webhooks"

// Headers of a delivery (Standard Webhooks).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Sender is the webhooks target.
type Sender struct {
	store  *Store
	bus    bus.Bus
	cipher *Cipher
	guard  *Guard
	client *http.Client
	cfg    Config
	log    *slog.Logger
	wake   chan struct{}
	// perPartition: the bus has no one order across the topics and
	// partitions of a broadcast (Kafka), so the fan-out keeps a cursor per
	// partition (Store.FanOut).
	perPartition bool

	mu      sync.Mutex
	lastErr error
}

// New returns the target. cfg must be valid and carry a SecretKey.
func New(store *Store, b bus.Bus, cfg Config, log *slog.Logger) (*Sender, error) {
	c, err := NewCipher(cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	g := &Guard{AllowPrivate: cfg.AllowPrivate, Resolver: cfg.Resolver}
	ordered, _ := b.(interface{ OrderedAcrossTopics() bool })
	return &Sender{store: store, bus: b, cipher: c, guard: g, client: g.Client(cfg.Timeout), cfg: cfg, log: log,
		wake: make(chan struct{}, 1), perPartition: ordered == nil || !ordered.OrderedAcrossTopics()}, nil
}

// Run fans out and delivers until ctx is done.
func (s *Sender) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.fanOut(ctx) })
	g.Go(func() error { s.deliverLoop(ctx); return nil })
	g.Go(func() error { s.housekeeping(ctx); return nil })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Sender) setErr(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
}

// Health is the readiness detail: the last database failure of the
// fan-out or the workers.
func (s *Sender) Health(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Wake tells this process's idle workers there is work.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// fanOut follows the change stream from the cursor.
func (s *Sender) fanOut(ctx context.Context) error {
	var cursor uint64
	for {
		var err error
		if cursor, err = s.store.Cursor(ctx); err == nil {
			break
		}
		s.setErr(err)
		s.log.Warn("webhooks: reading the fan-out cursor failed; retrying", "err", err)
		if !sleep(ctx, 2*time.Second, nil) {
			return nil
		}
	}
	// From the first change of the cursor's transaction: a batch may have
	// ended inside it; the rest of it is skipped as stored already.
	start := bus.Start{Kind: bus.StartAfterLSN, LSN: max(cursor, 1) - 1}
	return s.bus.Broadcast(bus.Named(ctx, ConsumerName), bus.Topics(bus.TopicDocuments, bus.TopicSignatures, bus.TopicSigningRequests, bus.TopicSigningRecipients), start, s.HandleBatch)
}

// HandleBatch fans a batch of change events out (a bus.Handler). A
// database failure is retried here, with backoff, until ctx is done: the
// subscription is not durable on the bus, so the batch must not be lost.
func (s *Sender) HandleBatch(ctx context.Context, msgs []bus.Message) error {
	events := make([]storedEvent, 0, len(msgs))
	for _, m := range msgs {
		ev, ok, err := Event(m)
		if err != nil {
			eventsTotal.WithLabelValues("invalid").Inc()
			s.log.Error("webhooks: undecodable change event skipped", "topic", m.Topic, "position", m.Position, "err", err)
			continue
		}
		if !ok {
			eventsTotal.WithLabelValues("ignored").Inc()
			continue
		}
		events = append(events, ev)
	}
	if len(events) == 0 {
		return nil
	}
	wait := 100 * time.Millisecond
	for {
		start := time.Now()
		n, err := s.store.FanOut(ctx, events, s.perPartition, matches)
		if err == nil {
			s.setErr(nil)
			fanoutSeconds.Observe(time.Since(start).Seconds())
			eventsTotal.WithLabelValues("stored").Add(float64(len(events)))
			fanoutLSN.Set(float64(events[len(events)-1].CommitLSN))
			if n > 0 {
				s.Wake()
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.setErr(err)
		s.log.Warn("webhooks: fan-out failed; retrying", "retry_in", wait, "err", err)
		if !sleep(ctx, wait, nil) {
			return ctx.Err()
		}
		wait = min(wait*2, 10*time.Second)
	}
}

// matches reports whether endpoint e subscribes to ev.
func matches(e *endpoint, ev *storedEvent, createdBy func() string) bool {
	if !slices.Contains(e.Events, ev.Type) {
		return false
	}
	if e.DocumentID != "" && e.DocumentID != ev.DocumentID {
		return false
	}
	if e.CreatedBy != "" && e.CreatedBy != createdBy() {
		return false
	}
	return true
}

// Event turns a bus message into the event stored for delivery; ok is
// false for a change no endpoint can subscribe to (a snapshot read, a
// share, a signature update).
func Event(m bus.Message) (storedEvent, bool, error) {
	env, err := change.Decode(m.Value)
	if err != nil {
		return storedEvent{}, false, err
	}
	docID, kinds, err := change.Kinds(m.Topic, env)
	if err != nil {
		return storedEvent{}, false, err
	}
	typ := change.WebhookEvent(kinds)
	if typ == "" {
		return storedEvent{}, false, nil
	}
	lsn, _ := strconv.ParseUint(m.Headers[bus.HeaderLSN], 10, 64)
	if lsn == 0 {
		lsn = env.Source.LSN
	}
	commit := bus.Cursor(m)
	if commit == 0 {
		commit = lsn
	}
	at := time.UnixMilli(env.Source.TsMs).UTC()
	ev := storedEvent{Topic: m.Topic, LSN: lsn, CommitLSN: commit, Key: string(m.Key), Type: typ, DocumentID: docID, At: at,
		Late: m.Headers[bus.HeaderLate] != "", Partition: m.Partition}
	data := api.WebhookData{}
	switch m.Topic {
	case bus.TopicDocuments:
		raw := env.After
		if env.Op == change.OpDelete {
			raw = env.Before
		}
		var row change.Document
		if _, err := change.Row(raw, &row); err != nil {
			return storedEvent{}, false, err
		}
		data.Document = documentOf(row)
		ev.CreatedBy = row.CreatedBy
		if row.Readers != nil {
			ev.Readers, ev.HasReaders = row.Readers, true
		}
	case bus.TopicSignatures:
		var sig api.Signature
		if err := json.Unmarshal(env.After, &sig); err != nil {
			return storedEvent{}, false, err
		}
		data.Signature = &sig
	case bus.TopicSigningRequests, bus.TopicSigningRecipients:
		// The fixed field lists the WebSocket sends: never a recipient's
		// IP address or user agent.
		// CreatedBy stays empty: an endpoint's created_by filter names the
		// document's creator, which fan-out looks up.
		if data.SigningRequest, data.Recipient, err = change.WorkflowData(m.Topic, env); err != nil {
			return storedEvent{}, false, err
		}
	}
	ev.Payload, err = json.Marshal(api.WebhookPayload{Type: typ, Timestamp: at, LSN: commit, Data: data})
	return ev, true, err
}

// documentOf is the document as the document service's API returns it.
func documentOf(r change.Document) *api.Document {
	d := &api.Document{ID: r.ID, Title: r.Title, Status: api.Status(r.Status), CreatedBy: r.CreatedBy}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	d.ContentType, d.S3Key, d.ContentSHA256, d.Owner = str(r.ContentType), str(r.S3Key), str(r.ContentSHA256), str(r.Owner)
	d.SigningStatus = api.RequestState(str(r.SigningStatus))
	if r.ContentSize != nil {
		d.ContentSize = *r.ContentSize
	}
	if r.Version != nil {
		d.Version = *r.Version
	}
	for _, t := range []struct {
		in  *string
		out *api.Time
	}{{r.CreatedAt, &d.CreatedAt}, {r.UpdatedAt, &d.UpdatedAt}} {
		if t.in != nil {
			if v, err := time.Parse(time.RFC3339Nano, *t.in); err == nil {
				t.out.Time = v
			}
		}
	}
	return d
}

// deliverLoop claims endpoints' queues while a slot is free, each served by
// a goroutine of its own, until ctx is done; it waits for them.
func (s *Sender) deliverLoop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, s.cfg.Concurrency)
	backoff := s.cfg.Poll
	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		c, ok, err := s.store.Claim(ctx, s.cfg.Lease)
		if err != nil || !ok {
			<-slots
			if err != nil && ctx.Err() == nil {
				s.setErr(err)
				s.log.Warn("webhooks: claim failed; retrying", "retry_in", backoff, "err", err)
				if !sleep(ctx, backoff, nil) {
					return
				}
				backoff = min(backoff*2, 30*time.Second)
				continue
			}
			backoff = s.cfg.Poll
			if !sleep(ctx, s.cfg.Poll, s.wake) {
				return
			}
			continue
		}
		backoff = s.cfg.Poll
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			s.drain(ctx, c)
			// Others may be due too: look again at once.
			s.Wake()
		}()
	}
}

// drain delivers the claimed endpoint's due deliveries in order, then
// gives the queue back.
func (s *Sender) drain(ctx context.Context, c claim) {
	defer func() {
		if err := s.store.Release(context.WithoutCancel(ctx), c); err != nil {
			s.log.Warn("webhooks: releasing a queue failed; its lease will expire", "endpoint", c.Endpoint.ID, "err", err)
		}
	}()
	for ctx.Err() == nil {
		p, ok, err := s.store.Head(ctx, c, s.cfg.Lease)
		if err != nil {
			s.setErr(err)
			return
		}
		if !ok || p.NextAttemptAt.After(time.Now()) {
			return
		}
		o := s.attempt(ctx, c.Endpoint, p)
		if ctx.Err() != nil && o.Attempted && o.Status == api.DeliveryPending {
			// Stopping mid-attempt: the next holder sends it again.
			return
		}
		disabled, err := s.store.Record(context.WithoutCancel(ctx), c, p, o, s.cfg.DisableAfter)
		if err != nil {
			s.setErr(err)
			s.log.Warn("webhooks: recording an attempt failed; the delivery will be sent again", "endpoint", c.Endpoint.ID, "err", err)
			return
		}
		s.setErr(nil)
		s.observe(c.Endpoint.ID, o)
		if disabled {
			s.log.Warn("webhooks: endpoint disabled after failing continuously", "endpoint", c.Endpoint.ID, "for", s.cfg.DisableAfter, "last_error", o.Err)
			return
		}
		if o.Status == api.DeliveryPending {
			return // waiting for its retry holds this queue, not the worker
		}
	}
}

func (s *Sender) observe(endpoint string, o outcome) {
	if o.Attempted {
		code := "error"
		if o.StatusCode != 0 {
			code = strconv.Itoa(o.StatusCode)
		}
		attemptsTotal.WithLabelValues(endpoint, code).Inc()
		attemptSeconds.Observe(o.Duration.Seconds())
	}
	switch o.Status {
	case api.DeliveryDelivered:
		deliveredTotal.WithLabelValues(endpoint).Inc()
	case api.DeliveryFailed:
		failedTotal.WithLabelValues(endpoint).Inc()
	case api.DeliverySkipped:
		skippedTotal.WithLabelValues(endpoint).Inc()
	}
}

// attempt sends p to e once and says what follows.
func (s *Sender) attempt(ctx context.Context, e *endpoint, p pending) outcome {
	if !e.Unrestricted && p.DocumentID != "" {
		visible, err := s.visible(ctx, e, p)
		if err != nil {
			return outcome{Status: api.DeliveryPending, NextAt: time.Now().Add(s.cfg.RetryFirst), Err: err.Error()}
		}
		if !visible {
			return outcome{Status: api.DeliverySkipped, NextAt: time.Now(), Err: "the endpoint's owner may not view document " + p.DocumentID}
		}
	}
	secrets, err := s.secrets(e)
	if err != nil {
		return outcome{Status: api.DeliveryPending, NextAt: time.Now().Add(s.cfg.RetryMax), Err: err.Error(), Failed: true}
	}
	now := time.Now()
	ts := now.Unix()
	sig, err := SignatureHeader(secrets, p.WebhookID, ts, p.Payload)
	if err != nil {
		return outcome{Status: api.DeliveryFailed, NextAt: now, Err: err.Error(), Failed: true}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, strings.NewReader(string(p.Payload)))
	if err != nil {
		return outcome{Status: api.DeliveryFailed, NextAt: now, Err: err.Error(), Failed: true}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "docstream-webhooks/1")
	req.Header.Set(HeaderID, p.WebhookID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := s.client.Do(req)
	o := outcome{Attempted: true}
	var retryAfter time.Duration
	if err != nil {
		o.Err = redactURL(err, e.URL)
	} else {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, s.cfg.ResponseCap))
		resp.Body.Close()
		o.StatusCode = resp.StatusCode
		o.Response = snippet(body)
		retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	o.Duration = time.Since(now)
	first := now
	if p.FirstAttemptAt != nil {
		first = *p.FirstAttemptAt
	}
	switch {
	case err == nil && o.StatusCode >= 200 && o.StatusCode < 300:
		o.Status, o.NextAt = api.DeliveryDelivered, time.Now()
		if !e.CreatedAt.IsZero() {
			latencySeconds.Observe(time.Since(payloadTime(p.Payload)).Seconds())
		}
		return o
	case err != nil && errors.Is(err, ErrBlocked):
		o.Status, o.NextAt, o.Failed = api.DeliveryFailed, time.Now(), true
		return o
	case err == nil && !retriable(o.StatusCode):
		o.Status, o.NextAt, o.Failed = api.DeliveryFailed, time.Now(), true
		if o.Err == "" {
			o.Err = fmt.Sprintf("the endpoint answered %d, which a retry cannot change", o.StatusCode)
		}
		return o
	}
	o.Failed = true
	if o.Err == "" {
		o.Err = fmt.Sprintf("the endpoint answered %d", o.StatusCode)
	}
	wait := Backoff(p.Attempts+1, s.cfg.RetryFirst, s.cfg.RetryMax)
	if retryAfter > 0 {
		wait = min(retryAfter, s.cfg.RetryMax)
	}
	if time.Since(first)+wait > s.cfg.RetryPeriod {
		o.Status, o.NextAt = api.DeliveryFailed, time.Now()
		o.Err += fmt.Sprintf("; retries ended after %s", s.cfg.RetryPeriod)
		return o
	}
	o.Status, o.NextAt = api.DeliveryPending, time.Now().Add(wait)
	return o
}

// payloadTime is the commit time a payload carries (zero when none).
func payloadTime(b []byte) time.Time {
	var p struct {
		Timestamp time.Time `json:"timestamp"`
	}
	_ = json.Unmarshal(b, &p)
	return p.Timestamp
}

// visible reports whether e's owner may view p's document now (the
// document's readers; for a deleted document, the readers it had).
func (s *Sender) visible(ctx context.Context, e *endpoint, p pending) (bool, error) {
	readers, ok, err := s.store.Readers(ctx, p.DocumentID)
	if err != nil {
		return false, err
	}
	if !ok {
		readers = p.Readers
	}
	for _, k := range e.OwnerKeys {
		if slices.Contains(readers, k) {
			return true, nil
		}
	}
	return false, nil
}

// secrets are the secrets signing now: the current one, and the previous
// one during a rotation's overlap.
func (s *Sender) secrets(e *endpoint) ([]string, error) {
	cur, err := s.cipher.Open(e.ID, e.SecretEnc)
	if err != nil {
		return nil, err
	}
	out := []string{cur}
	if e.PreviousEnc != nil && e.PreviousSecretUntil != nil && time.Now().Before(*e.PreviousSecretUntil) {
		prev, err := s.cipher.Open(e.ID, e.PreviousEnc)
		if err != nil {
			return nil, err
		}
		out = append(out, prev)
	}
	return out, nil
}

// retriable reports whether an answer may succeed on retry: 408, 429 and
// every 5xx. A 3xx (redirects are not followed) and any other 4xx cannot.
func retriable(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// Backoff is the wait before retry n (1 = the first): first doubling up to
// cap, with jitter over the upper half so retries of many deliveries
// spread out, never above the nominal value (the first retry never waits
// longer than first).
func Backoff(n int, first, limit time.Duration) time.Duration {
	d := first
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d/2 + rand.N(d/2+1)
}

// parseRetryAfter reads Retry-After: seconds or an HTTP date (0: none).
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// snippet keeps the first KiB of a response body, as valid text.
func snippet(b []byte) string {
	if len(b) > 1024 {
		b = b[:1024]
	}
	return strings.ToValidUTF8(string(b), "�")
}

// redactURL keeps the endpoint's URL (which may carry a token in its
// query) out of an error kept in the database and shown in the list.
func redactURL(err error, u string) string {
	msg := err.Error()
	if u != "" {
		msg = strings.ReplaceAll(msg, `"`+u+`"`, "the endpoint")
		msg = strings.ReplaceAll(msg, u, "the endpoint")
	}
	return msg
}

// housekeeping refreshes the queue gauges and prunes old events.
func (s *Sender) housekeeping(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		if qs, err := s.store.Queues(ctx); err == nil {
			pendingGauge.Reset()
			oldestGauge.Reset()
			for _, q := range qs {
				pendingGauge.WithLabelValues(q.Endpoint).Set(float64(q.Pending))
				oldestGauge.WithLabelValues(q.Endpoint).Set(q.Oldest.Seconds())
			}
		}
		if time.Since(lastPrune) > time.Hour {
			if err := s.store.Prune(ctx, s.cfg.EventRetention); err == nil {
				lastPrune = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sleep waits d, or until wake fires; false when ctx is done.
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}
