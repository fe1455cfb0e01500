package document

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// syncLog is a bucket fsync that records what it synced and can fail.
type syncLog struct {
	mu     sync.Mutex
	synced []string
	fail   bool
}

func (l *syncLog) fsync(path string) error {
	l.mu.Lock()
	fail := l.fail
	l.mu.Unlock()
	if fail {
		return errors.New("injected fsync failure")
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	l.mu.Lock()
	l.synced = append(l.synced, filepath.ToSlash(path))
	l.mu.Unlock()
	return nil
}

// A create is acknowledged only once its content, the content's sidecar,
// the directory entry of the content and that of its directory have all
// been synced: a power loss after the 201 cannot take them.
func TestCreateIsAcknowledgedOnlyAfterItsContentIsSynced(t *testing.T) {
	e := newEnv(t)
	l := &syncLog{}
	e.bucket.SetFsync(l.fsync)
	var wg sync.WaitGroup
	docs := make([]Document, 8)
	for i := range docs {
		wg.Go(func() { docs[i] = e.create(t, "Durable", strings.Repeat("x", 1024)) })
	}
	wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range docs {
		var content string
		for _, p := range l.synced {
			if strings.HasSuffix(p, "/"+ContentKey(d.ID)) {
				content = p
			}
		}
		if content == "" {
			t.Fatalf("document %s acknowledged; its content was never synced (synced: %v)", d.ID, l.synced)
		}
		for _, want := range []string{content + ".attrs", filepath.ToSlash(filepath.Dir(content)), filepath.ToSlash(filepath.Dir(filepath.Dir(content)))} {
			if !slices.Contains(l.synced, want) {
				t.Errorf("document %s acknowledged before %s was synced", d.ID, want)
			}
		}
	}
}

// When the shared sync fails, every create waiting on it answers 503 and
// leaves neither a row nor its content behind: nothing is acknowledged
// that a power loss could take.
func TestAFailedContentSyncFailsTheCreate(t *testing.T) {
	e := newEnv(t)
	l := &syncLog{fail: true}
	e.bucket.SetFsync(l.fsync)
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() {
			resp := e.do(t, "POST", "/documents", map[string]any{"title": "Lost", "content": "x", "created_by": "john.doe@company.com"}, nil)
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusServiceUnavailable {
			t.Errorf("create %d answered %d; want 503", i, c)
		}
	}
	var rows int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM documents.documents").Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d rows (%v) after failed syncs; want 0", rows, err)
	}
	it := e.bucket.List(nil)
	if obj, err := it.Next(context.Background()); err == nil {
		t.Fatalf("content %s left behind by a failed create", obj.Key)
	}
}
