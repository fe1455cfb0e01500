package document

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	blobstore "github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// A create that crashed between writing its content and inserting its row
// (Upload without Commit) leaves content no row owns; so does a delete
// whose blob removal failed. The sweep removes exactly those, past the
// grace cutoff, and leaves every document's content readable.
func TestSweepCollectsContentOfCrashedCreatesAndNothingElse(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	crashed, err := e.svc.Upload(ctx, "text/plain", strings.NewReader("never committed"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	kept := e.create(t, "Kept", "kept content")
	deleted := e.create(t, "Deleted", "deleted content")
	// The row goes but its content stays, as when the blob delete failed.
	if _, err := e.svc.store.deleteUnchecked(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}
	// An extracted-text object belongs to its document like the content.
	if err := e.bucket.WriteAll(ctx, kept.ID+"/text", []byte("kept content"), nil); err != nil {
		t.Fatal(err)
	}

	s := blobstore.NewSweeper(e.bucket, Bucket, e.svc.Ownership(), blobstore.SweepConfig{PageSize: 2, Rate: 1000}, logging.Discard())
	rep, err := s.Sweep(ctx, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Removed != 2 {
		t.Errorf("removed %d objects, want 2 (the crashed create's and the deleted document's)", rep.Removed)
	}
	left := testenv.Keys(t, e.bucket)
	if want := []string{ContentKey(kept.ID), kept.ID + "/text"}; !slices.Equal(left, want) {
		t.Fatalf("bucket holds %v, want %v (crashed: %s)", left, want, crashed.Key)
	}
	if r := e.do(t, "GET", "/documents/"+kept.ID+"/content", nil, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("content of the kept document: %d", r.StatusCode)
	}
}
