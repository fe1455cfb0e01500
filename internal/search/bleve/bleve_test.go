package bleve_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/search/bleve"
)

func doc(id, title, status, by, content string, created time.Time) search.Document {
	return search.Document{ID: id, Title: title, ContentType: "text/plain", ContentSize: int64(len(content)),
		S3Key: id + "/content", Status: status, CreatedBy: by, CreatedAt: &created, UpdatedAt: &created, Version: 1, Content: content}
}

func upsert(v uint64, d search.Document) search.Op { return search.Op{ID: d.ID, Version: v, Doc: d} }
func del(v uint64, id string) search.Op            { return search.Op{ID: id, Version: v, Delete: true} }

func ids(r search.Result) []string {
	out := []string{}
	for _, h := range r.Hits {
		out = append(out, h.ID)
	}
	return out
}

func mustApply(t *testing.T, x search.Index, ops ...search.Op) search.BulkResult {
	t.Helper()
	res, err := x.Apply(context.Background(), ops)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func find(t *testing.T, x search.Index, q search.Query) search.Result {
	t.Helper()
	if q.Size == 0 {
		q.Size = 10
	}
	r, err := x.Search(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func openDir(t *testing.T) (*bleve.Index, string) {
	dir := filepath.Join(t.TempDir(), "index")
	x, err := bleve.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return x, dir
}

func TestExternalVersionsNeverGoBackwards(t *testing.T) {
	x, _ := openDir(t)
	defer x.Close()
	t0 := time.Date(2025, 11, 20, 1, 0, 0, 0, time.UTC)
	v1 := doc("a", "Sales Agreement", "created", "john@x.com", "", t0)
	v2 := v1
	v2.Title, v2.Status = "Sales Agreement signed", "signed"

	cases := []struct {
		name      string
		ops       []search.Op
		applied   int
		stale     int
		wantTitle string // "" means the document must be absent
	}{
		{"a first upsert is applied", []search.Op{upsert(100, v1)}, 1, 0, "Sales Agreement"},
		{"a newer upsert replaces it", []search.Op{upsert(200, v2)}, 1, 0, "Sales Agreement signed"},
		{"a repeated version is refused", []search.Op{upsert(200, v1)}, 0, 1, "Sales Agreement signed"},
		{"an older version is refused", []search.Op{upsert(150, v1)}, 0, 1, "Sales Agreement signed"},
		{"a stale delete is refused", []search.Op{del(120, "a")}, 0, 1, "Sales Agreement signed"},
		{"a newer delete removes it", []search.Op{del(300, "a")}, 1, 0, ""},
		{"a late upsert after the delete is refused (tombstone)", []search.Op{upsert(250, v2)}, 0, 1, ""},
		{"in one batch the last newer op wins", []search.Op{upsert(400, v1), upsert(350, v2), del(500, "a"), upsert(600, v2)}, 3, 1, "Sales Agreement signed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := mustApply(t, x, c.ops...)
			if res.Applied != c.applied || res.Stale != c.stale {
				t.Fatalf("applied/stale = %d/%d, want %d/%d", res.Applied, res.Stale, c.applied, c.stale)
			}
			r := find(t, x, search.Query{Text: "sales"})
			if c.wantTitle == "" {
				if r.Total != 0 {
					t.Fatalf("document still found: %+v", r.Hits)
				}
				return
			}
			if r.Total != 1 || r.Hits[0].Title != c.wantTitle {
				t.Fatalf("got %+v, want title %q", r.Hits, c.wantTitle)
			}
		})
	}
}

func TestVersionsAndAppliedLSNSurviveReopen(t *testing.T) {
	x, dir := openDir(t)
	t0 := time.Now().UTC()
	mustApply(t, x, upsert(10, doc("a", "Alpha", "created", "u", "", t0)), del(20, "b"))
	if err := x.SetAppliedLSN(context.Background(), 42); err != nil {
		t.Fatal(err)
	}
	if err := x.SetAppliedLSN(context.Background(), 7); err != nil { // must not go back
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x, err := bleve.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if lsn, _ := x.AppliedLSN(context.Background()); lsn != 42 {
		t.Fatalf("applied lsn = %d, want 42", lsn)
	}
	res := mustApply(t, x, upsert(10, doc("a", "Old", "created", "u", "", t0)), upsert(15, doc("b", "Beta", "created", "u", "", t0)))
	if res.Stale != 2 {
		t.Fatalf("stale = %d, want 2 (version and tombstone kept on disk)", res.Stale)
	}
	if n, _ := x.Count(context.Background()); n != 1 {
		t.Fatalf("count = %d, want 1", n)
	}
}

// seed is an on-disk (scorch) index, the one deployments use: its fuzzy
// expansion and ranking are this package's own (query.go, topk.go).
func seed(t *testing.T) *bleve.Index {
	t.Helper()
	x, _ := openDir(t)
	t.Cleanup(func() { x.Close() })
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	mustApply(t, x,
		upsert(1, doc("1", "Sales Agreement Q4 2025", "created", "john.doe@company.com", "This agreement outlines the terms of the quarterly sale.", t0)),
		upsert(2, doc("2", "Employment Contract", "signed", "jane@company.com", "The employee agrees to confidentiality.", t0.Add(time.Hour))),
		upsert(3, doc("3", "Sales Forecast", "signed", "john.doe@company.com", "Revenue projections.", t0.Add(2*time.Hour))),
		upsert(4, doc("4", "Lease", "archived", "bob@company.com", "The tenant shall pay rent monthly.", t0.Add(3*time.Hour))),
	)
	return x
}

func TestSearch(t *testing.T) {
	x := seed(t)
	cases := []struct {
		name string
		q    search.Query
		want []string // ids, in order
	}{
		{"a match in title and content ranks above title alone", search.Query{Text: "sales"}, []string{"1", "3"}},
		{"equal scores: newest first", search.Query{Text: "company.com", Status: "signed"}, []string{"3", "2"}},
		{"english stemming: agreeing finds agrees", search.Query{Text: "agreeing"}, []string{"2"}},
		{"content only", search.Query{Text: "tenant"}, []string{"4"}},
		{"fuzzy: one typo", search.Query{Text: "contrct"}, []string{"2"}},
		{"status filter", search.Query{Text: "sales", Status: "created"}, []string{"1"}},
		{"created_by filter is exact", search.Query{Text: "sales", CreatedBy: "john.doe@company.com", Status: "signed"}, []string{"3"}},
		{"created_by is searched as text", search.Query{Text: "jane"}, []string{"2"}},
		{"paging", search.Query{Text: "sales", From: 1, Size: 1}, []string{"3"}},
		{"nothing", search.Query{Text: "zebra"}, []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := find(t, x, c.q)
			if got := ids(r); !slices.Equal(got, c.want) {
				t.Fatalf("ids = %v, want %v", got, c.want)
			}
		})
	}
}

func TestSearchHitCarriesFieldsAndHighlights(t *testing.T) {
	x := seed(t)
	r := find(t, x, search.Query{Text: "tenant"})
	if len(r.Hits) != 1 {
		t.Fatalf("hits = %d", len(r.Hits))
	}
	h := r.Hits[0]
	if h.Title != "Lease" || h.Status != "archived" || h.CreatedBy != "bob@company.com" || h.ContentType != "text/plain" ||
		h.S3Key != "4/content" || h.Version != 1 || h.ContentSize != 34 || h.CreatedAt == nil || h.Score <= 0 {
		t.Fatalf("hit = %+v", h)
	}
	if want := time.Date(2025, 1, 1, 3, 0, 0, 0, time.UTC); !h.CreatedAt.Equal(want) {
		t.Fatalf("created_at = %v, want %v", h.CreatedAt, want)
	}
	if len(h.Highlights["content"]) == 0 || !strings.Contains(h.Highlights["content"][0], "<mark>tenant</mark>") {
		t.Fatalf("highlights = %v", h.Highlights)
	}
}

func TestSuggest(t *testing.T) {
	x := seed(t)
	mustApply(t, x, upsert(5, doc("5", "sales agreement q4 2025", "created", "z", "", time.Now())))
	got, err := x.Suggest(context.Background(), "SaL", 10, search.Everything)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"Sales Agreement Q4 2025", "Sales Forecast"}) {
		t.Fatalf("suggestions = %v", got)
	}
	got, _ = x.Suggest(context.Background(), "sal", 1, search.Everything)
	if len(got) != 1 {
		t.Fatalf("size not honoured: %v", got)
	}
}

