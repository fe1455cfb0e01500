package extractor

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/extract"
	"github.com/docstream/docstream/internal/httpx"
)

// Config tunes the extractor. Start from DefaultConfig; Validate refuses a
// zero where zero has no meaning.
type Config struct {
	// Addr serves the extractor's routes, /health/* and /metrics.
	Addr  string
	Group string // durable consumer group on cdc.documents
	// Workers is how many extractions run at once in this process (each a
	// child process, niced).
	Workers int
	// Limits bound each extraction (see extract.Limits).
	Limits extract.Limits
	// Languages are tesseract's -l (e.g. "eng+deu"); each needs its
	// tesseract-ocr-<lang> package.
	Languages string
	ThumbSize int // longest side of a thumbnail, pixels
	// Lease is how long a claimed extraction stays its worker's without a
	// heartbeat: the worker renews it every Lease/3 while the extraction
	// runs, so a worker that died (killed, its machine gone) loses the row
	// to another worker within a Lease, however long extractions take.
	Lease time.Duration
	// Poll is how often an idle worker looks for queued work (the consumer
	// also wakes the workers of its process at once).
	Poll time.Duration
	// RetryMax caps the backoff of a transient failure (storage or database
	// out of reach, a child killed from outside); the first retry waits a
	// second.
	RetryMax time.Duration
	// TempDir holds each extraction's copy of the content and its output
	// ("": the system's).
	TempDir string
	// Exe is the binary re-executed as the extraction child ("": this one).
	Exe string

	Admission *httpx.Admission // set by the app
	// Auth verifies each request's credential and puts its principal on
	// the context (nil: open, everyone anonymous). In required mode the
	// document routes apply the document service's decision
	// (document.Decide: view for the thumbnail and the status, edit for a
	// re-run) and the bulk routes are for admins. Set by the app.
	Auth *auth.Authenticator
}

// DefaultConfig is the extractor's configuration when nothing is set: the
// one place its defaults are written.
func DefaultConfig() Config {
	return Config{
		Addr:    ":8007",
		Group:   "extractor",
		Workers: 2,
		Limits: extract.Limits{
			Timeout:   60 * time.Second,
			CPU:       60 * time.Second,
			Memory:    1 << 30,
			OutputCap: 1 << 20,
			MaxPages:  500,
			OCRPages:  20,
			MaxPixels: 50_000_000,
			MaxZip:    256 << 20,
			MaxRatio:  100,
			MaxFiles:  10000,
			Nice:      10,
		},
		Languages: "eng",
		ThumbSize: 256,
		Lease:     30 * time.Second,
		Poll:      time.Second,
		RetryMax:  5 * time.Minute,
	}
}

// RegisterFlags registers the extractor target's flags, defaulting to c's
// values.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "extractor-addr", c.Addr, "extractor listen address (thumbnails, extraction status and re-runs, /health/*, /metrics)")
	fs.StringVar(&c.Group, "extractor-group", c.Group, "durable consumer group on cdc.documents; extractors in one group share the work (not empty)")
	fs.IntVar(&c.Workers, "extractor-workers", c.Workers, "extractions run at once by this process, each a niced child process (1-64)")
	fs.DurationVar(&c.Limits.Timeout, "extractor-timeout", c.Limits.Timeout, "wall-clock limit of one extraction; then its process group is killed and it fails with reason timeout (must be > 0)")
	fs.DurationVar(&c.Limits.CPU, "extractor-cpu", c.Limits.CPU, "CPU time limit of each extraction process (RLIMIT_CPU; must be > 0)")
	fs.Int64Var(&c.Limits.Memory, "extractor-memory", c.Limits.Memory, "address-space limit in bytes of each extraction tool (RLIMIT_AS; at least 64 MiB)")
	fs.Int64Var(&c.Limits.OutputCap, "extractor-text-cap", c.Limits.OutputCap, "bytes of text kept per document; more is cut and the extraction says truncated (at least 1)")
	fs.IntVar(&c.Limits.MaxPages, "extractor-max-pages", c.Limits.MaxPages, "PDF pages read per document; more are left out and the extraction says truncated (at least 1)")
	fs.IntVar(&c.Limits.OCRPages, "extractor-ocr-pages", c.Limits.OCRPages, "pages of a scanned (image-only) PDF read by OCR (0: none)")
	fs.Int64Var(&c.Limits.MaxPixels, "extractor-max-pixels", c.Limits.MaxPixels, "width×height an image may claim in its header; larger ones fail with reason image_too_large (at least 1)")
	fs.Int64Var(&c.Limits.MaxZip, "extractor-max-zip-bytes", c.Limits.MaxZip, "total uncompressed bytes an office file's zip entries may declare (zip bomb; at least 1)")
	fs.Int64Var(&c.Limits.MaxRatio, "extractor-max-zip-ratio", c.Limits.MaxRatio, "compression ratio above which a zip entry over 1 MiB is refused (zip bomb; at least 2)")
	fs.IntVar(&c.Limits.MaxFiles, "extractor-max-zip-entries", c.Limits.MaxFiles, "entries an office file's zip may have (at least 1)")
	fs.IntVar(&c.Limits.Nice, "extractor-nice", c.Limits.Nice, "niceness of the extraction processes (0-19), so extraction yields to serving")
	fs.StringVar(&c.Languages, "extractor-ocr-languages", c.Languages, "tesseract languages, joined by + (e.g. eng+deu); each needs its tesseract-ocr-<lang> package")
	fs.IntVar(&c.ThumbSize, "extractor-thumb-size", c.ThumbSize, "longest side of a thumbnail in pixels (16-2048)")
	fs.DurationVar(&c.Lease, "extractor-lease", c.Lease, "how long a claimed extraction stays its worker's without a heartbeat (renewed every third of it); then another worker takes it over (at least 3s)")
	fs.StringVar(&c.TempDir, "extractor-tmp-dir", c.TempDir, "directory for each extraction's copy of the content (default: the system's temporary directory)")
}

