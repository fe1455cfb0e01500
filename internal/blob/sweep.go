package blob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/spf13/pflag"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/time/rate"
)

// SweepConfig tunes a Sweeper.
type SweepConfig struct {
	// Interval between sweeps (each instance adds up to 10 % jitter, so
	// several instances do not sweep in step); 0 or less: no sweeping.
	Interval time.Duration
	// Grace is the age below which an object is never removed, whatever
	// its row says: a create writes content before its row and must not
	// lose it to a sweep in between. The default, 24 h, is above the
	// longest legal upload (100 MiB at the 4 KiB/s minimum body rate: 7.1 h;
	// on S3 a multipart object is dated from its first part).
	Grace    time.Duration
	PageSize int     // keys per listing page
	Rate     float64 // listing pages per second
}

// DefaultSweepConfig is what the flags default to.
func DefaultSweepConfig() SweepConfig {
	return SweepConfig{Interval: time.Hour, Grace: 24 * time.Hour, PageSize: 1000, Rate: 5}
}

// RegisterFlags binds c to --<prefix>-sweep-* flags.
func (c *SweepConfig) RegisterFlags(fs *pflag.FlagSet, prefix string) {
	fs.DurationVar(&c.Interval, prefix+"-sweep-interval", c.Interval, "how often objects of the "+prefix+" bucket with no row are removed (0: never)")
	fs.DurationVar(&c.Grace, prefix+"-sweep-grace", c.Grace, "objects of the "+prefix+" bucket younger than this are never swept (at least 1m)")
	fs.IntVar(&c.PageSize, prefix+"-sweep-page-size", c.PageSize, "keys per listing page when sweeping the "+prefix+" bucket (1-1000)")
	fs.Float64Var(&c.Rate, prefix+"-sweep-rate", c.Rate, "listing pages per second when sweeping the "+prefix+" bucket (> 0)")
}

// Validate refuses settings that could remove content of a create in
// progress or hammer the object store, naming the flag.
func (c *SweepConfig) Validate(prefix string) error {
	switch {
	case c.Interval <= 0:
		return nil
	case c.Grace < time.Minute:
		return fmt.Errorf("--%s-sweep-grace must be at least 1m, got %v", prefix, c.Grace)
	case c.PageSize < 1 || c.PageSize > 1000:
		return fmt.Errorf("--%s-sweep-page-size must be 1-1000, got %d", prefix, c.PageSize)
	case c.Rate <= 0:
		return fmt.Errorf("--%s-sweep-rate must be > 0, got %v", prefix, c.Rate)
	}
	return nil
}

// Ownership says which row owns an object of a bucket.
type Ownership struct {
	// Owner returns the id of the row owning key, or "" for a key that is
	// not the service's (never removed).
	Owner func(key string) string
	// Existing returns which of ids have a row. It is asked about a page of
	// ids at a time.
	Existing func(ctx context.Context, ids []string) (map[string]bool, error)
}

// FirstSegmentUUID is the Owner of buckets keyed by a UUID, alone or as the
// first path segment: "{id}", "{id}/content", "{id}/text", "{id}/thumb.png"
// (and a crashed write's "{id}/content.<n>.tmp") belong to row {id}.
func FirstSegmentUUID(key string) string {
	first, _, _ := strings.Cut(key, "/")
	id, err := uuid.Parse(first)
	if err != nil || id.String() != first {
		return ""
	}
	return first
}

var (
	sweptObjects = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_blob_swept_objects_total",
		Help: "Objects the blob sweeper removed because no row owns them (older than the grace period), by bucket.",
	}, []string{"bucket"})
	sweptBytes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_blob_swept_bytes_total",
		Help: "Bytes of the objects the blob sweeper removed, by bucket.",
	}, []string{"bucket"})
	sweptDirs = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_blob_swept_directories_total",
		Help: "Empty directories the blob sweeper removed from file:// buckets, by bucket.",
	}, []string{"bucket"})
	sweepRuns = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "docstream_blob_sweeps_total",
		Help: "Completed sweeps by bucket and result (ok, failed).",
	}, []string{"bucket", "result"})
)

// Sweeper removes objects no row owns: the content of creates that
// crashed between writing the object and committing the row, objects
// whose delete failed after the row went, objects of rows removed by a
// cascade. In file:// buckets it also removes the empty directories
// deletes leave behind. Several instances may sweep one bucket: every
// removal is idempotent.
type Sweeper struct {
	bucket *Bucket
	name   string
	own    Ownership
	cfg    SweepConfig
	log    *slog.Logger
}

// SweepReport is what one sweep did.
type SweepReport struct {
	Listed, Removed, Dirs int
	Bytes                 int64
}

// NewSweeper sweeps bucket (called name in metrics and logs).
func NewSweeper(bucket *Bucket, name string, own Ownership, cfg SweepConfig, log *slog.Logger) *Sweeper {
	return &Sweeper{bucket: bucket, name: name, own: own, cfg: cfg, log: log.With("bucket", name)}
}

