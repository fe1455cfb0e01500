package bus

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var repeatsDropped = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "docstream_bus_repeats_dropped_total",
	Help: "Change events a consumer dropped as repeats of events it had already handled, by consumer.",
}, []string{"consumer"})

// Dedup drops repeated change events before a consumer's handler sees them;
// every consumer of the change stream wraps its handler with one (Wrap).
//
// The CDC engine publishes in commit order, so along a topic (a Kafka
// partition) the cursor (commit LSN, see Cursor) never decreases, except
// where a transaction was published again: then events stored after an
// event of a later transaction carry an older cursor. Dedup drops exactly
// those: an event whose cursor is below the highest cursor this consumer has
// handled while its position is after the event that carried that cursor,
// and an event of the highest transaction handled that was handled already
// (same topic, lsn and key). It lets through:
//   - an event the bus delivers again because its handler failed or its
//     ack was lost: it sits before the highest handled one, and a handler
//     must be idempotent anyway (at-least-once);
//   - an event marked HeaderLate (published late, never delivered before);
//   - messages with no cursor (not change events).
//
// A consumer handling a topic in several processes (a group) keeps one
// Dedup per process; each drops the repeats of what it handled itself,
// and a repeat of an event another member handled is still dropped when
// this member has handled something later. State is in memory: a repeat
// published while the consumer was down reaches it once after its restart
// (the CDC engine does not publish repeats on NATS, see cdc.Engine).
// Safe for concurrent use; Wrap's handler runs one batch at a time.
type Dedup struct {
	name  string
	mu    sync.Mutex
	marks map[dedupKey]*dedupMark
}

type dedupKey struct {
	topic     string
	partition int32
}

// dedupMark is the highest transaction handled on one topic (partition):
// its cursor, the position of its first event and the events of it handled.
type dedupMark struct {
	cursor, pos uint64
	ids         map[string]struct{}
}

// NewDedup returns an empty Dedup; name labels its metric.
func NewDedup(name string) *Dedup {
	return &Dedup{name: name, marks: map[dedupKey]*dedupMark{}}
}

func eventID(m Message) string {
	return m.Headers[HeaderLSN] + "|" + string(m.Key)
}

// overlay is a batch's view of one mark: the stored mark plus what the
// batch handles, committed only when the handler succeeds.
type overlay struct {
	cursor, pos uint64
	base        map[string]struct{} // the stored ids when cursor is the stored one
	add         map[string]struct{}
}

func (o *overlay) has(id string) bool {
	if _, ok := o.add[id]; ok {
		return true
	}
	_, ok := o.base[id]
	return ok
}

// Wrap returns h behind the filter: h gets the batch without repeats (it is
// not called when nothing is left), and what it handled counts as handled
// once it returns nil.
func (d *Dedup) Wrap(h Handler) Handler {
	return func(ctx context.Context, msgs []Message) error {
		d.mu.Lock()
		defer d.mu.Unlock()
		keep, next := d.filter(msgs)
		if dropped := len(msgs) - len(keep); dropped > 0 {
			repeatsDropped.WithLabelValues(d.name).Add(float64(dropped))
		}
		if len(keep) == 0 {
			return nil
		}
		if err := h(ctx, keep); err != nil {
			return err
		}
		d.commit(next)
		return nil
	}
}

func (d *Dedup) filter(msgs []Message) ([]Message, map[dedupKey]*overlay) {
	next := map[dedupKey]*overlay{}
	keep := msgs[:0:0]
	for _, m := range msgs {
		c := Cursor(m)
		if c == 0 {
			keep = append(keep, m)
			continue
		}
		k := dedupKey{m.Topic, m.Partition}
		o := next[k]
		if o == nil {
			o = &overlay{add: map[string]struct{}{}}
			if st := d.marks[k]; st != nil {
				o.cursor, o.pos, o.base = st.cursor, st.pos, st.ids
			}
			next[k] = o
		}
		id := eventID(m)
		late := m.Headers[HeaderLate] != ""
		switch {
		case !late && c < o.cursor && m.Position > o.pos:
			continue // an older transaction stored again
		case c == o.cursor && o.has(id):
			continue // handled already
		case c > o.cursor:
			o.cursor, o.pos, o.base, o.add = c, m.Position, nil, map[string]struct{}{id: {}}
		case c == o.cursor:
			o.add[id] = struct{}{}
			o.pos = min(o.pos, m.Position)
		}
		keep = append(keep, m)
	}
	return keep, next
}

func (d *Dedup) commit(next map[dedupKey]*overlay) {
	for k, o := range next {
		if o.cursor == 0 {
			continue
		}
		if st := d.marks[k]; st != nil && o.base != nil { // same transaction as before: more of it handled
			for id := range o.add {
				st.ids[id] = struct{}{}
			}
			st.pos = o.pos
			continue
		}
		d.marks[k] = &dedupMark{cursor: o.cursor, pos: o.pos, ids: o.add}
	}
}