func TestTerms(t *testing.T) {
	x := seed(t)
	cases := []struct {
		field, text string
		want        []search.Bucket
	}{
		{"status", "", []search.Bucket{{Key: "signed", Count: 2}, {Key: "archived", Count: 1}, {Key: "created", Count: 1}}},
		{"status", "sales", []search.Bucket{{Key: "created", Count: 1}, {Key: "signed", Count: 1}}},
		{"created_by", "", []search.Bucket{{Key: "john.doe@company.com", Count: 2}, {Key: "bob@company.com", Count: 1}, {Key: "jane@company.com", Count: 1}}},
		{"content_type", "", []search.Bucket{{Key: "text/plain", Count: 4}}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s where %q", c.field, c.text), func(t *testing.T) {
			got, err := x.Terms(context.Background(), c.field, c.text, 10, search.Everything)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("buckets = %v, want %v", got, c.want)
			}
		})
	}
}

// shared seeds documents with owners and readers: a is Alice's alone, b is
// Alice's shared with the legal group, c is Bob's, d was created
// anonymously (no readers: only unrestricted callers see it).
func shared(t *testing.T) *bleve.Index {
	t.Helper()
	x, err := bleve.OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	return fillShared(t, x)
}

// sharedOnDisk is shared in an on-disk (scorch) index, the one served:
// its fuzzy matching and searcher shapes are not the in-memory index's.
func sharedOnDisk(t *testing.T) *bleve.Index {
	t.Helper()
	x, err := bleve.Open(filepath.Join(t.TempDir(), "index"))
	if err != nil {
		t.Fatal(err)
	}
	return fillShared(t, x)
}