// Run sweeps every Interval (jittered) until ctx is done; a failed sweep
// is logged and retried at the next tick. Returns nil.
func (s *Sweeper) Run(ctx context.Context) error {
	if s.cfg.Interval <= 0 {
		return nil
	}
	for {
		wait := s.cfg.Interval + time.Duration(rand.Int64N(int64(s.cfg.Interval/10)+1))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		if _, err := s.Sweep(ctx, time.Now().Add(-s.cfg.Grace)); err != nil && ctx.Err() == nil {
			s.log.Warn("blob sweep failed; retrying at the next interval", "err", err)
		}
	}
}

// Sweep removes every object modified before cutoff whose owning row does
// not exist, listing a page at a time at the configured rate, then (file://
// only) the empty directories last modified before cutoff.
func (s *Sweeper) Sweep(ctx context.Context, cutoff time.Time) (SweepReport, error) {
	var rep SweepReport
	err := s.sweepObjects(ctx, cutoff, &rep)
	if err == nil {
		err = s.sweepDirs(cutoff, &rep)
	}
	result := "ok"
	if err != nil {
		result = "failed"
	}
	sweepRuns.WithLabelValues(s.name, result).Inc()
	if rep.Removed > 0 || rep.Dirs > 0 {
		s.log.Info("blob sweep removed unowned content", "objects", rep.Removed, "bytes", rep.Bytes, "dirs", rep.Dirs, "listed", rep.Listed)
	}
	return rep, err
}

func (s *Sweeper) sweepObjects(ctx context.Context, cutoff time.Time, rep *SweepReport) error {
	pageSize := s.cfg.PageSize
	if pageSize <= 0 {
		pageSize = 1000
	}
	limit := rate.NewLimiter(rate.Limit(max(s.cfg.Rate, 0.001)), 1)
	token := blob.FirstPageToken
	for len(token) > 0 {
		if err := limit.Wait(ctx); err != nil {
			return err
		}
		page, next, err := s.bucket.ListPage(ctx, token, pageSize, nil)
		if err != nil {
			return fmt.Errorf("list %s: %w", s.name, err)
		}
		token = next
		rep.Listed += len(page)
		candidates := map[string][]*blob.ListObject{} // owner id → its old objects
		for _, o := range page {
			if o.IsDir || !o.ModTime.Before(cutoff) {
				continue
			}
			if id := s.own.Owner(o.Key); id != "" {
				candidates[id] = append(candidates[id], o)
			}
		}
		if len(candidates) == 0 {
			continue
		}
		ids := make([]string, 0, len(candidates))
		for id := range candidates {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		exists, err := s.own.Existing(ctx, ids)
		if err != nil {
			return fmt.Errorf("sweep %s: look up owners: %w", s.name, err)
		}
		for _, id := range ids {
			if exists[id] {
				continue
			}
			for _, o := range candidates[id] {
				if err := s.bucket.Remove(ctx, o.Key); err != nil {
					return fmt.Errorf("sweep %s: delete %s: %w", s.name, o.Key, err)
				}
				s.log.Info("blob sweep: removed object with no row", "key", o.Key, "size", o.Size, "modified", o.ModTime)
				rep.Removed++
				rep.Bytes += o.Size
				sweptObjects.WithLabelValues(s.name).Inc()
				sweptBytes.WithLabelValues(s.name).Add(float64(o.Size))
			}
		}
	}
	return nil
}

// sweepDirs removes, deepest first, the empty directories of a file://
// bucket last modified before cutoff. The age rule keeps a directory a
// create has just made for its content (keys are new ids, so nothing
// writes into an old empty directory). S3 has no directories.
func (s *Sweeper) sweepDirs(cutoff time.Time, rep *SweepReport) error {
	root := s.bucket.dir
	if root == "" {
		return nil
	}
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() && path != root {
			dirs = append(dirs, path)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sweep %s: walk: %w", s.name, err)
	}
	// Deepest first, so a parent emptied by its children goes too.
	slices.SortFunc(dirs, func(a, b string) int {
		return strings.Count(b, string(filepath.Separator)) - strings.Count(a, string(filepath.Separator))
	})
	for _, d := range dirs {
		if removeEmptyDir(d, cutoff) {
			rep.Dirs++
			sweptDirs.WithLabelValues(s.name).Inc()
		}
	}
	return nil
}

// removeEmptyDir removes dir if it is empty and was last modified before
// cutoff (zero cutoff: any age).
func removeEmptyDir(dir string, cutoff time.Time) bool {
	fi, err := os.Stat(dir)
	if err != nil || (!cutoff.IsZero() && !fi.ModTime().Before(cutoff)) {
		return false
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) > 0 {
		return false
	}
	return os.Remove(dir) == nil
}

// Remove deletes the object at key and, in a file:// bucket, the
// directories above it that it leaves empty, so deletes leave no empty
// directories behind. A missing object is not an error.
func (b *Bucket) Remove(ctx context.Context, key string) error {
	if err := b.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return err
	}
	root := b.dir
	if root == "" {
		return nil
	}
	for dir := filepath.Dir(filepath.Join(root, filepath.FromSlash(key))); dir != root && strings.HasPrefix(dir, root); dir = filepath.Dir(dir) {
		if !removeEmptyDir(dir, time.Time{}) {
			break
		}
	}
	return nil
}
