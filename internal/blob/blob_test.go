package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"gocloud.dev/blob"

	"github.com/docstream/docstream/internal/localstack"
)

func roundTrip(t *testing.T, base string) {
	t.Helper()
	ctx := context.Background()
	for _, name := range []string{"documents", "signatures"} {
		b, err := Open(ctx, base, name)
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		defer b.Close()
		if err := b.Ping(ctx); err != nil {
			t.Fatalf("ping %s: %v", name, err)
		}
		key := "0691e72f-799b-7efd-8000-e5c4e1cb7813/content"
		body := strings.Repeat("payload ", 1000)
		w, err := b.NewWriter(ctx, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(w, strings.NewReader(body))
		if err := w.Close(); err != nil {
			t.Fatalf("write to %s: %v", name, err)
		}
		if err := b.Sync(key); err != nil {
			t.Fatalf("sync %s: %v", name, err)
		}
		got, err := b.ReadAll(ctx, key)
		if err != nil || string(got) != body {
			t.Fatalf("read back from %s: %d bytes, %v", name, len(got), err)
		}
		if err := b.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if ok, _ := b.Exists(ctx, key); ok {
			t.Fatal("deleted object still exists")
		}
	}
	// Opening again finds the bucket already there.
	b, err := Open(ctx, base, "documents")
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	b.Close()
}

func TestFileBuckets(t *testing.T) {
	roundTrip(t, "file://"+filepath.ToSlash(t.TempDir()))
}

// TestS3BucketsOnVersityGateway runs the s3:// path against a real S3
// server (versitygw, installed by scripts/bootstrap.sh), MinIO-style
// credentials, path-style addressing; buckets are created at open.
func TestS3BucketsOnVersityGateway(t *testing.T) {
	ctx := context.Background()
	root, _ := filepath.Abs("../../.tools/bin")
	s3, err := localstack.StartS3(ctx, t.TempDir(), root)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Stop()
	t.Setenv("AWS_ACCESS_KEY_ID", localstack.S3AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", localstack.S3SecretKey)
	os.Unsetenv("AWS_PROFILE")
	roundTrip(t, "s3://ignored?endpoint="+s3.Endpoint()+"&region=us-east-1&use_path_style=true")
}

func TestSyncOfAMissingFileObjectFails(t *testing.T) {
	b, err := Open(context.Background(), "file://"+filepath.ToSlash(t.TempDir()), "documents")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Sync("nope/content"); err == nil {
		t.Fatal("Sync of a missing object succeeded")
	}
}

// TestSyncAllSyncsTheBucketsFileSystem: SyncAll answers nil on a file
// bucket whose directory exists and on a bucket without one, and fails
// (rather than reporting content durable) once the directory is gone.
func TestSyncAllSyncsTheBucketsFileSystem(t *testing.T) {
	ctx := context.Background()
	b, base := fileBucket(t)
	if err := b.WriteAll(ctx, "a/content", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.SyncAll(); err != nil {
		t.Fatalf("SyncAll: %v", err)
	}
	if err := os.RemoveAll(filepath.Join(base, "documents")); err != nil {
		t.Fatal(err)
	}
	if err := b.SyncAll(); err == nil {
		t.Fatal("SyncAll of a removed bucket directory succeeded")
	}
	if err := Wrap(nil).SyncAll(); err != nil {
		t.Fatalf("SyncAll without a directory: %v", err)
	}
}

// TestWriteUnsyncedReadsBackThroughFileblob: an object the bulk writer
// put in fileblob's layout reads back through gocloud like one gocloud
// wrote (content, size, content type, MD5), is listed without its
// sidecar, and is not overwritten by a second write.
func TestWriteUnsyncedReadsBackThroughFileblob(t *testing.T) {
	ctx := context.Background()
	b, _ := fileBucket(t)
	data := []byte("party shall herein payment.")
	if err := b.WriteUnsynced(ctx, "0196-bulk/content", data, "text/plain"); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteAll(ctx, "0196-gocloud/content", data, &blob.WriterOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	got, err := b.ReadAll(ctx, "0196-bulk/content")
	if err != nil || string(got) != string(data) {
		t.Fatalf("read back %q, %v", got, err)
	}
	bulk, err := b.Attributes(ctx, "0196-bulk/content")
	if err != nil {
		t.Fatal(err)
	}
	want, err := b.Attributes(ctx, "0196-gocloud/content")
	if err != nil {
		t.Fatal(err)
	}
	if bulk.ContentType != "text/plain" || bulk.Size != want.Size || string(bulk.MD5) != string(want.MD5) || len(bulk.MD5) == 0 {
		t.Fatalf("attributes %+v, gocloud's own %+v", bulk, want)
	}
	var keys []string
	it := b.List(nil)
	for {
		o, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, o.Key)
	}
	if fmt.Sprint(keys) != "[0196-bulk/content 0196-gocloud/content]" {
		t.Fatalf("listed %v", keys)
	}
	if err := b.WriteUnsynced(ctx, "0196-bulk/content", []byte("other"), "text/plain"); err == nil {
		t.Fatal("a second write of the same key succeeded")
	}
	if got, _ := b.ReadAll(ctx, "0196-bulk/content"); string(got) != string(data) {
		t.Fatalf("overwritten: %q", got)
	}
}

func TestBadURLsAreClearErrors(t *testing.T) {
	for _, u := range []string{"ftp://x", "::nope", "gs"} {
		if _, err := Open(context.Background(), u, "documents"); err == nil {
			t.Errorf("%q: no error", u)
		}
	}
}

// recorder is a Bucket's fsync that records every path it synced, and may
// hold the first call (so that others queue behind it) or fail some.
type recorder struct {
	mu      sync.Mutex
	synced  map[string]int
	hold    chan struct{} // the first fsync waits for it to close
	entered chan struct{} // closed when the first fsync began
	held    sync.Once
	fail    func(path string) bool
}

func newRecorder() *recorder {
	return &recorder{synced: map[string]int{}, hold: make(chan struct{}), entered: make(chan struct{}), fail: func(string) bool { return false }}
}

func (r *recorder) fsync(path string) error {
	r.held.Do(func() {
		close(r.entered)
		<-r.hold
	})
	r.mu.Lock()
	fail := r.fail(path)
	r.mu.Unlock()
	if fail {
		return errors.New("injected fsync failure")
	}
	if err := fsync(path); err != nil {
		return err
	}
	r.mu.Lock()
	r.synced[path]++
	r.mu.Unlock()
	return nil
}

func (r *recorder) count(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.synced[path]
}

// writeObjects writes n objects with a content type (so each has an
// .attrs sidecar) and returns their keys.
func writeObjects(t *testing.T, b *Bucket, n int) []string {
	t.Helper()
	var keys []string
	for i := range n {
		key := fmt.Sprintf("0691e72f-799b-7efd-8000-%012d/content", i)
		if err := b.WriteAll(context.Background(), key, []byte("payload"), &blob.WriterOptions{ContentType: "text/plain"}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	return keys
}

// openRecorded opens a file bucket whose fsyncs go through a new
// recorder and writes n objects to it; the bucket is closed after the test.
func openRecorded(t *testing.T, n int) (*Bucket, *recorder, []string) {
	t.Helper()
	b, err := Open(context.Background(), "file://"+filepath.ToSlash(t.TempDir()), "documents")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	r := newRecorder()
	b.SetFsync(r.fsync)
	return b, r, writeObjects(t, b, n)
}

// syncAll calls Sync for keys[0] first and, while the recorder holds that
// first batch's first fsync, for every other key, releasing the hold once
// they are all queued; it returns each key's error.
func syncAll(t *testing.T, b *Bucket, r *recorder, keys []string, after func(key string, err error)) {
	t.Helper()
	var wg sync.WaitGroup
	for i, key := range keys {
		wg.Go(func() {
			err := b.Sync(key)
			after(key, err)
		})
		if i == 0 {
			<-r.entered // the first batch (keys[0] alone) is running
		}
	}
	for len(b.sync.reqs) < len(keys)-1 {
		runtime.Gosched()
	}
	close(r.hold)
	wg.Wait()
}

// Concurrent Syncs share fsyncs: with one batch running and 19 callers
// queued behind it, the bucket's directory is synced twice (once per
// batch), not 20 times, and every Sync returns only once its file, its
// sidecar, its directory and the bucket's directory have been synced.
func TestConcurrentSyncsShareOneBatch(t *testing.T) {
	b, r, keys := openRecorded(t, 20)
	var mu sync.Mutex
	var problems []string
	syncAll(t, b, r, keys, func(key string, err error) {
		path := filepath.Join(b.dir, filepath.FromSlash(key))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", key, err))
			return
		}
		for _, p := range []string{path, path + ".attrs", filepath.Dir(path), b.dir} {
			if r.count(p) == 0 {
				problems = append(problems, fmt.Sprintf("%s acknowledged before %s was synced", key, p))
			}
		}
	})
	if len(problems) > 0 {
		t.Fatal(strings.Join(problems, "\n"))
	}
	if n := r.count(b.dir); n != 2 {
		t.Fatalf("bucket directory synced %d times for 20 concurrent Syncs; want 2 (one per batch)", n)
	}
	for _, key := range keys {
		if n := r.count(filepath.Join(b.dir, filepath.FromSlash(key))); n != 1 {
			t.Fatalf("%s synced %d times; want 1", key, n)
		}
	}
}

// A failure of the shared sync fails every caller of its batch, not only
// the one whose path failed: none of them may be told its object is
// durable. The batch before it and the Syncs after it are unaffected.
func TestASharedSyncFailureFailsEveryCallerOfTheBatch(t *testing.T) {
	b, r, keys := openRecorded(t, 20)
	// The second batch (keys 1..19) fails on one object's directory.
	bad := filepath.Dir(filepath.Join(b.dir, filepath.FromSlash(keys[7])))
	r.fail = func(p string) bool { return p == bad }
	var mu sync.Mutex
	errs := map[string]error{}
	syncAll(t, b, r, keys, func(key string, err error) {
		mu.Lock()
		errs[key] = err
		mu.Unlock()
	})
	if errs[keys[0]] != nil {
		t.Fatalf("the first batch failed: %v", errs[keys[0]])
	}
	for _, key := range keys[1:] {
		if errs[key] == nil {
			t.Errorf("%s acknowledged although its batch's sync of %s failed", key, bad)
		}
	}
	r.mu.Lock()
	r.fail = func(string) bool { return false }
	r.mu.Unlock()
	if err := b.Sync(keys[3]); err != nil {
		t.Fatalf("a Sync after the failure: %v", err)
	}
}

func TestSyncOnAClosedBucketFails(t *testing.T) {
	b, err := Open(context.Background(), "file://"+filepath.ToSlash(t.TempDir()), "documents")
	if err != nil {
		t.Fatal(err)
	}
	keys := writeObjects(t, b, 1)
	b.Close()
	if err := b.Sync(keys[0]); !errors.Is(err, errClosed) {
		t.Fatalf("Sync after Close: %v; want %v", err, errClosed)
	}
}

// TestPingOfAFileBucketDoesNotReadItsDirectory: readiness probes run every
// few seconds, and a file bucket holds a directory per document. Ping
// must not list it (fileblob's IsAccessible did: 1.64 GB of the heap at a
// million documents), so its allocations do not grow with the entries;
// it still fails once the directory is gone.
func TestPingOfAFileBucketDoesNotReadItsDirectory(t *testing.T) {
	ctx := context.Background()
	b, base := fileBucket(t)
	for i := range 5000 {
		if err := os.Mkdir(filepath.Join(base, "documents", fmt.Sprintf("doc-%05d", i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(10, func() {
		if err := b.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 50 {
		t.Fatalf("Ping of a bucket of 5,000 entries made %.0f allocations: it reads the directory", allocs)
	}
	if err := os.RemoveAll(filepath.Join(base, "documents")); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx); err == nil {
		t.Fatal("Ping of a removed bucket directory succeeded")
	}
}

// A WriteUnsynced that fails leaves no sidecar without its object: a
// sidecar alone is a file no listing shows, so no sweeper would remove it.
// (The content file is written first; here it cannot be, as a directory
// holds its name.)
func TestAFailedWriteUnsyncedLeavesNoLoneSidecar(t *testing.T) {
	ctx := context.Background()
	b, dir := fileBucket(t)
	path := filepath.Join(dir, "documents", "0196-bulk", "content")
	if err := os.MkdirAll(path, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteUnsynced(ctx, "0196-bulk/content", []byte("x"), "text/plain"); err == nil {
		t.Fatal("WriteUnsynced over a directory succeeded")
	}
	if _, err := os.Stat(path + ".attrs"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a sidecar was left without its object: %v", err)
	}
}

// fileBucket is a "documents" bucket in a file:// directory of its own,
// closed when the test ends; dir is the directory.
func fileBucket(t *testing.T) (b *Bucket, dir string) {
	t.Helper()
	dir = t.TempDir()
	b, err := Open(context.Background(), "file://"+filepath.ToSlash(dir), "documents")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, dir
}
