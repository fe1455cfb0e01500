package indexer_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	corpus "github.com/docstream/docstream/internal/bench"
	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/testenv"
)

// TestALoadedCorpusIsIndexedFromTheSnapshot: what `docstream bench load`
// writes (content made durable by one sync at the end, rows and shares by COPY) is
// indexed through the production path when the change stream starts after
// the load: every row reaches the index from the snapshot's "r" events, a
// sample is found by a word of its content (read from the bucket), and
// its owner and grantee restrict it as the document service would.
func TestALoadedCorpusIsIndexedFromTheSnapshot(t *testing.T) {
	const n, sample = 2000, 1234
	ctx := context.Background()
	s := newStack(t)
	res, err := corpus.Load(ctx, corpus.LoadOptions{DatabaseURL: s.URL, BlobURL: s.blobURL, Documents: n, Batch: 700, Workers: 8})
	if err != nil {
		t.Fatal(err)
	}
	if res.Documents != n || res.Shares == 0 {
		t.Fatalf("load: %+v", res)
	}
	idx, _ := s.startIndexer(t)
	s.startCDC(t)
	testenv.WaitFor(t, "the loaded corpus indexed", func() bool { c, _ := idx.Count(ctx); return c >= n })
	if c, err := idx.Count(ctx); err != nil || c != n {
		t.Fatalf("index holds %d documents (%v), want %d", c, err, n)
	}

	d := corpus.Document(sample)
	var word string // the sample's ~0.1 % word, in its content only
	for _, w := range strings.Fields(d.Content) {
		if slices.Contains(corpus.Rare, strings.TrimSuffix(w, ".")) {
			word = strings.TrimSuffix(w, ".")
		}
	}
	find := func(keys ...string) bool {
		t.Helper()
		r, err := idx.Search(ctx, search.Query{Text: word, Size: 100, Access: search.ReadersOf(keys)})
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(r.Hits, func(h search.Hit) bool { return h.Title == d.Title })
	}
	if word == "" || !find(d.Owner) {
		t.Fatalf("document %d (%q) not found by its content word %q as its owner %s", sample, d.Title, word, d.Owner)
	}
	stranger := "user:" + corpus.UserSubject(0)
	for k := 0; slices.Contains(d.Readers(), stranger); k++ {
		stranger = "user:" + corpus.UserSubject(k)
	}
	if find(stranger) {
		t.Fatalf("document %d found by %s, who is not among its readers %v", sample, stranger, d.Readers())
	}
}