func fillShared(t *testing.T, x *bleve.Index) *bleve.Index {
	t.Helper()
	t.Cleanup(func() { x.Close() })
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	owned := func(d search.Document, owner string, readers ...string) search.Document {
		d.Owner, d.Readers = owner, readers
		return d
	}
	mustApply(t, x,
		upsert(1, owned(doc("a", "Sales Merger Plan", "created", "alice@x.com", "Secret merger terms for the sales team.", t0), "user:alice", "user:alice")),
		upsert(2, owned(doc("b", "Sales Contract", "signed", "alice@x.com", "Contract terms reviewed by legal.", t0.Add(time.Hour)), "user:alice", "user:alice", "group:legal")),
		upsert(3, owned(doc("c", "Sales Forecast", "sent", "bob@x.com", "Bob's sales numbers.", t0.Add(2*time.Hour)), "user:bob", "user:bob")),
		upsert(4, doc("d", "Sales Notes", "created", "anon@x.com", "Anonymous sales notes.", t0.Add(3*time.Hour))),
	)
	return x
}

func TestAccessRestrictsEveryQueryInsideIt(t *testing.T) {
	x := shared(t)
	ctx := context.Background()
	cases := []struct {
		name    string
		acc     search.Access
		hits    []string // ids for "sales", in order
		titles  []string // suggestions for "sal"
		statuss []search.Bucket
	}{
		{"unrestricted sees everything", search.Everything, []string{"a", "d", "c", "b"},
			[]string{"Sales Contract", "Sales Forecast", "Sales Merger Plan", "Sales Notes"},
			[]search.Bucket{{Key: "created", Count: 2}, {Key: "sent", Count: 1}, {Key: "signed", Count: 1}}},
		{"the owner sees her own and her shared document", search.ReadersOf([]string{"user:alice", "email:alice@x.com"}), []string{"a", "b"},
			[]string{"Sales Contract", "Sales Merger Plan"},
			[]search.Bucket{{Key: "created", Count: 1}, {Key: "signed", Count: 1}}},
		{"another user sees only his", search.ReadersOf([]string{"user:bob"}), []string{"c"},
			[]string{"Sales Forecast"}, []search.Bucket{{Key: "sent", Count: 1}}},
		{"a group member sees what the group was given", search.ReadersOf([]string{"user:carol", "group:legal"}), []string{"b"},
			[]string{"Sales Contract"}, []search.Bucket{{Key: "signed", Count: 1}}},
		{"a caller without keys sees nothing", search.ReadersOf(nil), []string{}, []string{}, []search.Bucket{}},
		{"an unknown key sees nothing", search.ReadersOf([]string{"user:mallory"}), []string{}, []string{}, []search.Bucket{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := find(t, x, search.Query{Text: "sales", Access: c.acc})
			got := ids(r)
			slices.Sort(got)
			want := slices.Clone(c.hits)
			slices.Sort(want)
			if !slices.Equal(got, want) || r.Total != int64(len(c.hits)) {
				t.Fatalf("hits = %v (total %d), want %v", ids(r), r.Total, c.hits)
			}
			// A word only in the private document's content: its highlight
			// (and total) must not reach anyone else.
			r = find(t, x, search.Query{Text: "merger", Access: c.acc})
			if wantA := slices.Contains(c.hits, "a"); wantA != (r.Total == 1) || !wantA && len(r.Hits) > 0 {
				t.Fatalf("merger: total %d, hits %v", r.Total, ids(r))
			}
			s, err := x.Suggest(ctx, "sal", 10, c.acc)
			if err != nil || !slices.Equal(s, c.titles) {
				t.Fatalf("suggest = %v, %v, want %v", s, err, c.titles)
			}
			b, err := x.Terms(ctx, "status", "", 10, c.acc)
			if err != nil || !slices.Equal(b, c.statuss) {
				t.Fatalf("terms = %v, %v, want %v", b, err, c.statuss)
			}
			b, err = x.Terms(ctx, "created_by", "merger", 10, c.acc)
			if wantA := slices.Contains(c.hits, "a"); err != nil || wantA != (len(b) == 1) {
				t.Fatalf("terms by created_by for merger = %v, %v", b, err)
			}
		})
	}
}

