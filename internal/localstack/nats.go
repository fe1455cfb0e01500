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

// NATSServer is a running nats-server binary with JetStream on (the Debian
// package), for tests of the external-server path of the bus.
type NATSServer struct {
	Dir  string
	Port int
	bin  string
	proc *proc
}

// StartNATSServer starts nats-server -js with its store in dir.
func StartNATSServer(ctx context.Context, dir string) (*NATSServer, error) {
	bin, err := findBinary("nats-server", "/usr/sbin", "/usr/bin")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	n := &NATSServer{Dir: dir, Port: port, bin: bin}
	return n, n.Start(ctx)
}

// Start starts (or restarts) the server on its port.
func (n *NATSServer) Start(ctx context.Context) error {
	args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(n.Port), "-js", "-sd", n.Dir}
	p, err := startProc("nats-server", n.bin, args, filepath.Join(n.Dir, "nats.log"), nil)
	if err != nil {
		return err
	}
	n.proc = p
	return p.waitReady(ctx, 20*time.Second, func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", n.addr())
		if err != nil {
			return err
		}
		return c.Close()
	})
}

func (n *NATSServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", n.Port) }

// URL is the nats:// URL.
func (n *NATSServer) URL() string { return "nats://" + n.addr() }

// Stop shuts the server down.
func (n *NATSServer) Stop() { n.proc.stop(syscall.SIGTERM, 10*time.Second) }
