package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
)

// DefaultEmbeddedPort is where the embedded server listens on loopback in
// dev: not 4222, so it never clashes with a standard NATS server already
// running on the machine.
const DefaultEmbeddedPort = 4250

// EmbeddedOptions configure the in-process server.
type EmbeddedOptions struct {
	// Dir holds the JetStream file store (required).
	Dir string
	// Host and Port are where other processes can attach (default
	// 127.0.0.1). Port 0 means DefaultEmbeddedPort; -1 picks a free port;
	// NoListen keeps the server reachable only from this process.
	Host     string
	Port     int
	NoListen bool
	// Sync is when published messages reach the disk: SyncBatch (default:
	// fsync once per publish, grouped, before it counts as acknowledged),
	// SyncAlways (JetStream fsyncs every message), or a duration (JetStream's
	// background fsync only; a power loss may lose acknowledged events).
	// See sync.go.
	Sync string
	Options
}

// StartEmbedded starts a NATS server with JetStream inside this process and
// returns a Bus connected to it in-process (no TCP on the hot path). Close
// shuts the server down.
func StartEmbedded(ctx context.Context, eo EmbeddedOptions) (*Bus, error) {
	if eo.Dir == "" {
		return nil, errors.New("nats: embedded server needs a store directory")
	}
	if err := os.MkdirAll(eo.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	if eo.Host == "" {
		eo.Host = "127.0.0.1"
	}
	if eo.Port == 0 {
		eo.Port = DefaultEmbeddedPort
	}
	sopts := &server.Options{
		ServerName: "docstream-embedded",
		Host:       eo.Host,
		Port:       eo.Port,
		DontListen: eo.NoListen,
		JetStream:  true,
		StoreDir:   eo.Dir,
		NoSigs:     true,
		NoLog:      true,
		// The embedded store is for one machine's dev data; no other limits.
		JetStreamMaxStore: -1,
	}
	mode, interval, err := parseSync(eo.Sync)
	if err != nil {
		return nil, err
	}
	switch mode {
	case SyncAlways:
		sopts.SyncAlways = true
	case "interval":
		sopts.SyncInterval = interval
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("nats: embedded server: %w", err)
	}
	eo.Options.defaults()
	// NoLog keeps the server off stderr; its warnings and errors (a full
	// disk, a corrupt store) still belong in the process's log.
	ns.SetLoggerV2(serverLogger{eo.Log.With("logger", "nats-server")}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("nats: embedded server not ready (is %s:%d free?)", eo.Host, eo.Port)
	}
	// JetStream recovers its store asynchronously after Start.
	nc, err := natsgo.Connect("", natsgo.InProcessServer(ns), natsgo.Name("docstream"), natsgo.MaxReconnects(-1))
	if err != nil {
		ns.Shutdown()
		return nil, fmt.Errorf("nats: connect embedded: %w", err)
	}
	var b *Bus
	for deadline := time.Now().Add(30 * time.Second); ; {
		b, err = newBus(ctx, nc, eo.Options)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		nc.Close()
		ns.Shutdown()
		return nil, err
	}
	if !eo.NoListen {
		if addr, ok := ns.Addr().(*net.TCPAddr); ok {
			b.url = "nats://" + net.JoinHostPort(eo.Host, strconv.Itoa(addr.Port))
		}
	}
	if mode == SyncBatch {
		b.syncer = newSyncer(eo.Dir)
	}
	b.shutdown = func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
	return b, nil
}

// serverLogger is the embedded server's Logger: notices (start-up chatter)
// at debug, warnings and errors as such.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) Noticef(f string, v ...any) { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l serverLogger) Warnf(f string, v ...any)   { l.log.Warn(fmt.Sprintf(f, v...)) }
func (l serverLogger) Fatalf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l serverLogger) Errorf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l serverLogger) Debugf(f string, v ...any)  { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l serverLogger) Tracef(f string, v ...any)  {}
