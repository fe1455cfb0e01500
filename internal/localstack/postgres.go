package localstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
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
	if !pg.opts.Durable {
		// synchronous_commit stays on: with it off a commit may wait up to
		// three wal_writer_delay ticks before walsenders (CDC) see it, which
		// turns into 200–600 ms of event latency. With fsync off it is cheap.
		args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off")
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
