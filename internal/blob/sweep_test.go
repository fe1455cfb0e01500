package blob

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

const (
	orphan = "0691e72f-799b-7efd-8000-e5c4e1cb7813" // a create that crashed before its row
	owned  = "0691e72f-799b-7efd-8000-e5c4e1cb7814" // a document with its row
	young  = "0691e72f-799b-7efd-8000-e5c4e1cb7815" // a create in progress: no row yet
)

// sweepRemovesOnlyOldUnownedObjects: objects of a missing row older than
// the cutoff go, with what derives from them; owned, young and foreign
// objects stay; the listing is paged (page size 2) and the removal is
// counted in the metrics.
func sweepRemovesOnlyOldUnownedObjects(t *testing.T, base, metricName string) *Bucket {
	ctx := context.Background()
	b, err := Open(ctx, base, "documents")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	write := func(key, body string) {
		if err := b.WriteAll(ctx, key, []byte(body), nil); err != nil {
			t.Fatal(err)
		}
	}
	write(orphan+"/content", "lost content")
	write(orphan+"/text", "derived")
	write(owned+"/content", "kept")
	write("notes/readme", "not ours")
	// S3 keeps modification times in whole seconds: a second apart, a
	// cutoff between them is unambiguous.
	time.Sleep(1100 * time.Millisecond)
	cutoff := time.Now().Truncate(time.Second)
	write(young+"/content", "upload in progress")

	own := Ownership{
		Owner: FirstSegmentUUID,
		Existing: func(_ context.Context, ids []string) (map[string]bool, error) {
			return map[string]bool{owned: slices.Contains(ids, owned)}, nil
		},
	}
	before := testutil.ToFloat64(sweptObjects.WithLabelValues(metricName))
	s := NewSweeper(b, metricName, own, SweepConfig{PageSize: 2, Rate: 1000}, logging.Discard())
	rep, err := s.Sweep(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{owned + "/content", young + "/content", "notes/readme"}
	if got := testenv.Keys(t, b); !slices.Equal(got, want) {
		t.Fatalf("after the sweep the bucket holds %v, want %v", got, want)
	}
	if rep.Removed != 2 || rep.Bytes != int64(len("lost content")+len("derived")) || rep.Listed != 5 {
		t.Fatalf("report %+v, want 2 removed, 19 bytes, 5 listed", rep)
	}
	if got := testutil.ToFloat64(sweptObjects.WithLabelValues(metricName)) - before; got != 2 {
		t.Fatalf("docstream_blob_swept_objects_total grew by %v, want 2", got)
	}
	return b
}

func TestSweepFileBucket(t *testing.T) {
	dir := t.TempDir()
	sweepRemovesOnlyOldUnownedObjects(t, "file://"+filepath.ToSlash(dir), "test-file")
	// The orphan's directory went with its objects; the others stay.
	if _, err := os.Stat(filepath.Join(dir, "documents", orphan)); !os.IsNotExist(err) {
		t.Fatalf("directory of the swept objects: %v, want it removed", err)
	}
	for _, d := range []string{owned, young, "notes"} {
		if _, err := os.Stat(filepath.Join(dir, "documents", d)); err != nil {
			t.Fatalf("directory %s: %v", d, err)
		}
	}
}

func TestSweepS3BucketOnVersityGateway(t *testing.T) {
	ctx := context.Background()
	root, _ := filepath.Abs("../../.tools/bin")
	s3, err := localstack.StartS3(ctx, t.TempDir(), root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s3.Stop)
	t.Setenv("AWS_ACCESS_KEY_ID", localstack.S3AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", localstack.S3SecretKey)
	os.Unsetenv("AWS_PROFILE")
	sweepRemovesOnlyOldUnownedObjects(t, "s3://ignored?endpoint="+s3.Endpoint()+"&region=us-east-1&use_path_style=true", "test-s3")
}

// Empty directories a delete leaves in a file:// bucket go with it (and
// with the sweep, for those left by an older version or a crash).
func TestDeleteLeavesNoEmptyDirectories(t *testing.T) {
	ctx := context.Background()
	b, dir := fileBucket(t)
	for _, k := range []string{owned + "/content", owned + "/text", orphan + "/content"} {
		if err := b.WriteAll(ctx, k, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Remove(ctx, owned+"/content"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "documents", owned)); err != nil {
		t.Fatalf("directory still holding %s/text: %v", owned, err)
	}
	if err := b.Remove(ctx, owned+"/text"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "documents", owned)); !os.IsNotExist(err) {
		t.Fatalf("directory after its last object was deleted: %v, want it removed", err)
	}
	if err := b.Remove(ctx, owned+"/text"); err != nil {
		t.Fatalf("deleting a missing object: %v", err)
	}
	// A directory emptied by a plain delete is removed by the sweep.
	if err := b.Delete(ctx, orphan+"/content"); err != nil {
		t.Fatal(err)
	}
	s := NewSweeper(b, "test-dirs", Ownership{Owner: FirstSegmentUUID}, SweepConfig{Rate: 1000}, logging.Discard())
	rep, err := s.Sweep(ctx, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "documents", orphan)); !os.IsNotExist(err) || rep.Dirs != 1 {
		t.Fatalf("empty directory after the sweep: %v (report %+v), want it removed", err, rep)
	}
	if _, err := os.Stat(filepath.Join(dir, "documents")); err != nil {
		t.Fatalf("the bucket's own directory: %v", err)
	}
}

func TestSweepConfigRefusesAShortGrace(t *testing.T) {
	c := DefaultSweepConfig()
	c.Grace = time.Second
	if err := c.Validate("document"); err == nil {
		t.Fatal("a 1s grace was accepted")
	}
	c.Interval = 0
	if err := c.Validate("document"); err != nil {
		t.Fatalf("sweeping off: %v", err)
	}
}
