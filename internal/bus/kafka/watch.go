package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/docstream/docstream/internal/bus"
)

// Every subscription (Group, Broadcast) runs under a watchdog, as on NATS
// (internal/bus/nats/watch.go). A franz-go consumer does not fail when it
// stops getting records: a fetch a broker keeps answering with a retriable
// error, a group member that lost its session and cannot rejoin, a client
// closed underneath all look, from the poll loop, like a quiet topic. The
// watchdog asks the brokers, through the bus's own admin client (not the
// subscription's), for the end offsets of the subscription's partitions
// (and a group's committed offsets) every StallAfter/4, and replaces the
// subscription (a new client and poll loop) when
//
//   - its poll loop ended (the client closed, a fatal fetch error), or
//   - records are pending and nothing was handed to the handler for
//     StallAfter, or
//   - the brokers could not answer for StallAfter, or
//   - a broadcast's topic got partitions it does not read,
//
// logging why and counting it. The subscription is then Stalled (a
// readiness failure, see bus.CheckConsumers) until it progresses again.
//
// Pending is, over the partitions the subscription reads (a group member:
// those assigned to it), the end offset minus the offset after the last
// record handed to the handler (or the group's committed offset, when
// further): its lag. A group member with no partition assigned counts the
// lag of the partitions no member of its group holds (see held): it is
// stalled while records wait there, and healthy when every partition is
// another member's. AckPending is the records in the handler now (a group
// commits them after it).

// tp is one partition of one topic.
type tp struct {
	topic     string
	partition int32
}

// watched is the state of one subscription (all its successive clients).
type watched struct {
	name       string // "" when unnamed: not reported
	group      bool
	stallAfter time.Duration

	mu       sync.Mutex
	st       bus.ConsumerState
	busy     int // batches in the handler
	inFlight int // their records
	// taken is, per partition, the offset after the last record handed to
	// the handler (what the lag counts from); done, after the last one it
	// took (or skipped): where a replacement broadcast resumes, so the
	// subscriber misses nothing and sees nothing twice. A replacement group
	// member resumes from the group's committed offsets instead.
	taken, done map[tp]int64
	// reads is the set of partitions the current client reads: for a
	// broadcast every partition of its topics, for a group member those
	// the group assigned to it.
	reads map[tp]bool
	cl    *kgo.Client // the current client (tests close it underneath)
}

func (b *Bus) watch(ctx context.Context, topic, group string) *watched {
	w := &watched{name: bus.ConsumerName(ctx), group: group != "", stallAfter: b.opts.StallAfter,
		st:    bus.ConsumerState{Name: bus.ConsumerName(ctx), Topic: topic, Group: group, LastProgress: time.Now()},
		taken: map[tp]int64{}, done: map[tp]int64{}, reads: map[tp]bool{}}
	if w.name == "" {
		return w
	}
	b.watched.Add(w)
	w.export()
	return w
}

func (b *Bus) unwatch(w *watched) {
	if w.name == "" {
		return
	}
	b.watched.Remove(w)
}

// Consumers implements bus.Watcher: every named subscription running now,
// by name.
func (b *Bus) Consumers() []bus.ConsumerState { return b.watched.Consumers() }

var _ bus.Watcher = (*Bus)(nil)

// State implements bus.Watched.
func (w *watched) State() bus.ConsumerState {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.st
	s.AckPending = w.inFlight
	// A batch in the handler is progress however long it takes: a slow
	// handler is not a lost subscription.
	s.Stalled = w.busy == 0 && time.Since(s.LastProgress) > w.stallAfter
	return s
}

// subscribed records a new client: what it reads is what it is assigned
// (a group member, through assign/revoke) or every partition of parts.
// Like an assignment, it is a start (see assigned).
func (w *watched) subscribed(cl *kgo.Client, parts []tp) {
	w.mu.Lock()
	w.begin()
	w.cl = cl
	clear(w.reads)
	for _, p := range parts {
		w.reads[p] = true
	}
	w.mu.Unlock()
}

// begin counts a start as progress unless the subscription is stalled
// already. w.mu is held.
func (w *watched) begin() {
	if time.Since(w.st.LastProgress) <= w.stallAfter {
		w.st.LastProgress = time.Now()
	}
}

func (w *watched) setClient(cl *kgo.Client) {
	w.mu.Lock()
	w.cl = cl
	w.mu.Unlock()
}

