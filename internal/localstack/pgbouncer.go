package localstack

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PgBouncer is a running pgbouncer in front of a local Postgres, with the
// reference's settings: transaction pooling, scram-sha-256, pool size 50,
// 1000 client connections.
type PgBouncer struct {
	Dir      string
	Port     int
	pg       *Postgres
	database string
	bin      string
	user     *user.User
	proc     *proc
}

// StartPgBouncer starts pgbouncer for pg's database, its files in dir.
func StartPgBouncer(ctx context.Context, dir string, pg *Postgres) (*PgBouncer, error) {
	return StartPgBouncerFor(ctx, dir, pg, pg.Database)
}

// StartPgBouncerFor starts pgbouncer in front of one database of pg.
func StartPgBouncerFor(ctx context.Context, dir string, pg *Postgres, database string) (*PgBouncer, error) {
	bin, err := findBinary("pgbouncer", "/usr/sbin")
	if err != nil {
		return nil, err
	}
	u, err := serviceUser()
	if err != nil {
		return nil, err
	}
	dir, err = ownedDir(dir, u)
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	// PgBouncer verifies clients against the same SCRAM secret the server
	// stores, and then reuses the client's proof to log in upstream.
	c, err := pgx.Connect(ctx, pg.urlFor("postgres"))
	if err != nil {
		return nil, err
	}
	var secret string
	err = c.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'").Scan(&secret)
	c.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("read scram secret: %w", err)
	}
	ini := fmt.Sprintf(`[databases]
%[1]s = host=127.0.0.1 port=%[2]d dbname=%[1]s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %[3]d
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %[4]s/userlist.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 50
reserve_pool_size = 10
max_db_connections = 100
ignore_startup_parameters = extra_float_digits,application_name
logfile = %[4]s/pgbouncer.log
pidfile = %[4]s/pgbouncer.pid
`, database, pg.Port, port, dir)
	files := map[string]string{
		"pgbouncer.ini": ini,
		"userlist.txt":  fmt.Sprintf("%q %q\n", "postgres", secret),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			return nil, err
		}
	}
	if err := chownTree(dir, u); err != nil {
		return nil, err
	}
	b := &PgBouncer{Dir: dir, Port: port, pg: pg, database: database, bin: bin, user: u}
	return b, b.start(ctx)
}

func (b *PgBouncer) start(ctx context.Context) error {
	var err error
	b.proc, err = startProc("pgbouncer", b.bin, []string{filepath.Join(b.Dir, "pgbouncer.ini")}, filepath.Join(b.Dir, "stdout.log"), b.user)
	if err != nil {
		return err
	}
	return b.proc.waitReady(ctx, 20*time.Second, func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, b.URL())
		if err != nil {
			return err
		}
		return c.Close(ctx)
	})
}

// Kill stops pgbouncer with sig: SIGKILL as a crash or a lost host would
// (connections and transactions in flight are cut), SIGTERM as an
// operator's immediate shutdown (its clients are told, then cut).
func (b *PgBouncer) Kill(sig syscall.Signal) { b.proc.stop(sig, 10*time.Second) }

// Restart starts pgbouncer again, on the same port, after Stop or Kill.
func (b *PgBouncer) Restart(ctx context.Context) error {
	_ = os.Remove(filepath.Join(b.Dir, "pgbouncer.pid")) // a killed one leaves it
	return b.start(ctx)
}

// URL connects to the database through PgBouncer.
func (b *PgBouncer) URL() string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", b.pg.Password, b.Port, b.database)
}

// Stop shuts pgbouncer down.
func (b *PgBouncer) Stop() { b.proc.stop(syscall.SIGINT, 10*time.Second) }
