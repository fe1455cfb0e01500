package realtime

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/docstream/docstream/internal/testenv"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// Benchmarks (make bench). All loopback, bounded in size and time.
//
//   BenchmarkCommitToWebSocket: real PostgreSQL → CDC → embedded NATS →
//     realtime → one WebSocket client, writes at a steady rate; reports
//     the p50/p99 latency from the UPDATE's commit returning to the client
//     reading the message.
//   BenchmarkFanOut10k: 10,000 connections subscribed to one document on
//     one server (the clients run in a child process so that the memory
//     and CPU measured are the server's); reports server memory per
//     connection (before the events and, -after, once they are all
//     written), server CPU per event and two times per event: the
//     server's share (server-*: from Dispatch until the last subscriber's
//     write returned, docstream_realtime_fanout_seconds) and end to end
//     (fanout-*: from Dispatch until the last of the 10,000 clients
//     returned from Read with the message; the clients' frame reading is
//     inside it, their JSON decoding of that last message is not, and the
//     clients share the two cores with the server).

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard one: 10,000
// connections need as many descriptors on each side.
func raiseFileLimit(tb testing.TB, need uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		tb.Fatal(err)
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		tb.Fatal(err)
	}
	if rl.Cur < need {
		tb.Skipf("RLIMIT_NOFILE hard limit %d < %d", rl.Max, need)
	}
}

func BenchmarkCommitToWebSocket(b *testing.B) {
	const rate = 200 // writes per second
	p := startPipeline(b)
	s := p.startInstance(b)
	doc := uuid.NewString()
	c := s.dial(b, doc, "", 0)
	testenv.WaitFor(b, "subscriber", func() bool { return s.hub.Connections() == 1 })
	p.createDocument(b, doc, "0")
	readMsg(b, c)

	received := make(chan time.Time, b.N)
	go func() {
		for range b.N {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, _, err := c.Read(ctx)
			cancel()
			if err != nil {
				return
			}
			received <- time.Now()
		}
	}()
	lat := make([]time.Duration, 0, b.N)
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		<-tick.C
		p.setTitle(b, doc, strconv.Itoa(i))
		committed := time.Now()
		// Each message arrives well within one tick at this rate; reading
		// them in step keeps the pairing exact.
		select {
		case at := <-received:
			lat = append(lat, at.Sub(committed))
		case <-time.After(30 * time.Second):
			b.Fatalf("message %d never arrived", i)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
	b.ReportMetric(rate, "writes/s")
}

const (
	fanoutClientsEnv = "REALTIME_BENCH_FANOUT_URL"
	fanoutConns      = 10000
)

func BenchmarkFanOut10k(b *testing.B) {
	raiseFileLimit(b, fanoutConns+200)
	s := startServer(b, serverOpts{hub: Options{PingInterval: time.Hour}})
	doc := uuid.NewString()

	runtime.GC()
	before := memInUse()

	child := exec.Command(os.Args[0], "-test.run=^TestFanOutClientProcess$", "-test.count=1")
	child.Env = append(os.Environ(), fanoutClientsEnv+"="+s.wsURL(doc, "token="+s.token(b)))
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = child.Wait() }()
	lines := bufio.NewScanner(stdout)
	next := func() string {
		if !lines.Scan() {
			b.Fatalf("client process ended: %v", lines.Err())
		}
		return lines.Text()
	}
	for !strings.HasPrefix(next(), "ready") {
	}
	testenv.WaitFor(b, "10,000 subscribers", func() bool { return s.hub.Connections() == fanoutConns })

	runtime.GC()
	after := memInUse()
	perConn := float64(after-before) / fanoutConns

	fanouts := make([]time.Duration, 0, b.N)
	shares := make([]time.Duration, 0, b.N)
	samples, sum := fanoutSamples(b)
	cpuBefore := processCPU(b)
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		ev := titleEvent(b, doc, uint64(i))
		start := time.Now()
		s.hub.Dispatch(ev)
		// The child prints the wall-clock time at which its last client
		// read message i (same machine, same clock).
		line := next()
		var n int
		var last int64
		if _, err := fmt.Sscanf(line, "done %d %d", &n, &last); err != nil || n != i {
			b.Fatalf("client process said %q", line)
		}
		fanouts = append(fanouts, time.Unix(0, last).Sub(start))
		// The server's share is what docstream_realtime_fanout_seconds
		// observed for this event (events go one at a time: the sum's
		// growth is this one's time). Its last write may return just
		// after its client read it.
		for {
			got, total := fanoutSamples(b)
			if got > samples {
				shares = append(shares, time.Duration((total-sum)*float64(time.Second)))
				samples, sum = got, total
				break
			}
			runtime.Gosched()
		}
	}
	b.StopTimer()
	// The clients are another process: this one's CPU time is the
	// server's (and the benchmark loop's, which only reads a pipe).
	cpu := processCPU(b) - cpuBefore
	// Idle again, each connection having written: what a connection
	// keeps from its writes.
	runtime.GC()
	perConnAfter := float64(memInUse()-before) / fanoutConns
	slices.Sort(fanouts)
	slices.Sort(shares)
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "server-cpu-ms/event")
	b.ReportMetric(float64(shares[len(shares)/2].Microseconds())/1000, "server-p50-ms")
	b.ReportMetric(float64(shares[len(shares)-1].Microseconds())/1000, "server-max-ms")
	b.ReportMetric(float64(fanouts[len(fanouts)/2].Microseconds())/1000, "fanout-p50-ms")
	b.ReportMetric(float64(fanouts[len(fanouts)-1].Microseconds())/1000, "fanout-max-ms")
	b.ReportMetric(perConn, "server-bytes/conn")
	b.ReportMetric(perConnAfter, "server-bytes/conn-after")
	b.ReportMetric(float64(fanoutConns), "conns")
}

// processCPU is the user and system CPU time this process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memInUse is the process's Go memory actually in use: heap objects,
// goroutine stacks and runtime structures.
func memInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse + m.MSpanInuse + m.MCacheInuse + m.BuckHashSys + m.GCSys + m.OtherSys
}

// TestFanOutClientProcess is the client side of BenchmarkFanOut10k, run in
// a child process; it does nothing in a normal test run.
func TestFanOutClientProcess(t *testing.T) {
	url := os.Getenv(fanoutClientsEnv)
	if url == "" {
		t.Skip("client process of BenchmarkFanOut10k")
	}
	raiseFileLimit(t, fanoutConns+200)
	conns := make([]*websocket.Conn, 0, fanoutConns)
	for len(conns) < fanoutConns {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, _, err := websocket.Dial(ctx, url, nil)
		cancel()
		if err != nil {
			t.Fatalf("conn %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	fmt.Println("ready")
	// Every client reads messages; per message number, the last reader
	// reports when it read it.
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			for {
				_, data, err := c.Read(context.Background())
				if err != nil {
					return
				}
				at := time.Now().UnixNano()
				var m struct {
					LSN int `json:"lsn"`
				}
				if err := json.Unmarshal(data, &m); err != nil {
					continue
				}
				mu.Lock()
				counts[m.LSN]++
				if counts[m.LSN] == fanoutConns {
					delete(counts, m.LSN)
					fmt.Printf("done %d %d\n", m.LSN, at)
				}
				mu.Unlock()
			}
		})
	}
	// The parent closes stdin when it is done.
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	for _, c := range conns {
		_ = c.CloseNow()
	}
	wg.Wait()
}