var langRe = regexp.MustCompile(`^[a-z_]{3,20}(\+[a-z_]{3,20})*$`)

// Validate refuses a configuration the extractor cannot run with, naming
// the flag.
func (c *Config) Validate() error {
	l := c.Limits
	switch {
	case c.Group == "":
		return errors.New("extractor: --extractor-group must not be empty")
	case c.Workers < 1 || c.Workers > 64:
		return fmt.Errorf("extractor: --extractor-workers must be 1-64, got %d", c.Workers)
	case l.Timeout <= 0:
		return fmt.Errorf("extractor: --extractor-timeout must be > 0, got %v", l.Timeout)
	case l.CPU <= 0:
		return fmt.Errorf("extractor: --extractor-cpu must be > 0, got %v", l.CPU)
	case l.Memory < 64<<20:
		return fmt.Errorf("extractor: --extractor-memory must be at least 64 MiB (67108864), got %d", l.Memory)
	case l.OutputCap < 1:
		return fmt.Errorf("extractor: --extractor-text-cap must be at least 1, got %d", l.OutputCap)
	case l.MaxPages < 1:
		return fmt.Errorf("extractor: --extractor-max-pages must be at least 1, got %d", l.MaxPages)
	case l.OCRPages < 0:
		return fmt.Errorf("extractor: --extractor-ocr-pages must be >= 0, got %d", l.OCRPages)
	case l.MaxPixels < 1:
		return fmt.Errorf("extractor: --extractor-max-pixels must be at least 1, got %d", l.MaxPixels)
	case l.MaxZip < 1:
		return fmt.Errorf("extractor: --extractor-max-zip-bytes must be at least 1, got %d", l.MaxZip)
	case l.MaxRatio < 2:
		return fmt.Errorf("extractor: --extractor-max-zip-ratio must be at least 2, got %d", l.MaxRatio)
	case l.MaxFiles < 1:
		return fmt.Errorf("extractor: --extractor-max-zip-entries must be at least 1, got %d", l.MaxFiles)
	case l.Nice < 0 || l.Nice > 19:
		return fmt.Errorf("extractor: --extractor-nice must be 0-19, got %d", l.Nice)
	case !langRe.MatchString(c.Languages):
		return fmt.Errorf("extractor: --extractor-ocr-languages %q: want tesseract language codes joined by + (e.g. eng+deu)", c.Languages)
	case c.ThumbSize < 16 || c.ThumbSize > 2048:
		return fmt.Errorf("extractor: --extractor-thumb-size must be 16-2048, got %d", c.ThumbSize)
	case c.Lease < 3*time.Second:
		return fmt.Errorf("extractor: --extractor-lease must be at least 3s, got %v", c.Lease)
	case c.Poll <= 0 || c.RetryMax <= 0:
		return errors.New("extractor: poll and retry bounds must be > 0")
	}
	return nil
}
