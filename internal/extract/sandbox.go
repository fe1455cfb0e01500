package extract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ChildEnv marks a process as an extraction child. The parent sets it; a
// binary that may run extractions calls ChildMain first thing in main (and
// test binaries in TestMain, which testenv.Main does).
const ChildEnv = "DOCSTREAM_EXTRACT_CHILD"

// resultCap bounds what the parent reads of a child's stdout (the result
// JSON) and stderr (for the reason of a crash).
const resultCap = 64 << 10

var (
	tasksMu sync.Mutex
	tasks   = map[string]func(Job) Result{"extract": run, "probe": func(Job) Result { return Result{Status: StatusDone, Kind: "probe"} }}
)

// RegisterTask adds a child task by name (tests use it to make a child
// misbehave on purpose). Call it before ChildMain, i.e. in TestMain or
// init.
func RegisterTask(name string, f func(Job) Result) {
	tasksMu.Lock()
	defer tasksMu.Unlock()
	tasks[name] = f
}

// IsChild reports whether this process is an extraction child.
func IsChild() bool { return os.Getenv(ChildEnv) == "1" }

// ChildMain runs the extraction child and exits when this process is one
// (ChildEnv set); otherwise it returns at once. The child reads one Job
// from stdin, limits itself (address space above what it has now, CPU,
// niceness), runs the task and writes the Result to stdout.
func ChildMain() {
	if !IsChild() {
		return
	}
	var job Job
	if err := json.NewDecoder(io.LimitReader(os.Stdin, resultCap)).Decode(&job); err != nil {
		fmt.Fprintln(os.Stderr, "extract child: bad job:", err)
		os.Exit(3)
	}
	limitSelf(job.Limits)
	tasksMu.Lock()
	f := tasks[job.Task]
	tasksMu.Unlock()
	if f == nil {
		fmt.Fprintln(os.Stderr, "extract child: unknown task", job.Task)
		os.Exit(3)
	}
	res := f(job)
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		os.Exit(3)
	}
	os.Exit(0)
}

// limitSelf applies the limits to the child itself. The Go runtime
// reserves far more address space than it uses, so the child may grow by
// Memory above its size now.
func limitSelf(l Limits) {
	if l.Memory > 0 {
		cur := vmSize()
		lim := uint64(cur + l.Memory)
		_ = syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: lim, Max: lim})
	}
	if l.CPU > 0 {
		s := uint64(l.CPU.Seconds() + 0.999)
		// The soft limit sends SIGXCPU, the hard one a second later SIGKILL.
		_ = syscall.Setrlimit(syscall.RLIMIT_CPU, &syscall.Rlimit{Cur: s, Max: s + 1})
	}
	if l.Nice > 0 {
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, 0, l.Nice)
	}
}

// vmSize is this process's virtual memory size in bytes (0 if unknown).
func vmSize() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Runner starts extraction children.
type Runner struct {
	// Exe is the binary re-executed as the child (default: this one).
	Exe string
}

// ErrSandbox is returned when a child could not be started or answered
// nonsense through no fault of the file (the executable is gone, fork
// failed): a transient failure, worth retrying.
var ErrSandbox = errors.New("extract: sandbox")

// ErrKilled is returned (with a failed Result of reason ReasonKilled) when
// the child or one of its tools was killed by a signal that neither the
// extractor nor the limits sent: the kernel's OOM killer when the machine
// runs short of memory, an operator. Nothing says the file is at fault,
// so it is a transient failure, worth retrying a bounded number of times.
// (The limits send SIGXCPU and then SIGKILL once the process's CPU time
// passed Limits.CPU; the extractor sends SIGKILL at the time limit, seen
// as its deadline, and to a tool at the output cap, seen as the cap.)
var ErrKilled = errors.New("extract: killed by a signal the extractor did not send")

