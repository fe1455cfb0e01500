package localstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresOptions configure a local cluster.
type PostgresOptions struct {
	Port     int    // 0: a free port
	Database string // created if missing; default docs_db
	Password string // of the postgres role; default "docstream"
	// Durable keeps fsync on. Tests turn it off: they throw the data away.
	Durable bool
	// MaxSlotWALKeepSize is max_slot_wal_keep_size ("4GB"; "" leaves
	// PostgreSQL's default, unlimited): the most WAL a replication slot may
	// hold back before PostgreSQL invalidates it. The CDC engine warns well
	// before it (docstream_cdc_slot_safe_wal_bytes).
	MaxSlotWALKeepSize string
}

// Postgres is a running local PostgreSQL cluster with wal_level=logical.
type Postgres struct {
	Dir      string
	Port     int
	Database string
	Password string
	proc     *proc
	bin      string
	user     *user.User
	opts     PostgresOptions
}

var pgBinDirs = []string{"/usr/lib/postgresql/*/bin"}

// StartPostgres initialises dataDir on first use and starts the server. Data
// in dataDir is kept, so a restart sees the same documents.
func StartPostgres(ctx context.Context, dataDir string, opts PostgresOptions) (*Postgres, error) {
	if opts.Database == "" {
		opts.Database = "docs_db"
	}
	if opts.Password == "" {
		opts.Password = "docstream"
	}
	initdb, err := findBinary("initdb", pgBinDirs...)
	if err != nil {
		return nil, err
	}
	postgres, err := findBinary("postgres", pgBinDirs...)
	if err != nil {
		return nil, err
	}
	u, err := serviceUser()
	if err != nil {
		return nil, err
	}
	dir, err := ownedDir(dataDir, u)
	if err != nil {
		return nil, fmt.Errorf("postgres data dir: %w", err)
	}
	pg := &Postgres{Dir: dir, Database: opts.Database, Password: opts.Password, bin: postgres, user: u, opts: opts}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		if err := pg.initdb(ctx, initdb); err != nil {
			return nil, err
		}
	}
	pg.Port = opts.Port
	if pg.Port == 0 {
		if pg.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if err := pg.Start(ctx); err != nil {
		return nil, err
	}
	if err := pg.ensureDatabase(ctx); err != nil {
		pg.Stop()
		return nil, err
	}
	return pg, nil
}

func (pg *Postgres) initdb(ctx context.Context, initdb string) error {
	// The password file must be readable by the service user, so it goes in
	// the system temp dir rather than beside a data dir it may not reach.
	f, err := os.CreateTemp("", "docstream-pw-*")
	if err != nil {
		return err
	}
	pwfile := f.Name()
	defer os.Remove(pwfile)
	_, err = f.WriteString(pg.Password + "\n")
	if err = errors.Join(err, f.Close(), chownTree(pwfile, pg.user)); err != nil {
		return err
	}
	args := []string{"-D", pg.Dir, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8",
		"--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile=" + pwfile}
	if !pg.opts.Durable {
		args = append(args, "--no-sync")
	}
	logPath := filepath.Join(pg.Dir, "..", filepath.Base(pg.Dir)+"-initdb.log")
	p, err := startProc("initdb", initdb, args, logPath, pg.user)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.stop(syscall.SIGKILL, time.Second)
		return ctx.Err()
	}
	if p.err != nil {
		return fmt.Errorf("initdb %s: %v; log:\n%s", pg.Dir, p.err, tail(logPath, 2000))
	}
	return nil
}

