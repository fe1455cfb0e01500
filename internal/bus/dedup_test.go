package bus_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/docstream/docstream/internal/bus"
)

// ev is a change event: key, commit LSN and lsn, at a position (partition 0).
func ev(key string, commit, lsn, pos uint64) bus.Message {
	return bus.Message{Topic: bus.TopicDocuments, Key: []byte(key), Position: pos, Headers: map[string]string{
		bus.HeaderCommitLSN: strconv.FormatUint(commit, 10), bus.HeaderLSN: strconv.FormatUint(lsn, 10)}}
}

func late(m bus.Message) bus.Message { m.Headers[bus.HeaderLate] = "true"; return m }

func inPartition(m bus.Message, p int32) bus.Message { m.Partition = p; return m }

func TestDedupDropsOnlyRepeats(t *testing.T) {
	cases := []struct {
		name    string
		batches [][]bus.Message
		fail    []bool // handler fails for batch i
		want    []uint64
	}{
		{"a transaction published again after later ones is dropped",
			[][]bus.Message{{ev("a", 10, 9, 1), ev("b", 20, 19, 2)}, {ev("a", 10, 9, 3), ev("b", 20, 19, 4), ev("c", 30, 29, 5)}}, nil,
			[]uint64{1, 2, 5}},
		{"repeats inside one batch are dropped",
			[][]bus.Message{{ev("a", 10, 9, 1), ev("b", 20, 19, 2), ev("a", 10, 9, 3), ev("b", 20, 19, 4)}}, nil,
			[]uint64{1, 2}},
		{"the rest of a transaction stored in part is kept, the stored part dropped",
			[][]bus.Message{{ev("a", 10, 8, 1), ev("b", 10, 9, 2)}, {ev("a", 10, 8, 3), ev("b", 10, 9, 4), ev("c", 10, 9, 5)}}, nil,
			[]uint64{1, 2, 5}},
		{"an event published late is kept",
			[][]bus.Message{{ev("a", 10, 9, 1), ev("b", 30, 29, 2)}, {late(ev("x", 20, 19, 3))}}, nil,
			[]uint64{1, 2, 3}},
		{"a batch redelivered after its handler failed is kept, also after later ones were handled",
			[][]bus.Message{{ev("a", 10, 9, 1)}, {ev("b", 20, 19, 2)}, {ev("a", 10, 9, 1)}}, []bool{true, false, false},
			[]uint64{2, 1}},
		{"a redelivery of what was handled is dropped",
			[][]bus.Message{{ev("a", 10, 9, 1)}, {ev("a", 10, 9, 1)}}, nil,
			[]uint64{1}},
		{"partitions are ordered apart",
			[][]bus.Message{{inPartition(ev("a", 20, 19, 1), 0)}, {inPartition(ev("b", 10, 9, 1), 1)}}, nil,
			[]uint64{1, 1}},
		{"messages without an lsn pass",
			[][]bus.Message{{{Topic: "x", Position: 7}}, {{Topic: "x", Position: 7}}}, nil,
			[]uint64{7, 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := bus.NewDedup("test")
			var got []uint64
			for i, b := range tc.batches {
				fail := i < len(tc.fail) && tc.fail[i]
				_ = d.Wrap(func(_ context.Context, msgs []bus.Message) error {
					if fail {
						return errors.New("transient")
					}
					for _, m := range msgs {
						got = append(got, m.Position)
					}
					return nil
				})(context.Background(), b)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("handled positions %v, want %v", got, tc.want)
			}
		})
	}
}
