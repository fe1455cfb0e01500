package kafka

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/docstream/docstream/internal/bus"
)

var _ bus.Resumer = (*Bus)(nil)

// resumeTail is how many records per partition Resume reads back: more than
// the CDC engine has in flight (a few batches of up to 1,000 events, spread
// over the partitions). Of a larger transaction cut off in flight, events
// further back are published again (consumers drop them).
const resumeTail = 10_000

// Resume implements bus.Resumer: the last record of marks (one partition),
// and the events of topics at or above its lsn among the last resumeTail
// records of each partition. Kafka keeps order per partition only, so this
// is a set of events, not a position; a row's events stay in one partition,
// so the set answers for each of them.
func (b *Bus) Resume(ctx context.Context, topics []string, marks string) (bus.Resume, error) {
	r := bus.Resume{Stored: func(bus.Message) bool { return false }}
	all := append(slices.Clone(topics), marks)
	for _, t := range all {
		if err := b.ensureTopic(ctx, t); err != nil {
			return r, err
		}
	}
	starts, err := b.adm.ListStartOffsets(ctx, all...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return r, fmt.Errorf("kafka: resume: start offsets: %w", err)
	}
	ends, err := b.adm.ListEndOffsets(ctx, all...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return r, fmt.Errorf("kafka: resume: end offsets: %w", err)
	}
	assign := map[string]map[int32]kgo.Offset{}
	last := map[string]map[int32]int64{}
	pending := 0
	ends.Each(func(lo kadm.ListedOffset) {
		st, _ := starts.Lookup(lo.Topic, lo.Partition)
		if lo.Offset <= st.Offset {
			return // empty
		}
		n := int64(resumeTail)
		if lo.Topic == marks {
			n = 1
		}
		from := max(st.Offset, lo.Offset-n)
		if assign[lo.Topic] == nil {
			assign[lo.Topic], last[lo.Topic] = map[int32]kgo.Offset{}, map[int32]int64{}
		}
		assign[lo.Topic][lo.Partition] = kgo.NewOffset().At(from)
		last[lo.Topic][lo.Partition] = lo.Offset - 1
		pending++
	})
	if pending == 0 {
		return r, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.seeds...), kgo.ConsumePartitions(assign), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return r, fmt.Errorf("kafka: resume client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var tail []bus.Message
	for pending > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return r, fmt.Errorf("kafka: resume: %w", err)
		}
		if err := fetches.Err(); err != nil {
			return r, fmt.Errorf("kafka: resume: %w", err)
		}
		fetches.EachRecord(func(rec *kgo.Record) {
			m := toMessage(rec)
			if rec.Topic == marks {
				r.Mark, r.HasMark = m, true
			} else {
				tail = append(tail, m)
			}
			if want, ok := last[rec.Topic][rec.Partition]; ok && rec.Offset >= want {
				delete(last[rec.Topic], rec.Partition)
				pending--
			}
		})
	}
	w := bus.Cursor(r.Mark)
	stored := map[string]struct{}{}
	for _, m := range tail {
		if c := bus.Cursor(m); c >= w {
			stored[resumeID(m)] = struct{}{}
			r.Tail++
			r.Last = max(r.Last, c)
		}
	}
	r.Stored = func(m bus.Message) bool { _, ok := stored[resumeID(m)]; return ok }
	return r, nil
}

func resumeID(m bus.Message) string {
	return m.Topic + "|" + m.Headers[bus.HeaderLSN] + "|" + string(m.Key)
}
