package localstack

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgTempDir is a data dir parent the postgres OS user can reach (t.TempDir
// may sit under a mode-700 home when we run as root).
func pgTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "docstream-localstack-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func query1(t *testing.T, pg *Postgres) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var one int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1: %v", err)
	}
}

// Issue 11 §7: after a crash the data dir keeps postmaster.pid naming a
// process that is no postmaster (dead, or its PID reused by something else,
// here PID 1): the next start removes it and comes up.
func TestStartAfterACrashRemovesAStalePostmasterPid(t *testing.T) {
	dir := filepath.Join(pgTempDir(t), "pg")
	ctx := context.Background()
	pg, err := StartPostgres(ctx, dir, PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(pg.Dir, "postmaster.pid")
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	// A crash: the postmaster is killed and leaves its pid file behind.
	_ = pg.proc.cmd.Process.Signal(syscall.SIGKILL)
	<-pg.proc.done

	// A PID reused by another process of the postgres OS user is what
	// PostgreSQL cannot tell from a live postmaster by itself.
	other, err := startProc("sleep", "sleep", []string{"60"}, filepath.Join(filepath.Dir(dir), "sleep.log"), pg.user)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.stop(syscall.SIGKILL, time.Second) })

	for _, c := range []struct{ name, pid string }{
		{"the pid of a process that is gone", "999999"},
		{"the pid of a live process of the postgres user that is not a postmaster", strconv.Itoa(other.cmd.Process.Pid)},
	} {
		t.Run(c.name, func(t *testing.T) {
			lines := strings.SplitN(string(raw), "\n", 2)
			planted := c.pid + "\n" + lines[1]
			if err := os.WriteFile(pidFile, []byte(planted), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := pg.Start(ctx); err != nil {
				t.Fatalf("start over a stale postmaster.pid (%s): %v", c.pid, err)
			}
			query1(t, pg)
			b, _ := os.ReadFile(pidFile)
			if first, _, _ := strings.Cut(string(b), "\n"); first != strconv.Itoa(pg.proc.cmd.Process.Pid) {
				t.Fatalf("postmaster.pid names %s, want the new postmaster %d", first, pg.proc.cmd.Process.Pid)
			}
			_ = pg.proc.cmd.Process.Signal(syscall.SIGKILL)
			<-pg.proc.done
		})
	}

	// Restarted at once after the kill, while the dead postmaster's
	// children may still hold its shared memory; and a live postmaster's
	// file is never removed: a second server on the same data dir must
	// still be refused.
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	if err := clearStalePid(ctx, pg.Dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pidFile); err != nil {
		t.Fatalf("the live postmaster's pid file was removed: %v", err)
	}
}

// Reaping a dead server's children takes only PostgreSQL processes: a
// shell or a tail sitting in the data dir survives.
func TestReapingSparesOtherProcessesInTheDataDir(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sleep", "60")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if pids := processesIn(dir); len(pids) != 0 {
		t.Fatalf("processesIn(%s) = %v, want none (only a sleep sits there)", dir, pids)
	}
	if err := reapOrphans(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the sleep in the data dir was killed: %v", err)
	}
}
