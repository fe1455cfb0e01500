// Package localstack starts real backing servers (PostgreSQL, Redis,
// PgBouncer, nats-server, versitygw) from the binaries installed on the
// machine, on free loopback ports, in directories it is given. `docstream dev`
// uses it with ./var; tests use it with temp dirs. Nothing here assumes a
// server is already running.
package localstack

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Ports FreePort picks from: below Linux's default ephemeral range
// (32768–60999). A port the kernel hands out for ":0" comes from that
// range, which is also where every outgoing connection takes its local
// port, so between the check and the server's bind such a port was often
// taken by some client's connection (seen: "bind: address already in use"
// on a loaded test run). Below the range only another server can take it.
const (
	freePortLow  = 15000
	freePortHigh = 32768
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, at
// random below the ephemeral range; the kernel's choice when none of a
// hundred tries was free.
func FreePort() (int, error) {
	for range 100 {
		port := freePortLow + rand.IntN(freePortHigh-freePortLow)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			ln.Close()
			return port, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// proc is a child server process with its log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
}

// startProc starts bin with args, its output going to logPath. When asUser
// is set and we are root, the process runs as that OS user (PostgreSQL and
// PgBouncer refuse to run as root).
func startProc(name, bin string, args []string, logPath string, asUser *user.User) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if asUser != nil {
		if err := credential(cmd, asUser); err != nil {
			logf.Close()
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends sig and waits up to timeout, then kills the process.
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports an error with the log tail if the process has died.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); log:\n%s", p.name, p.err, tail(p.log, 2000))
	default:
		return nil
	}
}

// waitReady polls probe until it succeeds, the process dies, or timeout.
func (p *proc) waitReady(ctx context.Context, timeout time.Duration, probe func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if err := p.exited(); err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		last = probe(pctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %v: %v; log:\n%s", p.name, timeout, last, tail(p.log, 2000))
}

func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, _ := f.Stat()
	if st != nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// findBinary looks name up in PATH and then in the extra directories.
func findBinary(name string, extra ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, pattern := range extra {
		matches, _ := filepath.Glob(filepath.Join(pattern, name))
		for i := len(matches) - 1; i >= 0; i-- { // newest version sorts last
			if st, err := os.Stat(matches[i]); err == nil && st.Mode()&0o111 != 0 {
				return matches[i], nil
			}
		}
	}
	return "", fmt.Errorf("%s not found in PATH or %v: run `make bootstrap` (scripts/bootstrap.sh) to install it", name, extra)
}

// serviceUser returns the unprivileged user to run name as when we are
// root, or nil when we are not root.
func serviceUser() (*user.User, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("running as root, and there is no 'postgres' OS user to run PostgreSQL/PgBouncer as (it comes with the postgresql package)")
	}
	return u, nil
}

func credential(cmd *exec.Cmd, u *user.User) error {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return err
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	cmd.Env = append(os.Environ(), "HOME="+u.HomeDir, "USER="+u.Username)
	return nil
}

// chownTree gives dir and everything below it to u (no-op when u is nil).
func chownTree(dir string, u *user.User) error {
	if u == nil {
		return nil
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// reachable reports whether every ancestor of dir lets other users traverse
// it, so a process running as another user can reach dir.
func reachable(dir string) bool {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

// ownedDir returns a directory the service user can own and reach for the
// wanted path. If want is under a directory that user cannot traverse (a
// checkout under /root, a 0700 temp dir), the data lives under
// /var/lib/docstream instead and want becomes a symlink to it, so the data
// still survives restarts and `ls ./var` shows where it is.
func ownedDir(want string, u *user.User) (string, error) {
	abs, err := filepath.Abs(want)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return "", err
	}
	if u == nil || reachable(abs) {
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return "", err
		}
		return abs, chownTree(abs, u)
	}
	if target, err := os.Readlink(abs); err == nil {
		return target, nil
	}
	if err := os.Remove(abs); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s is not reachable by OS user %s and is not empty: move it under a directory others can traverse, or remove it: %w", abs, u.Username, err)
	}
	target := filepath.Join("/var/lib/docstream", fmt.Sprintf("%s-%x", filepath.Base(abs), pathHash(abs)))
	if err := os.MkdirAll(target, 0o755); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return "", err
	}
	if err := os.Symlink(target, abs); err != nil {
		return "", err
	}
	return target, chownTree(target, u)
}

func pathHash(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// Stack is a set of started servers stopped together.
type Stack struct {
	mu    sync.Mutex
	stops []func()
}

// Add registers a stop function.
func (s *Stack) Add(stop func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stops = append(s.stops, stop)
}

// Close stops every server, last started first.
func (s *Stack) Close() {
	s.mu.Lock()
	stops := s.stops
	s.stops = nil
	s.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
}
