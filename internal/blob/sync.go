package blob

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// Sync makes the object at key durable before the caller records it
// elsewhere (a database row pointing at it). S3 acknowledges a write only
// once it is durable, so there it does nothing. gocloud's fileblob writes a
// temp file and its ".attrs" sidecar and renames the temp file without
// fsync; here the file, its sidecar, its directory and the directory above
// are fsynced before Sync returns nil, so a power loss after the caller's
// commit cannot leave the row pointing at nothing (or at content whose
// sidecar, which every read opens, came back empty).
//
// The syncs are shared (group commit): while one batch of syncs runs, the
// keys of other callers queue, and the next batch syncs all of them at
// once, each directory once however many of the batch's objects it holds.
// The bucket's own directory, the parent of every object's directory, is
// thus synced once per batch rather than once per object. A failure of any
// sync in a batch fails the Sync of every caller in it: a directory fsync
// that failed may have lost any of its entries, and after a failed fsync
// Linux may already have dropped the dirty pages it did not write, so no
// caller of that batch can be told its object is durable.
func (b *Bucket) Sync(key string) error {
	if b.sync == nil {
		return nil
	}
	return b.sync.sync(filepath.Join(b.dir, filepath.FromSlash(key)))
}

// SyncKeys makes the objects at keys durable at once, as one batch of
// Sync's group commit run by the caller (the content journal's flusher,
// which has a batch already and no request waiting on it): every file,
// sidecar and directory of the batch synced once, in parallel. Nothing on
// S3. A failure of any of them fails the whole batch (see Sync).
func (b *Bucket) SyncKeys(keys []string) error {
	if b.sync == nil || len(keys) == 0 {
		return nil
	}
	batch := make([]*syncReq, len(keys))
	for i, k := range keys {
		batch[i] = &syncReq{path: filepath.Join(b.dir, filepath.FromSlash(k))}
	}
	return b.sync.flush(batch)
}

// NeedsSync says whether writes to the bucket are durable only after Sync
// (a file bucket): S3 acknowledges a write once it is durable.
func (b *Bucket) NeedsSync() bool { return b.sync != nil }

// SetFsync replaces the function that syncs one path (fsync of the file or
// directory by default): tests count and fail syncs through it. It must be
// called before the bucket is used.
func (b *Bucket) SetFsync(f func(path string) error) {
	if b.sync != nil {
		b.sync.fsync = f
	}
}

// Close stops the syncer (Syncs in a running batch still get their
// answer; later ones fail) and closes the bucket.
func (b *Bucket) Close() error {
	if b.sync != nil {
		b.sync.close()
	}
	return b.Bucket.Close()
}

// errClosed answers a Sync on a closed bucket.
var errClosed = errors.New("blob: bucket closed")

// maxBatch bounds one batch, so that a flood of callers is answered in
// rounds and no batch waits on thousands of fsyncs.
const maxBatch = 256

// syncParallelism is how many fsyncs of one batch run at once (each holds
// a thread): on ext4 concurrent fsyncs of inodes changed in one journal
// transaction wait on one journal commit instead of one each, and the
// device sees their writes together.
const syncParallelism = 64

// syncer is one goroutine that takes every path queued since its last
// batch and syncs them together, one batch at a time.
type syncer struct {
	fsync func(path string) error
	reqs  chan *syncReq
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

type syncReq struct {
	path string
	err  error
	done chan struct{}
}

func newSyncer(fsync func(string) error) *syncer {
	s := &syncer{fsync: fsync, reqs: make(chan *syncReq, maxBatch), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *syncer) close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

// sync queues path and waits for the batch that synced it.
func (s *syncer) sync(path string) error {
	r := &syncReq{path: path, done: make(chan struct{})}
	select {
	case s.reqs <- r:
	case <-s.done:
		return errClosed
	}
	select {
	case <-r.done:
		return r.err
	case <-s.done:
		// run answers every request of the batch it took before it
		// returns; a request it never took is not synced.
		select {
		case <-r.done:
			return r.err
		default:
			return errClosed
		}
	}
}

func (s *syncer) run() {
	defer close(s.done)
	for {
		var batch []*syncReq
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		case <-s.stop:
			return
		}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		err := s.flush(batch)
		for _, r := range batch {
			r.err = err
			close(r.done)
		}
	}
}

// flush syncs a batch: every object file, its sidecar, its directory and
// the directories above, each once, all at once. They need no order among
// them: no caller is answered before all of them are synced, and a crash in
// the middle leaves at worst an object that no row points at (its caller
// was not answered), which the sweeper removes. Run together, their fsyncs
// wait on one journal commit of the file system, not one per step.
func (s *syncer) flush(batch []*syncReq) error {
	seen := map[string]bool{}
	var paths []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	for _, r := range batch {
		dir := filepath.Dir(r.path)
		add(filepath.Dir(dir))
		add(dir)
		add(r.path)
		add(r.path + attrsExt)
	}
	var g errgroup.Group
	g.SetLimit(syncParallelism)
	for _, p := range paths {
		g.Go(func() error {
			err := s.fsync(p)
			if err != nil && strings.HasSuffix(p, attrsExt) && errors.Is(err, os.ErrNotExist) {
				return nil // an object written without attributes has no sidecar
			}
			if err != nil {
				return fmt.Errorf("sync %s: %w", p, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// attrsExt is the suffix of fileblob's sidecar file of an object's
// attributes (content type, MD5), which every read of the object opens.
const attrsExt = ".attrs"

func fsync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// SyncAll makes every object written to the bucket so far durable at once,
// with one syncfs(2) of the file system holding the bucket's directory
// (nothing on S3, which acknowledges only durable writes). It is for bulk
// writers (the benchmark corpus loader) that write thousands of objects
// before recording any of them: one file system sync instead of four
// fsyncs per object. It also flushes whatever else is dirty on that file
// system, so it is no replacement for Sync on a request path.
func (b *Bucket) SyncAll() error {
	if b.dir == "" {
		return nil
	}
	f, err := os.Open(b.dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("sync %s: %w", b.dir, err)
	}
	return nil
}

// WriteUnsynced writes a new object for a bulk writer that makes its
// writes durable together with SyncAll before anything refers to them.
// On a file bucket it creates the object and its attributes sidecar in
// fileblob's layout directly (TestWriteUnsyncedReadsBackThroughFileblob
// holds it to that layout): the object's directory, the file, the
// sidecar, without fileblob's temporary file and rename, which only
// matter while a reader may already look for the object, and at about
// half of fileblob's system calls, which are what a bulk load of small
// objects spends its time on. An existing object is an error. Elsewhere
// it is WriteAll.
func (b *Bucket) WriteUnsynced(ctx context.Context, key string, data []byte, contentType string) error {
	if b.dir == "" {
		return b.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: contentType})
	}
	path := filepath.Join(b.dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		return err
	}
	sum := md5.Sum(data)
	attrs, err := json.Marshal(fileAttrs{ContentType: contentType, MD5: sum[:]})
	if err != nil {
		return err
	}
	// The file before its sidecar: a crash between the two leaves an
	// object the bucket lists (and the orphan sweeper can delete), where a
	// sidecar alone would be a file no listing shows.
	if err := writeNew(path, data); err != nil {
		return err
	}
	return writeNew(path+attrsExt, attrs)
}

// fileAttrs is the part of fileblob's sidecar (its xattrs) that a new
// object of WriteUnsynced has: the rest is empty.
type fileAttrs struct {
	ContentType string `json:"user.content_type"`
	MD5         []byte `json:"md5"`
}

func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
