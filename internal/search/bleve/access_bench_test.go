package bleve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/docstream/docstream/internal/search"
)

// Access benchmark corpus: 20,000 documents, each readable by its owner
// only (one of 1,000 users), so one user sees 20 of them (0.1 %). Every
// document holds the word "agreement", so an unrestricted query for it
// matches the whole index.
const (
	accessDocs  = 20_000
	accessUsers = 1_000
)

// accessCorpus builds the corpus in an on-disk (scorch) index, as served;
// OpenMem's in-memory index is another engine, far slower to fill.
func accessCorpus(b *testing.B) (*Index, time.Duration) {
	x, err := Open(filepath.Join(b.TempDir(), "index"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { x.Close() })
	words := strings.Fields("contract lease invoice policy report memo proposal quarterly sales merger")
	r := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	for k := 0; k < accessDocs; k += 5000 {
		ops := make([]search.Op, 0, 5000)
		for i := k; i < k+5000; i++ {
			created := t0.Add(time.Duration(i) * time.Minute)
			owner := fmt.Sprintf("user:u%d", i%accessUsers)
			title := words[r.IntN(len(words))] + " agreement " + words[r.IntN(len(words))]
			ops = append(ops, search.Op{ID: fmt.Sprintf("d%05d", i), Version: uint64(i + 1), Doc: search.Document{
				ID: fmt.Sprintf("d%05d", i), Title: title, ContentType: "text/plain", Status: []string{"created", "sent", "signed"}[i%3],
				CreatedBy: fmt.Sprintf("u%d@x.com", i%accessUsers), CreatedAt: &created, UpdatedAt: &created, Version: 1,
				Content: "This agreement covers the " + title + " terms.", Owner: owner, Readers: []string{owner}}})
		}
		if _, err := x.Apply(context.Background(), ops); err != nil {
			b.Fatal(err)
		}
	}
	return x, time.Since(start)
}

// BenchmarkSearchAccess compares, on the corpus above, a search matching
// every document and an aggregation over all of them: unrestricted (open
// mode, admins), restricted to one user's 20 documents as the service does
// it (a conjunction the readers clause drives), and restricted with Bleve's
// boolean filter instead (which tests every match of the main query: the
// walk of the whole index the conjunction avoids).
func BenchmarkSearchAccess(b *testing.B) {
	x, accessBuild := accessCorpus(b)
	ctx := context.Background()
	user := search.ReadersOf([]string{"user:u7", "group:nobody", "email:u7@x.com"})
	searchCase := func(acc search.Access, want int64) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				r, err := x.Search(ctx, search.Query{Text: "agreement", Size: 10, Access: acc})
				if err != nil || r.Total != want {
					b.Fatalf("total %d, %v; want %d", r.Total, err, want)
				}
			}
			b.ReportMetric(accessBuild.Seconds(), "build_20k_s")
		}
	}
	termsCase := func(acc search.Access, want int64) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				bs, err := x.Terms(ctx, "status", "", 10, acc)
				var n int64
				for _, bk := range bs {
					n += bk.Count
				}
				if err != nil || n != want {
					b.Fatalf("count %d, %v; want %d", n, err, want)
				}
			}
		}
	}
	// filtered is the alternative not taken: the same restriction as a
	// boolean filter.
	filtered := func(b *testing.B) {
		for b.Loop() {
			readers := []query.Query{}
			for _, k := range user.Readers {
				readers = append(readers, term(fReaders, k))
			}
			bq := bleve.NewBooleanQuery()
			bq.AddMust(textQuery("agreement"))
			bq.AddFilter(bleve.NewDisjunctionQuery(readers...))
			req := bleve.NewSearchRequestOptions(live(bq), 10, 0, false)
			req.Fields = storedFields
			req.SortBy([]string{"-_score", "-" + fCreatedAt})
			res, err := x.idx.SearchInContext(ctx, req)
			if err != nil || res.Total != accessDocs/accessUsers {
				b.Fatalf("total %v, %v", res, err)
			}
		}
	}
	b.Run("search/unrestricted", searchCase(search.Everything, accessDocs))
	b.Run("search/one-user", searchCase(user, accessDocs/accessUsers))
	b.Run("search/one-user-bleve-filter", filtered)
	b.Run("terms/unrestricted", termsCase(search.Everything, accessDocs))
	b.Run("terms/one-user", termsCase(user, accessDocs/accessUsers))
}