// Run runs job in a child and returns its result. A file that makes the
// child fail (a limit reached, a crash) is a failed Result, not an error;
// the error is for a child that could not run at all (ErrSandbox), for a
// child or tool killed from outside (ErrKilled, with its failed Result),
// and for ctx being done (ctx.Err()).
func (r Runner) Run(ctx context.Context, job Job) (Result, error) {
	exe := r.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return Result{}, fmt.Errorf("%w: %v", ErrSandbox, err)
		}
	}
	in, err := json.Marshal(job)
	if err != nil {
		return Result{}, err
	}
	timeout := job.Limits.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, exe)
	cmd.Env = append(os.Environ(), ChildEnv+"=1")
	cmd.Stdin = bytes.NewReader(in)
	stdout, stderr := &capBuffer{max: resultCap}, &capBuffer{max: resultCap}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group, so a timeout kills the tools it started too.
	// Pdeathsig: a parent killed outright (SIGKILL, OOM) takes its
	// extraction with it, rather than leaving it to run to its CPU limit
	// while another worker redoes it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	err = cmd.Run()
	if cmd.Process != nil {
		// Whatever happened, nothing of the group outlives the extraction.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	if tctx.Err() != nil {
		return failed(ReasonTimeout, "killed after %v (time limit %v)", time.Since(start).Round(time.Millisecond), timeout), nil
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return Result{}, fmt.Errorf("%w: start %s: %v", ErrSandbox, exe, err)
	}
	var res Result
	if err == nil {
		if jerr := json.Unmarshal(stdout.Bytes(), &res); jerr != nil || res.Status == "" {
			return failed(ReasonCrashed, "the child exited without a result: %s", lastLine(stderr.String())), nil
		}
	} else {
		res = childFailure(exitErr, stderr.String(), job.Limits.CPU)
	}
	if res.Status == StatusFailed && res.Reason == ReasonKilled {
		return res, fmt.Errorf("%w: %s", ErrKilled, res.Detail)
	}
	return res, nil
}

// childFailure names why a child died; cpu is its CPU limit.
func childFailure(e *exec.ExitError, stderr string, cpu time.Duration) Result {
	ws, _ := e.Sys().(syscall.WaitStatus)
	switch {
	case outOfMemory(stderr):
		return failed(ReasonMemory, "memory limit reached: %s", lastLine(stderr))
	case ws.Signaled() && killedFromOutside(ws.Signal(), e.ProcessState, cpu):
		return outsideKill("the child", ws.Signal(), e.ProcessState)
	case ws.Signaled() && (ws.Signal() == syscall.SIGXCPU || ws.Signal() == syscall.SIGKILL):
		// SIGKILL not sent by us (we would have seen the deadline) after
		// the CPU limit: its hard limit.
		return failed(ReasonTimeout, "CPU limit reached (%v)", ws.Signal())
	case ws.Signaled():
		return failed(ReasonCrashed, "killed by %v: %s", ws.Signal(), lastLine(stderr))
	}
	return failed(ReasonCrashed, "exit status %d: %s", ws.ExitStatus(), lastLine(stderr))
}

// killedFromOutside reports whether a process that died of sig was killed
// by someone other than the extractor and its limits: a SIGKILL before
// its CPU time reached the CPU limit (the hard limit sends SIGKILL only
// after it), or a termination signal (SIGTERM, SIGINT, SIGHUP), which
// nothing here sends. A crash (SIGSEGV, SIGABRT, ...) is the file's.
func killedFromOutside(sig syscall.Signal, ps *os.ProcessState, cpu time.Duration) bool {
	switch sig {
	case syscall.SIGKILL:
		return cpu <= 0 || ps == nil || ps.UserTime()+ps.SystemTime() < cpu
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP:
		return true
	}
	return false
}

// outsideKill is the failed Result of what (the child, a tool) killed
// from outside.
func outsideKill(what string, sig syscall.Signal, ps *os.ProcessState) Result {
	var used time.Duration
	if ps != nil {
		used = (ps.UserTime() + ps.SystemTime()).Round(time.Millisecond)
	}
	return failed(ReasonKilled, "%s was killed by %v after %v of CPU time, a signal neither the extractor nor its limits sent (the kernel's OOM killer, an operator)",
		what, sig, used)
}

// outOfMemory recognises the Go runtime's and C/C++ programs' messages on
// a failed allocation (and the race detector's, whose runtime maps its
// shadow memory at start, so a child built with -race meets the limit there).
func outOfMemory(stderr string) bool {
	s := strings.ToLower(stderr)
	for _, m := range []string{"out of memory", "bad_alloc", "cannot allocate memory", "memory exhausted", "failed to map segment", "failed to allocate",
		"cannot map pages", "cannot reserve arena", "failed to create new os thread", "pthread_create failed"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "\ngoroutine "); i >= 0 { // a Go crash: the message is above the stacks
		s = strings.TrimSpace(s[:i])
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return truncate(s, 300)
}

// capBuffer keeps the first max bytes written and discards the rest (the
// writer never fails, so a chatty child is not killed by a broken pipe).
// It holds its bytes.Buffer rather than embedding it: os/exec copies a
// child's output with io.Copy, which would use an embedded Buffer's
// ReadFrom and bypass Write, and with it the cap (it did).
type capBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *capBuffer) Bytes() []byte  { return b.buf.Bytes() }
func (b *capBuffer) String() string { return b.buf.String() }
