package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob"
)

// SyncBuffer is a bytes.Buffer that a process's or a server's goroutines
// may write to while the test reads it (a log, a child's output).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Keys lists every object key of a bucket, sorted: what a test asserts
// was (not) written.
func Keys(t testing.TB, b interface {
	List(*blob.ListOptions) *blob.ListIterator
}) []string {
	t.Helper()
	var out []string
	it := b.List(nil)
	for {
		o, err := it.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o.Key)
	}
	slices.Sort(out)
	return out
}

// SlowBody is a request body that yields Left zero bytes in chunks of
// Chunk, pausing before each: an upload that is slow but steady.
type SlowBody struct {
	Left, Chunk int
	Pause       time.Duration
}

func (b *SlowBody) Read(p []byte) (int, error) {
	if b.Left == 0 {
		return 0, io.EOF
	}
	time.Sleep(b.Pause)
	n := min(len(p), b.Chunk, b.Left)
	clear(p[:n])
	b.Left -= n
	return n, nil
}

// SlowUpload POSTs size bytes to url at a slow but steady 4 MiB/s (32 KiB
// every 8 ms), with a Content-Length, and returns the answer's status and
// its "bytes" field: how much the receiving fake counted.
func SlowUpload(t testing.TB, url string, size int) (status int, received int64) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, &SlowBody{Left: size, Chunk: 32 << 10, Pause: 8 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(size)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct{ Bytes int64 }
	_ = json.NewDecoder(resp.Body).Decode(&got)
	return resp.StatusCode, got.Bytes
}
