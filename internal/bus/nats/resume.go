package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/docstream/docstream/internal/bus"
)

var _ bus.Resumer = (*Bus)(nil)

// Resume implements bus.Resumer: the last message of marks, then the events
// of topics from the first one whose cursor is at or above the mark's lsn
// (found by seekLSN) to the end of the stream. topics and marks must be of
// one family (one stream).
func (b *Bus) Resume(ctx context.Context, topics []string, marks string) (bus.Resume, error) {
	var r bus.Resume
	fam, _, err := family(marks)
	if err != nil {
		return r, err
	}
	for _, t := range topics {
		if f, _, err := family(t); err != nil || f != fam {
			return r, fmt.Errorf("nats: resume: %s is not in stream %s", t, fam)
		}
	}
	s, err := b.stream(ctx, marks)
	if err != nil {
		return r, err
	}
	m, err := s.GetLastMsgForSubject(ctx, marks)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return r, fmt.Errorf("nats: last %s: %w", marks, err)
	default:
		r.Mark, r.HasMark = rawMessage(m), true
	}
	// The tail ends at the last event on topics stored now; later ones are
	// not this producer's (it is not publishing yet).
	var last uint64
	for _, t := range topics {
		m, err := s.GetLastMsgForSubject(ctx, t)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return r, fmt.Errorf("nats: last %s: %w", t, err)
		}
		last = max(last, m.Sequence)
	}
	stored := map[string]struct{}{}
	r.Stored = func(m bus.Message) bool { _, ok := stored[MsgID(m)]; return ok }
	if last == 0 {
		return r, nil
	}
	from := uint64(0)
	if w := bus.Cursor(r.Mark); w > 0 {
		from = w - 1
	}
	seq, err := b.seekLSN(ctx, s, topics, from)
	if err != nil {
		return r, err
	}
	if seq > last {
		return r, nil
	}
	// The same kind of consumer as a broadcast's: on a server that takes
	// one filter subject (before 2.10) it reads the family and the other
	// topics (the watermarks between the events) are skipped here.
	cons, only, err := b.broadcastConsumer(ctx, topics, bus.Start{Kind: bus.StartPosition, Position: seq}, "cdc-resume")
	if err != nil {
		return r, fmt.Errorf("nats: resume: %w", err)
	}
	defer b.deleteConsumer(fam, cons.CachedInfo().Name)
	next := uint64(1) // the consumer sequence expected next: nothing may be skipped
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return r, fmt.Errorf("nats: resume: %w", err)
		}
		n := 0
		for raw := range batch.Messages() {
			n++
			if md, err := raw.Metadata(); err != nil || md.Sequence.Consumer != next {
				return r, fmt.Errorf("nats: resume: %w", errGap)
			}
			next++
			m := toMessage(raw)
			if only == nil || only[m.Topic] {
				stored[MsgID(m)] = struct{}{}
				r.Tail++
				r.Last = max(r.Last, bus.Cursor(m))
			}
			if m.Position >= last {
				return r, nil
			}
		}
		if err := batch.Error(); err != nil {
			return r, fmt.Errorf("nats: resume: %w", err)
		}
		if n == 0 {
			return r, fmt.Errorf("nats: resume: stream %s ended at sequence %d before %d", fam, seq, last)
		}
	}
}

// rawMessage turns a message read by sequence into a bus.Message.
func rawMessage(m *jetstream.RawStreamMsg) bus.Message {
	bm := bus.Message{Topic: m.Subject, Value: m.Data, Headers: map[string]string{}, Position: m.Sequence, Time: m.Time}
	for k, v := range m.Header {
		switch {
		case len(v) == 0:
		case k == HeaderKey:
			bm.Key = []byte(v[0])
		case strings.HasPrefix(k, "Nats-"):
		default:
			bm.Headers[k] = v[0]
		}
	}
	return bm
}
