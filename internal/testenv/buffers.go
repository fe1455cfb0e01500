package testenv

import (
	"bytes"
	"context"
	"io"
	"slices"
	"sync"
	"testing"

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
