package search

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// countingIndex answers every search with the number of searches it has
// run, so a test sees whether an answer was computed or reused.
type countingIndex struct {
	Index
	lsn      uint64
	lsnErr   error
	changes  uint64
	searches int
}

func (x *countingIndex) AppliedLSN(context.Context) (uint64, error) { return x.lsn, x.lsnErr }
func (x *countingIndex) Generation() uint64                         { return x.changes }
func (x *countingIndex) Search(context.Context, Query) (Result, error) {
	x.searches++
	return Result{Total: int64(x.searches)}, nil
}

func TestTheResultCacheServesOnlyTheGenerationItWasFilledIn(t *testing.T) {
	ctx := context.Background()
	x := &countingIndex{lsn: 10}
	c := newResultCache(100)
	ask := func(q Query) int64 {
		t.Helper()
		r, err := c.search(ctx, x, q)
		if err != nil {
			t.Fatal(err)
		}
		return r.Total
	}
	q := Query{Text: "sales", Size: 10}
	if ask(q) != 1 || ask(q) != 1 {
		t.Fatal("the same query in the same generation was searched twice")
	}
	if ask(Query{Text: "sales", Size: 20}) != 2 {
		t.Fatal("another size was answered from the cache")
	}

	// Access is part of the key; the order of reader keys is not.
	alice := Query{Text: "sales", Size: 10, Access: ReadersOf([]string{"user:alice", "group:legal"})}
	if ask(alice) != 3 {
		t.Fatal("a restricted caller was served the unrestricted result")
	}
	if ask(Query{Text: "sales", Size: 10, Access: ReadersOf([]string{"group:legal", "user:alice"})}) != 3 {
		t.Fatal("the same reader keys in another order missed")
	}
	if ask(Query{Text: "sales", Size: 10, Access: ReadersOf([]string{"user:bob"})}) != 4 {
		t.Fatal("another caller was served alice's result")
	}
	if ask(Query{Text: "sales", Size: 10, Access: ReadersOf(nil)}) != 5 {
		t.Fatal("a caller who may see nothing was served someone else's result")
	}

	// The applied LSN moves: nothing from before is served.
	x.lsn = 11
	if ask(q) != 6 {
		t.Fatal("a result from LSN 10 was served at LSN 11")
	}
	// The index changed without moving the applied LSN (a batch applied,
	// its watermark not yet stored).
	x.changes++
	if ask(q) != 7 || ask(q) != 7 {
		t.Fatal("a result from before a change was served after it, or the new one was not kept")
	}

	// A result computed in an older generation does not replace the cache.
	c.put(generation{lsn: 10}, mustKey(cacheKey(q)), Result{Total: 99})
	if ask(q) != 7 {
		t.Fatal("a late result from an older generation was served")
	}

	// Without a generation to key by, every search runs.
	x.lsnErr = errors.New("index unavailable")
	if ask(q) != 8 || ask(q) != 9 {
		t.Fatal("the cache answered without knowing the generation")
	}
}

func TestTheResultCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	x := &countingIndex{}
	c := newResultCache(3)
	for i := range 10 {
		if _, err := c.search(ctx, x, Query{Text: "w", From: i, Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.entries) != 3 {
		t.Fatalf("%d entries, want at most 3", len(c.entries))
	}
	if newResultCache(0) != nil {
		t.Fatal("0 entries must disable the cache")
	}
}

// Two equal queries built separately (their reader lists separate slices,
// in any order, with repeats) share one cache entry; two that differ in
// any one field, filters, page and caller alike, do not. Every field of
// Query and Access has a case here, so a field added later without one
// fails this test.
func TestEqualQueriesShareOneCacheEntryAndAnyDifferenceHasItsOwn(t *testing.T) {
	ctx := context.Background()
	build := func() Query {
		return Query{Text: "lease", Status: "sent", CreatedBy: "ann@example.com", SigningStatus: "in_progress",
			From: 10, Size: 5, Access: ReadersOf([]string{"user:alice", "group:legal"})}
	}
	x := &countingIndex{lsn: 10}
	c := newResultCache(100)
	for _, q := range []Query{build(), build(), func() Query {
		q := build()
		q.Access.Readers = []string{"group:legal", "user:alice", "group:legal"}
		return q
	}()} {
		if _, err := c.search(ctx, x, q); err != nil {
			t.Fatal(err)
		}
	}
	if x.searches != 1 || len(c.entries) != 1 {
		t.Fatalf("three equal queries: %d searches, %d entries; want 1 and 1", x.searches, len(c.entries))
	}
	// A caller who may see nothing has one key, its keys nil or empty.
	none, empty := build(), build()
	none.Access, empty.Access = ReadersOf(nil), ReadersOf([]string{})
	if mustKey(cacheKey(none)) != mustKey(cacheKey(empty)) {
		t.Fatal("no reader keys, nil or empty, have two cache keys")
	}

	cases := []struct {
		field  string
		change func(*Query)
	}{
		{"Text", func(q *Query) { q.Text = "leases" }},
		{"Status", func(q *Query) { q.Status = "signed" }},
		{"Status", func(q *Query) { q.Status = "" }},
		{"CreatedBy", func(q *Query) { q.CreatedBy = "bob@example.com" }},
		{"SigningStatus", func(q *Query) { q.SigningStatus = "declined" }},
		{"SigningStatus", func(q *Query) { q.SigningStatus = "" }},
		{"From", func(q *Query) { q.From = 0 }},
		{"Size", func(q *Query) { q.Size = 50 }},
		{"Restricted", func(q *Query) { q.Access = Everything }},
		{"Readers", func(q *Query) { q.Access.Readers = []string{"user:bob", "group:legal"} }},
		{"Readers", func(q *Query) { q.Access.Readers = []string{"user:alice"} }},
		{"Readers", func(q *Query) { q.Access.Readers = nil }},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.field] = true
		q := build()
		tc.change(&q)
		before := x.searches
		if _, err := c.search(ctx, x, q); err != nil {
			t.Fatal(err)
		}
		if x.searches != before+1 {
			t.Errorf("a query differing in %s (%+v) was answered from another query's entry", tc.field, q)
		}
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[Query](), reflect.TypeFor[Access]()} {
		for i := range typ.NumField() {
			if f := typ.Field(i); f.Name != "Access" && !covered[f.Name] {
				t.Errorf("%s.%s has no case: add one showing that a query differing in it is cached apart", typ.Name(), f.Name)
			}
		}
	}
	if want := 1 + len(cases); len(c.entries) != want {
		t.Fatalf("%d entries, want %d", len(c.entries), want)
	}
}

func mustKey(key string, ok bool) string {
	if !ok {
		panic("cacheKey refused a query")
	}
	return key
}

// BenchmarkCacheKey is the cost the result cache adds to every search for
// its key (issue 16): a selective query of a caller with a few reader keys.
func BenchmarkCacheKey(b *testing.B) {
	q := Query{Text: "lease agreemnt", Status: "sent", Size: 10,
		Access: ReadersOf([]string{"user:alice", "group:legal", "email:alice@example.com"})}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := cacheKey(q); !ok {
			b.Fatal("no key")
		}
	}
}
