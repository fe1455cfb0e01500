package localstack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSCluster is a JetStream cluster of nats-server binaries on loopback,
// for tests of the bus across nodes: kill the node holding a stream's
// leader, restart it, and see what the clients do.
type NATSCluster struct {
	Nodes []*NATSNode
}

// NATSNode is one server of a NATSCluster.
type NATSNode struct {
	Name        string
	Dir         string
	Port        int // client port
	ClusterPort int
	bin         string
	conf        string
	proc        *proc
}

// StartNATSCluster starts n nats-server nodes (named n1…nN) clustered over
// loopback routes, each with JetStream and its store under dir, and waits
// until the cluster can place a stream on all n of them.
func StartNATSCluster(ctx context.Context, dir string, n int) (*NATSCluster, error) {
	bin, err := findBinary("nats-server", "/usr/sbin", "/usr/bin")
	if err != nil {
		return nil, err
	}
	c := &NATSCluster{}
	for i := 1; i <= n; i++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		cport, err := FreePort()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("n%d", i)
		c.Nodes = append(c.Nodes, &NATSNode{Name: name, Dir: filepath.Join(dir, name), Port: port, ClusterPort: cport, bin: bin})
	}
	var routes []string
	for _, nd := range c.Nodes {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", nd.ClusterPort))
	}
	for _, nd := range c.Nodes {
		if err := os.MkdirAll(nd.Dir, 0o755); err != nil {
			return nil, err
		}
		nd.conf = filepath.Join(nd.Dir, "nats.conf")
		conf := fmt.Sprintf(`server_name: %s
listen: "127.0.0.1:%d"
jetstream { store_dir: %q }
cluster {
  name: docstream-test
  listen: "127.0.0.1:%d"
  routes: [%s]
}
`, nd.Name, nd.Port, filepath.Join(nd.Dir, "js"), nd.ClusterPort, strings.Join(routes, ", "))
		if err := os.WriteFile(nd.conf, []byte(conf), 0o644); err != nil {
			return nil, err
		}
	}
	for _, nd := range c.Nodes {
		if err := nd.Start(ctx); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.waitPlaced(ctx, 30*time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// waitPlaced waits until the cluster has elected its meta leader and knows
// every peer: a stream with one replica per node can be created.
func (c *NATSCluster) waitPlaced(ctx context.Context, timeout time.Duration) error {
	nc, err := natsgo.Connect(c.URL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var last error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, last = js.CreateStream(rctx, jetstream.StreamConfig{Name: "LOCALSTACK_PROBE", Subjects: []string{"localstack.probe"},
			Replicas: len(c.Nodes), Storage: jetstream.MemoryStorage})
		if last == nil {
			last = js.DeleteStream(rctx, "LOCALSTACK_PROBE")
		}
		cancel()
		if last == nil {
			return nil
		}
	}
	return fmt.Errorf("nats cluster: streams cannot be placed on %d nodes after %v: %w", len(c.Nodes), timeout, last)
}

// Start starts (or restarts) the node with its store as it was.
func (n *NATSNode) Start(ctx context.Context) error {
	p, err := startProc("nats-server "+n.Name, n.bin, []string{"-c", n.conf}, filepath.Join(n.Dir, "nats.log"), nil)
	if err != nil {
		return err
	}
	n.proc = p
	return p.waitReady(ctx, 20*time.Second, func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", n.Addr())
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// Kill stops the node at once (SIGKILL), as a crash or a lost machine.
func (n *NATSNode) Kill() { n.proc.stop(syscall.SIGKILL, 5*time.Second) }

// Stop shuts the node down cleanly.
func (n *NATSNode) Stop() { n.proc.stop(syscall.SIGTERM, 10*time.Second) }

// Addr is the node's client address.
func (n *NATSNode) Addr() string { return fmt.Sprintf("127.0.0.1:%d", n.Port) }

// Node is the node named name (n1…), nil when none.
func (c *NATSCluster) Node(name string) *NATSNode {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// URL lists every node as the seeds of a client (nats://a,nats://b,…).
func (c *NATSCluster) URL() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = "nats://" + n.Addr()
	}
	return strings.Join(urls, ",")
}

// Stop shuts every node down.
func (c *NATSCluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}