// assigned and revoked follow a group member's partitions. An assignment
// is a start: the member gets until the stall timeout to fetch its first
// records (it reads the group's commits first), unless it is stalled
// already (a replacement of a stalled member stays reported stalled until
// it hands records over).
func (w *watched) assigned(m map[string][]int32) {
	w.mu.Lock()
	w.begin()
	for t, ps := range m {
		for _, p := range ps {
			w.reads[tp{t, p}] = true
		}
	}
	w.mu.Unlock()
}

func (w *watched) revoked(m map[string][]int32) {
	w.mu.Lock()
	for t, ps := range m {
		for _, p := range ps {
			delete(w.reads, tp{t, p})
			// Another member takes it from the group's commit.
			delete(w.taken, tp{t, p})
		}
	}
	w.mu.Unlock()
}

// handling records a batch handed to the handler (progress; busy until
// handled is called).
func (w *watched) handling(recs []*kgo.Record, n int) {
	w.mu.Lock()
	w.busy++
	w.inFlight += n
	w.st.LastProgress = time.Now()
	for _, r := range recs {
		k := tp{r.Topic, r.Partition}
		w.taken[k] = max(w.taken[k], r.Offset+1)
	}
	w.mu.Unlock()
	w.export()
}

// handled records the end of a batch; ok when the handler took it.
func (w *watched) handled(recs []*kgo.Record, n int, ok bool) {
	w.mu.Lock()
	w.busy--
	w.inFlight -= n
	w.st.LastProgress = time.Now()
	if ok {
		for _, r := range recs {
			k := tp{r.Topic, r.Partition}
			w.done[k] = max(w.done[k], r.Offset+1)
		}
	}
	w.mu.Unlock()
	w.export()
}

// started reports whether a client was subscribed before.
func (w *watched) started() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.done) > 0
}

// resumeAt seeds where a broadcast reads partitions it never took a record
// of (its start); partitions already known keep their position.
func (w *watched) resumeAt(at map[tp]int64) map[tp]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[tp]int64, len(at))
	for k, v := range at {
		if _, ok := w.done[k]; !ok {
			w.done[k] = v
			w.taken[k] = max(w.taken[k], v)
		}
		out[k] = w.done[k]
	}
	return out
}

func (w *watched) resubscribed(reason error) {
	w.mu.Lock()
	w.st.Resubscribes++
	w.st.LastError = reason.Error()
	w.cl = nil
	w.mu.Unlock()
	bus.CountResubscribe(w.name)
}

func (w *watched) failed(err error) {
	w.mu.Lock()
	w.st.LastError = err.Error()
	w.mu.Unlock()
}

// export feeds the docstream_bus_consumer_* metrics (bus.ExportConsumer).
func (w *watched) export() {
	if w.name == "" {
		return
	}
	bus.ExportConsumer(w.State())
}

// Reasons a watchdog or poll loop ends a subscription.
var (
	errStalled         = errors.New("no progress while records are pending")
	errClientClosed    = errors.New("client closed")
	errPartitionsAdded = errors.New("partitions added to the topic")
	errUnheld          = errors.New("no partition assigned while records wait on partitions no group member holds")
)

// observe asks the brokers for the subscription's lag and records it.
// added reports partitions of a broadcast's topics it does not read;
// orphans, that the subscription is a group member with no partition
// assigned that counted the lag of partitions no member of its group
// holds (see unheld).
func (b *Bus) observe(ctx context.Context, w *watched, topics []string, group string) (added, orphans bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, min(b.opts.RequestTimeout, w.stallAfter))
	defer cancel()
	ends, err := b.adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return false, false, fmt.Errorf("kafka: end offsets: %w", err)
	}
	starts, err := b.adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return false, false, fmt.Errorf("kafka: start offsets: %w", err)
	}
	var committed kadm.OffsetResponses
	if group != "" {
		// A group no member ever joined has no commits (no error: its
		// members' lag is counted from the start).
		if committed, err = b.adm.FetchOffsets(ctx, group); errors.Is(err, kerr.GroupIDNotFound) {
			committed, err = nil, nil
		}
		if err != nil {
			return false, false, fmt.Errorf("kafka: committed offsets of %s: %w", group, err)
		}
	}
	w.mu.Lock()
	idle := w.group && len(w.reads) == 0
	w.mu.Unlock()
	var unheld func(tp) bool
	if idle {
		held, known, err := b.held(ctx, group)
		if err != nil {
			return false, false, err
		}
		if !known {
			// The group is rebalancing: what is held is being decided.
			// The member's lag stays what it was, and so does the rule:
			// nothing pending is caught up.
			w.mu.Lock()
			if w.st.Pending == 0 {
				w.st.LastProgress = time.Now()
			}
			w.mu.Unlock()
			return false, false, nil
		}
		unheld = func(k tp) bool { return !held.Lookup(k.topic, k.partition) }
	}
	w.mu.Lock()
	if len(w.reads) > 0 {
		unheld = nil // assigned since
	}
	var pending uint64
	ends.Each(func(o kadm.ListedOffset) {
		k := tp{o.Topic, o.Partition}
		if !w.reads[k] && (unheld == nil || !unheld(k)) {
			added = added || !w.group
			return
		}
		at := w.taken[k]
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil {
			at = max(at, c.At)
		}
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok {
			at = max(at, s.Offset) // what retention removed is not pending
		}
		if o.Offset > at {
			pending += uint64(o.Offset - at)
		}
	})
	w.st.Pending = pending
	if pending == 0 {
		w.st.LastProgress = time.Now() // caught up
	}
	w.mu.Unlock()
	w.export()
	return added, unheld != nil && pending > 0, nil
}

