package localstack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Redis is a running local redis-server with AOF on and volatile-lru
// eviction, as the reference configured it.
type Redis struct {
	Dir  string
	Port int
	bin  string
	proc *proc
}

// StartRedis starts redis-server with its data in dir (port 0: a free port).
func StartRedis(ctx context.Context, dir string, port int) (*Redis, error) {
	bin, err := findBinary("redis-server")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(dir)
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	r := &Redis{Dir: abs, Port: port, bin: bin}
	return r, r.Start(ctx)
}

// Start starts (or restarts, after Stop) the server on its port.
func (r *Redis) Start(ctx context.Context) error {
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(r.Port), "--dir", r.Dir,
		"--appendonly", "yes", "--save", "", "--maxmemory-policy", "volatile-lru",
		"--daemonize", "no", "--protected-mode", "no"}
	p, err := startProc("redis-server", r.bin, args, filepath.Join(r.Dir, "redis.log"), nil)
	if err != nil {
		return err
	}
	r.proc = p
	return p.waitReady(ctx, 20*time.Second, func(ctx context.Context) error {
		return ping(ctx, r.Addr())
	})
}

// ping sends an inline PING and expects +PONG.
func ping(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "+PONG\r\n" {
		return fmt.Errorf("unexpected reply %q", buf[:n])
	}
	return nil
}

// Stop shuts redis down (SIGTERM: it finishes the AOF write first).
func (r *Redis) Stop() { r.proc.stop(syscall.SIGTERM, 10*time.Second) }

// Addr is host:port.
func (r *Redis) Addr() string { return fmt.Sprintf("127.0.0.1:%d", r.Port) }

// URL is the redis:// URL.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// Kill stops redis with SIGKILL (a crash: no shutdown work). What it
// acknowledged is in the AOF already: it writes the AOF before replying.
func (r *Redis) Kill() { r.proc.stop(syscall.SIGKILL, 10*time.Second) }