func TestAccessDoesNotChangeScores(t *testing.T) {
	// Several fields and words, and one word in one field: on disk, a
	// query whose searcher is a bare term searcher.
	for _, c := range []struct {
		x    *bleve.Index
		text string
	}{{shared(t), "sales contract terms"}, {sharedOnDisk(t), "sales contract terms"}, {sharedOnDisk(t), "terms"}} {
		x, text := c.x, c.text
		all := find(t, x, search.Query{Text: text})
		mine := find(t, x, search.Query{Text: text, Access: search.ReadersOf([]string{"user:alice"})})
		score := map[string]float64{}
		for _, h := range all.Hits {
			score[h.ID] = h.Score
		}
		if len(mine.Hits) == 0 {
			t.Fatalf("%s: no hits restricted", text)
		}
		for _, h := range mine.Hits {
			if h.Score != score[h.ID] {
				t.Fatalf("%s: %s scores %v restricted, %v unrestricted", text, h.ID, h.Score, score[h.ID])
			}
			if len(h.Highlights["content"]) == 0 {
				t.Fatalf("%s: %s: no highlight when restricted: %v", text, h.ID, h.Highlights)
			}
		}
	}
}

func TestAReadersOnlyChangeMovesVisibility(t *testing.T) {
	x := shared(t)
	bob := search.ReadersOf([]string{"user:bob"})
	if r := find(t, x, search.Query{Text: "merger", Access: bob}); r.Total != 0 {
		t.Fatalf("bob sees %v before the share", ids(r))
	}
	// The share: same document version, a newer change (LSN).
	a := doc("a", "Sales Merger Plan", "created", "alice@x.com", "Secret merger terms for the sales team.", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	a.Owner, a.Readers = "user:alice", []string{"user:alice", "user:bob"}
	mustApply(t, x, upsert(10, a))
	if r := find(t, x, search.Query{Text: "merger", Access: bob}); !slices.Equal(ids(r), []string{"a"}) || r.Hits[0].Version != 1 {
		t.Fatalf("bob after the share: %+v", r)
	}
	// The revocation.
	a.Readers = []string{"user:alice"}
	mustApply(t, x, upsert(11, a))
	if r := find(t, x, search.Query{Text: "merger", Access: bob}); r.Total != 0 {
		t.Fatalf("bob sees %v after the revocation", ids(r))
	}
}

// TestASecondOpenerOfTheIndexFailsFastWithAClearMessage: Bleve allows one
// process per index directory; a second opener (another process on the
// same --data-dir; here a second open in this one, which the lock refuses
// alike) fails after LockTimeout naming the way out, instead of waiting
// forever. Once the first closes, the index opens again.
func TestASecondOpenerOfTheIndexFailsFastWithAClearMessage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "index")
	first, err := bleve.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bleve.Open(dir)
	if !errors.Is(err, bleve.ErrLocked) || !strings.Contains(err.Error(), "single-node") || !strings.Contains(err.Error(), "--search-url") {
		t.Fatalf("second open: %v; want ErrLocked explaining Bleve is single-node", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := bleve.Open(dir)
	if err != nil {
		t.Fatalf("open after the first closed: %v", err)
	}
	again.Close()
}
