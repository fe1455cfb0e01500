package testenv

import (
	"bytes"
	"context"
	"io"
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
