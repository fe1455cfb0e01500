package bleve

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/mapping"

	"github.com/docstream/docstream/internal/search"
)

// An index created before signing_status existed gets the field when Open
// opens it: its documents stay searchable, a document written afterwards
// is found by the signing_status filter and returns the field, and a
// second Open changes nothing. Without the upgrade the old mapping would
// drop the field (a static mapping indexes only the fields it names), as
// the first half shows.
func TestOpenAddsSigningStatusToAnIndexCreatedWithoutIt(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "index")
	old := newMapping().(*mapping.IndexMappingImpl)
	delete(old.DefaultMapping.Properties, fSigningStatus)
	raw, err := bleve.New(dir, old)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2025, 11, 20, 1, 46, 31, 0, time.UTC)
	doc := func(id, title, signing string) search.Document {
		return search.Document{ID: id, Title: title, ContentType: "text/plain", S3Key: id + "/content", Status: "sent",
			CreatedBy: "ann@example.com", CreatedAt: &created, UpdatedAt: &created, Version: 1, SigningStatus: signing}
	}
	before := &Index{idx: raw, created: newCreatedColumns()}
	if _, err := before.Apply(ctx, []search.Op{{ID: "a", Version: 10, Doc: doc("a", "Lease alpha", "")},
		{ID: "b", Version: 11, Doc: doc("b", "Lease beta", "in_progress")}}); err != nil {
		t.Fatal(err)
	}
	inProgress := search.Query{Text: "lease", SigningStatus: "in_progress", Size: 10}
	if res, err := before.Search(ctx, inProgress); err != nil || res.Total != 0 {
		t.Fatalf("the old mapping indexed signing_status (%d hits, %v): the test shows nothing", res.Total, err)
	}
	if err := before.Close(); err != nil {
		t.Fatal(err)
	}

	x, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := x.idx.Mapping().(*mapping.IndexMappingImpl).DefaultMapping.Properties[fSigningStatus]; !ok {
		t.Fatal("Open did not add signing_status to the mapping")
	}
	if _, err := x.Apply(ctx, []search.Op{{ID: "b", Version: 12, Doc: doc("b", "Lease beta", "in_progress")},
		{ID: "c", Version: 13, Doc: doc("c", "Lease gamma", "declined")}}); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x, err = Open(dir) // already upgraded: opened as it is
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })

	all, err := x.Search(ctx, search.Query{Text: "lease", Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range all.Hits {
		got = append(got, h.ID+"="+h.SigningStatus)
	}
	slices.Sort(got)
	if want := []string{"a=", "b=in_progress", "c=declined"}; !slices.Equal(got, want) {
		t.Fatalf("after the upgrade the index holds %v, want %v", got, want)
	}
	for state, want := range map[string]string{"in_progress": "b", "declined": "c"} {
		res, err := x.Search(ctx, search.Query{Text: "lease", SigningStatus: state, Size: 10})
		if err != nil || len(res.Hits) != 1 || res.Hits[0].ID != want {
			t.Fatalf("signing_status=%s: %+v %v, want %s", state, res.Hits, err, want)
		}
	}
}