// Start starts the server (again, after Stop) on its port.
func (pg *Postgres) Start(ctx context.Context) error {
	args := []string{"-D", pg.Dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port=" + strconv.Itoa(pg.Port),
		"-c", "unix_socket_directories=",
		"-c", "wal_level=logical",
		"-c", "max_replication_slots=20",
		"-c", "max_wal_senders=20",
		"-c", "max_connections=200",
		"-c", "password_encryption=scram-sha-256",
	}
	if pg.opts.MaxSlotWALKeepSize != "" {
		args = append(args, "-c", "max_slot_wal_keep_size="+pg.opts.MaxSlotWALKeepSize)
	}
	if !pg.opts.Durable {
		// synchronous_commit stays on: with it off a commit may wait up to
		// three wal_writer_delay ticks before walsenders (CDC) see it, which
		// turns into 200–600 ms of event latency. With fsync off it is cheap.
		args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off")
	}
	if err := clearStalePid(ctx, pg.Dir); err != nil {
		return err
	}
	p, err := startProc("postgres", pg.bin, args, filepath.Join(pg.Dir, "server.log"), pg.user)
	if err != nil {
		return err
	}
	pg.proc = p
	return p.waitReady(ctx, 60*time.Second, func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, pg.urlFor("postgres"))
		if err != nil {
			return err
		}
		return c.Close(ctx)
	})
}

// Stop shuts the server down (fast mode: SIGINT).
func (pg *Postgres) Stop() { pg.proc.stop(syscall.SIGINT, 30*time.Second) }

// URL is the connection URL of the docstream database.
func (pg *Postgres) URL() string { return pg.urlFor(pg.Database) }

func (pg *Postgres) urlFor(db string) string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", pg.Password, pg.Port, db)
}

// CreateDatabase creates a fresh database and returns its URL; tests use one
// database per test for isolation on one cluster.
func (pg *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	c, err := pgx.Connect(ctx, pg.urlFor("postgres"))
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	return pg.urlFor(name), nil
}

func (pg *Postgres) ensureDatabase(ctx context.Context) error {
	c, err := pgx.Connect(ctx, pg.urlFor("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	var exists bool
	if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", pg.Database).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{pg.Database}.Sanitize())
	return err
}

// clearStalePid makes a data dir left by a crash startable again. A
// postmaster killed with -9 (docstream's Pdeathsig does that when docstream
// itself is killed) leaves postmaster.pid behind, and its children
// (checkpointer, walsenders, backends) live on for a moment holding its
// shared memory. PostgreSQL then refuses to start: "lock file already
// exists" when the old PID has been reused by a process of the postgres
// user, "pre-existing shared memory block is still in use" while the
// children live. So, unless the file names a live postmaster of this data
// dir (which must keep its lock), the leftover children are given a moment
// to notice and exit, then killed, and the file is removed.
func clearStalePid(ctx context.Context, dir string) error {
	pidFile := filepath.Join(dir, "postmaster.pid")
	raw, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && isPostmasterOf(pid, real) {
		return nil
	}
	if err := reapOrphans(ctx, real); err != nil {
		return err
	}
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// isPostmasterOf reports whether pid is a running postmaster whose data dir
// is dir: a postgres process working in dir whose command line was not
// rewritten to "postgres: <role>" as every child's is.
func isPostmasterOf(pid int, dir string) bool {
	if pid <= 0 || syscall.Kill(pid, 0) == syscall.ESRCH {
		return false
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || strings.HasPrefix(string(cmdline), "postgres: ") {
		return false
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	return err == nil && cwd == dir
}

// processesIn lists the PostgreSQL processes whose working directory is
// dir: every PostgreSQL process chdirs into its data dir. Only processes
// named postgres count, so a shell or a `tail -f` sitting in the data dir
// is never taken for a dead server's child and killed.
func processesIn(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil || cwd != dir {
			continue
		}
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// orphanGrace is how long children of a dead postmaster get to exit on
// their own (they notice its death within a second or so) before they are
// killed.
const orphanGrace = 3 * time.Second

func reapOrphans(ctx context.Context, dir string) error {
	deadline := time.Now().Add(orphanGrace)
	killed := false
	for {
		pids := processesIn(dir)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if killed {
				return fmt.Errorf("postgres data dir %s: processes %v of a dead server do not exit; stop them and start again", dir, pids)
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			killed, deadline = true, time.Now().Add(orphanGrace)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PostgresBinary finds one of the PostgreSQL install's programs (pgbench
// for the benchmarks' floors) where StartPostgres finds the server.
func PostgresBinary(name string) (string, error) { return findBinary(name, pgBinDirs...) }
