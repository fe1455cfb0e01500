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