// held is the set of partitions the members of group hold now, as the
// group's coordinator knows it: a member with no partition assigned is
// idle for one of two reasons. The group has more members than the topic
// has partitions, and every partition is held by another member: nothing
// is its to read, and it is healthy. Or records wait on partitions that no
// member holds (this member cannot join its group, or joined and was given
// nothing while a partition lost its member): nobody reads them, so they
// are this member's lag, and if it does not progress it is stalled and
// replaced (a new member joins again). known is false while the group
// rebalances (the coordinator reports assignments of a stable group only).
func (b *Bus) held(ctx context.Context, group string) (held kadm.TopicsSet, known bool, err error) {
	gs, err := b.adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, false, fmt.Errorf("kafka: describe group %s: %w", group, err)
	}
	g, ok := gs[group]
	switch {
	case !ok, errors.Is(g.Err, kerr.GroupIDNotFound), g.State == "Dead", g.State == "Empty":
		return kadm.TopicsSet{}, true, nil // no member: nothing is held
	case g.Err != nil:
		return nil, false, fmt.Errorf("kafka: describe group %s: %w", group, g.Err)
	case g.State != "Stable":
		return nil, false, nil
	}
	return g.AssignedPartitions(), true, nil
}

// watchdog checks the subscription until ctx is done and cancels it (with
// the reason as cause) when it is stalled, its lag cannot be read for
// StallAfter or a broadcast's topics got new partitions.
func (b *Bus) watchdog(ctx context.Context, w *watched, topics []string, group string, cancel context.CancelCauseFunc) {
	t := time.NewTicker(max(w.stallAfter/4, 50*time.Millisecond))
	defer t.Stop()
	okAt, fails := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		added, orphans, err := b.observe(ctx, w, topics, group)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.failed(err)
			w.export()
			// Twice at least: one slow answer is not an outage.
			if fails++; fails > 1 && time.Since(okAt) > w.stallAfter {
				cancel(fmt.Errorf("no offsets from the brokers for %v: %w", w.stallAfter, err))
				return
			}
			continue
		}
		okAt, fails = time.Now(), 0
		if added {
			cancel(errPartitionsAdded)
			return
		}
		if s := w.State(); s.Stalled && s.Pending > 0 {
			if orphans {
				cancel(errUnheld)
			} else {
				cancel(errStalled)
			}
			return
		}
	}
}

// subscribe runs one client after another until ctx is done
// (bus.Resubscribe): open makes the client (and says what it reads), run
// polls it under the watchdog.
func (b *Bus) subscribe(ctx context.Context, w *watched, topics []string, group string,
	open func(context.Context) (*kgo.Client, error), run func(context.Context, *kgo.Client) error) error {
	return bus.Resubscribe(ctx, bus.Subscriber[*kgo.Client]{
		Name: w.name, Topic: w.st.Topic, Group: w.st.Group, StallAfter: w.stallAfter, Log: b.opts.Log,
		Open: open, Run: run,
		Watch: func(ctx context.Context, _ *kgo.Client, cancel context.CancelCauseFunc) {
			b.watchdog(ctx, w, topics, group, cancel)
		},
		Close:        (*kgo.Client).Close,
		Resubscribed: w.resubscribed,
	})
}
