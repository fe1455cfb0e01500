package httpx

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// edgeConfig is a scaled-down ServerConfig: the same rules as production,
// with bounds a test can wait for.
func edgeConfig() ServerConfig {
	return ServerConfig{
		ReadHeaderTimeout: 5 * time.Second,
		BodyIdleTimeout:   time.Second,
		BodyGrace:         300 * time.Millisecond,
		MinBodyRate:       256 << 10, // 256 KiB/s
		IdleTimeout:       30 * time.Second,
	}
}

// serveTest runs Serve on a loopback port until the test ends.
func serveTest(t *testing.T, cfg ServerConfig, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, logging.Discard(), cfg) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ln.Addr().String()
}

// bodyCounter reads the whole body and answers how much it got, or the
// read error in the one error shape.
type bodyCounter struct {
	lastErr atomic.Value // error
}

func (b *bodyCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		b.lastErr.Store(err)
		RespondErr(w, r, logging.Discard(), apperr.Wrap(apperr.Invalid, err, "reading the body: %v", err))
		return
	}
	Respond(w, http.StatusOK, map[string]int64{"bytes": n})
}

// trickle opens a connection to addr, sends a POST announcing size bytes
// and then sends one byte every interval until the server stops it or
// size bytes have gone. It returns what the server answered (status 0 if
// it answered nothing), the bytes sent and whether the server closed the
// connection afterwards.
func trickle(t *testing.T, addr, path string, size int, interval time.Duration) (status int, sent int, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", path, size)
	stop := make(chan struct{})
	var written atomic.Int64
	go func() {
		for i := 0; i < size; i++ {
			select {
			case <-stop:
				return
			case <-time.After(interval):
			}
			if _, err := c.Write([]byte{'x'}); err != nil {
				return
			}
			written.Add(1)
		}
	}()
	defer close(stop)
	// A bounded wait: far above the rule's bound, far below what the
	// trickle would take to finish.
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err == nil {
		status = resp.StatusCode
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	_, err = br.ReadByte()
	closed = errors.Is(err, io.EOF) || (err != nil && !isTimeout(err))
	return status, int(written.Load()), closed
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Issue 11 §6: a client sending one byte at a time holds the connection
// only until the minimum rate catches up with it; then it is answered 400
// and dropped.
func TestSlowLorisBodyIsDropped(t *testing.T) {
	h := &bodyCounter{}
	addr := serveTest(t, edgeConfig(), h)
	const size = 10_000
	status, sent, closed := trickle(t, addr, "/", size, 50*time.Millisecond)
	if status != http.StatusBadRequest || !closed || sent >= size {
		t.Fatalf("status %d, %d of %d bytes sent, closed=%v: want 400 and the connection dropped early", status, sent, size, closed)
	}
	if err, _ := h.lastErr.Load().(error); !errors.Is(err, ErrBodyTooSlow) {
		t.Fatalf("the handler saw %v, want ErrBodyTooSlow", err)
	}
}

// The idle rule alone (no minimum rate): a body that stops arriving is
// dropped after the idle timeout.
func TestStalledBodyIsDroppedByTheIdleRule(t *testing.T) {
	cfg := edgeConfig()
	cfg.MinBodyRate = 0
	cfg.BodyIdleTimeout = 300 * time.Millisecond
	h := &bodyCounter{}
	addr := serveTest(t, cfg, h)
	status, _, closed := trickle(t, addr, "/", 100, time.Hour) // announces a body, sends none of it
	if status != http.StatusBadRequest || !closed {
		t.Fatalf("status %d closed=%v: want 400 and the connection dropped", status, closed)
	}
}

// Issue 11 §6: the same rules let a large upload on a slow, steady link
// through.
func TestSlowButSteadyLargeUploadSucceeds(t *testing.T) {
	addr := serveTest(t, edgeConfig(), &bodyCounter{})
	const size = 8 << 20
	// At 4 MiB/s: 16 times the test's minimum rate (1 MiB/s is 256 times
	// the default one).
	if status, n := testenv.SlowUpload(t, "http://"+addr+"/", size); status != 200 || n != size {
		t.Fatalf("status %d, %d bytes received, want 200 and %d", status, n, size)
	}
}

// Issue 11 §6: over the cap a connection is accepted and told 503 with
// Retry-After and Connection: close; when a slot frees, new connections
// are served again.
func TestConnectionCapAnswers503WithRetryAfter(t *testing.T) {
	cfg := edgeConfig()
	cfg.MaxConns = 2
	addr := serveTest(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Respond(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	get := func(c net.Conn) *http.Response {
		t.Helper()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		return resp
	}
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if resp := get(c); resp.StatusCode != 200 {
			t.Fatalf("within the cap: %d", resp.StatusCode)
		}
		held = append(held, c) // kept alive: each holds its slot
	}
	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("over the cap the connection must still be accepted: %v", err)
	}
	defer over.Close()
	resp := get(over)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!resp.Close || !strings.Contains(string(body), `"code":"unavailable"`) {
		t.Fatalf("over the cap: %d Retry-After=%q close=%v %s", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close, body)
	}
	held[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		status := get(c).StatusCode
		c.Close()
		if status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a freed slot was not given back: still %d", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSIGTERMGoesUnreadyThenKeepsServingThenStops: once ctx is done (the
// process got SIGTERM), /health/ready answers 503 at once while other
// requests are still served, each answer closing its connection; after
// the drain period the port stops accepting and a request in flight when
// the drain ended still gets its answer.
func TestSIGTERMGoesUnreadyThenKeepsServingThenStops(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	mux := http.NewServeMux()
	Routes(mux)
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		Respond(w, http.StatusOK, map[string]string{"slow": "done"})
	})
	mux.HandleFunc("GET /x", func(w http.ResponseWriter, r *http.Request) {
		Respond(w, http.StatusOK, map[string]string{"x": "y"})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg := edgeConfig()
	cfg.ShutdownDrain = time.Hour // ended by the test: no wall-clock race
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	drained := make(chan struct{})
	go func() { done <- serve(ctx, ln, mux, logging.Discard(), cfg, drained) }()

	resp, err := http.Get(base + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ready before SIGTERM: %d", resp.StatusCode)
	}
	slow := make(chan int, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	// The slow request must be in the handler before the drain begins;
	// otherwise, on a loaded machine, it may only dial after the port
	// closed and the test would measure nothing (CI saw status 0).
	select {
	case <-entered:
	case got := <-slow:
		t.Fatalf("the slow request ended before it was handled: %d", got)
	}
	cancel()
	testenv.WaitFor(t, "readiness to answer 503", func() bool {
		resp, err := http.Get(base + "/health/ready")
		if err != nil {
			t.Fatalf("the port stopped accepting during the drain period: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	resp, err = http.Get(base + "/x")
	if err != nil {
		t.Fatalf("a request during the drain period: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Fatalf("during the drain period: %d, Connection: close %v; want 200 and the connection closed", resp.StatusCode, resp.Close)
	}

	close(drained) // the drain period is over
	testenv.WaitFor(t, "the port to stop accepting", func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	if got := <-slow; got != http.StatusOK {
		t.Fatalf("the request in flight when the drain ended: %d, want 200", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
