// Package testenv starts the real servers a test package needs, once per
// package from TestMain, in a temp dir, and hands each test an isolated
// migrated database.
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//	func TestX(t *testing.T) { url := testenv.Database(t) ... }
package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/extract"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/postgres"
)

var (
	dir   string
	pg    *localstack.Postgres
	redis *localstack.Redis
	dbSeq atomic.Int64
)

// Main starts PostgreSQL (wal_level=logical) and Redis in a temp dir, runs
// the package's tests and stops both.
func Main(m *testing.M) {
	// A test binary re-executed as an extraction child (a test running
	// the extractor) does its one job and exits here, before any server
	// starts.
	extract.ChildMain()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// Tests read what they assert, not go-redis's or gRPC's chatter about
	// the outages they cause.
	logging.Libraries(logging.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	if dir, err = os.MkdirTemp("", "docstream-test-*"); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	// PostgreSQL runs as the postgres OS user when we are root: it must be
	// able to traverse the temp dir.
	_ = os.Chmod(dir, 0o755)
	defer os.RemoveAll(dir)
	// Tests throw their data away, so fsync is off unless
	// DOCSTREAM_TEST_DURABLE=1 (make bench sets it: figures are for a
	// durable server).
	durable := os.Getenv("DOCSTREAM_TEST_DURABLE") == "1"
	if pg, err = localstack.StartPostgres(ctx, dir+"/pg", localstack.PostgresOptions{Durable: durable}); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: postgres:", err)
		return 1
	}
	defer pg.Stop()
	if redis, err = localstack.StartRedis(ctx, dir+"/redis", 0); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: redis:", err)
		return 1
	}
	defer redis.Stop()
	return m.Run()
}

// Dir is the package's temp dir (for more servers a test starts itself).
func Dir() string { return dir }

// Postgres is the package's cluster.
func Postgres() *localstack.Postgres { return pg }

// Redis is the package's redis-server.
func Redis() *localstack.Redis { return redis }

// Database creates a fresh database with the schema applied and returns its
// URL. Nothing drops it: it lives in the package's throwaway cluster, which
// Main removes with its directory when the tests end.
func Database(t testing.TB) string {
	t.Helper()
	if pg == nil {
		t.Fatal("testenv.Database needs testenv.Main in TestMain")
	}
	ctx := context.Background()
	name := fmt.Sprintf("t%d_%s", dbSeq.Add(1), sanitize(t.Name()))
	url, err := pg.CreateDatabase(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.Migrate(ctx, url, logging.Discard()); err != nil {
		t.Fatal(err)
	}
	return url
}

// TempDir returns a temp dir that other OS users (postgres) can traverse.
func TempDir(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	for p := d; strings.HasPrefix(p, os.TempDir()) && p != os.TempDir(); p = parent(p) {
		_ = os.Chmod(p, 0o755)
	}
	return d
}

func parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out) > 40 {
		out = out[:40]
	}
	return out
}

// CPUTime is the CPU time (user + system) this process used so far: a
// benchmark's CPU per operation is what its rate would be on free cores,
// whatever else the machine runs.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
