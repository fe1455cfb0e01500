package nats

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Durability of the embedded server (EmbeddedOptions.Sync).
//
// JetStream acknowledges a message once it is written to its file store,
// and by default fsyncs those files every 2 minutes: an OS crash or power
// loss can lose messages it acknowledged. The CDC engine moves the
// replication slot past an event once the bus acknowledged it, so such an
// event would be lost for good. The embedded bus therefore does not count
// a publish as done before its messages are on disk:
//
//   - SyncBatch (the default): after JetStream has acknowledged the
//     messages of a Publish (or of a PublishAsync's wait), the bus fsyncs
//     the stream files written since the last fsync, once for every publish
//     waiting at that moment (group commit). JetStream writes each message
//     to its block file before acknowledging it (single replica: flush in
//     place), so the fsync covers every message acknowledged so far.
//   - SyncAlways: JetStream fsyncs every message before acknowledging it
//     (nats-server `sync_interval: always`); one fsync per event.
//   - A duration: JetStream's periodic background fsync only (NATS'
//     default is 2m). Fastest; a power loss may lose acknowledged events.
//
// An external server is configured on the server: `sync_interval: always`
// for a single node, or streams with 3 replicas (Options.Replicas), which
// acknowledge once a quorum has stored the message.
const (
	SyncBatch  = "batch"
	SyncAlways = "always"
)

// parseSync validates an EmbeddedOptions.Sync value: SyncBatch (or ""),
// SyncAlways, or a positive duration.
func parseSync(s string) (mode string, interval time.Duration, err error) {
	switch s {
	case "", SyncBatch:
		return SyncBatch, 0, nil
	case SyncAlways:
		return SyncAlways, 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return "", 0, fmt.Errorf("nats: sync %q: want %s, %s or a positive duration", s, SyncBatch, SyncAlways)
	}
	return "interval", d, nil
}

// syncer fsyncs the message blocks of every stream under a JetStream store
// directory, grouping concurrent requests into one pass.
type syncer struct {
	root      string // <StoreDir>/jetstream
	requested atomic.Uint64

	mu     sync.Mutex // one pass at a time; guards the rest
	done   uint64     // every request up to this number is covered
	err    error
	synced map[string]int // msgs dir -> lowest block index that may be dirty
}

func newSyncer(storeDir string) *syncer {
	return &syncer{root: filepath.Join(storeDir, "jetstream"), synced: map[string]int{}}
}

// Sync returns once everything JetStream had written when it was called is
// on disk. A pass that starts after the call covers it, so callers waiting
// together share one pass.
func (s *syncer) Sync() error {
	ticket := s.requested.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done >= ticket {
		return s.err
	}
	upto := s.requested.Load()
	s.err = s.pass()
	s.done = upto
	return s.err
}

// pass fsyncs, in each stream's msgs directory, the blocks written since the
// last pass (the last one, and any created since), and the directory itself
// when a block was created.
func (s *syncer) pass() error {
	dirs, err := filepath.Glob(filepath.Join(s.root, "*", "streams", "*", "msgs"))
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		// Called after JetStream acknowledged a message, so its stream has
		// blocks: their layout must have changed. Say so rather than
		// acknowledge what may not be on disk.
		return fmt.Errorf("nats: no JetStream message blocks under %s (store layout changed?): cannot fsync; use another sync mode", s.root)
	}
	for _, dir := range dirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("nats: sync %s: %w", dir, err)
		}
		from, seen := s.synced[dir]
		top := 0
		for _, e := range ents {
			n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".blk"))
			if err != nil || !strings.HasSuffix(e.Name(), ".blk") {
				continue
			}
			top = max(top, n)
			if n < from {
				continue
			}
			if err := fsync(filepath.Join(dir, e.Name())); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
		if !seen || top > from {
			// New block files: their directory entries must be durable too.
			if err := fsync(dir); err != nil {
				return err
			}
			if !seen {
				if err := fsync(filepath.Dir(dir)); err != nil {
					return err
				}
			}
		}
		s.synced[dir] = top
	}
	return nil
}

func fsync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("nats: fsync %s: %w", path, err)
	}
	return nil
}
