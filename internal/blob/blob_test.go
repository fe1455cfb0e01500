package blob

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

func TestBadURLsAreClearErrors(t *testing.T) {
	for _, u := range []string{"ftp://x", "::nope", "gs"} {
		if _, err := Open(context.Background(), u, "documents"); err == nil {
			t.Errorf("%q: no error", u)
		}
	}
}
