package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/docstream/docstream/internal/bus"
	buskafka "github.com/docstream/docstream/internal/bus/kafka"
	busnats "github.com/docstream/docstream/internal/bus/nats"
)

// openBus opens the bus named by cfg.BusURL: empty → NATS JetStream embedded
// in <data-dir>/nats (also listening on --bus-listen), nats:// → an external
// NATS server or cluster, kafka:// → Apache Kafka.
func openBus(ctx context.Context, cfg *sharedConfig, log *slog.Logger) (bus.Bus, error) {
	opts := busnats.Options{MaxAge: cfg.BusMaxAge, Replicas: cfg.BusReplicas, Log: log}
	switch u := cfg.BusURL; {
	case u == "":
		eo := busnats.EmbeddedOptions{Dir: filepath.Join(cfg.DataDir, "nats"), Options: opts, NoListen: cfg.BusListen == "", Sync: cfg.BusSync}
		if !eo.NoListen {
			host, port, err := net.SplitHostPort(cfg.BusListen)
			if err != nil {
				return nil, fmt.Errorf("--bus-listen %q: %w", cfg.BusListen, err)
			}
			if eo.Port, err = strconv.Atoi(port); err != nil {
				return nil, fmt.Errorf("--bus-listen %q: bad port", cfg.BusListen)
			}
			if eo.Port == 0 {
				eo.Port = -1 // any free port
			}
			eo.Host = host
		}
		b, err := busnats.StartEmbedded(ctx, eo)
		if err != nil {
			return nil, err
		}
		log.Info("embedded NATS JetStream started", "dir", eo.Dir, "url", b.URL())
		return b, nil
	case strings.HasPrefix(u, "nats://") || strings.HasPrefix(u, "tls://"):
		return busnats.Connect(ctx, u, opts)
	case strings.HasPrefix(u, "kafka://"):
		return openKafka(ctx, u, cfg, log)
	default:
		return nil, fmt.Errorf("--bus-url %q: want nats://…, kafka://… or empty for the embedded NATS", u)
	}
}

// busURL is the URL other processes use to attach to this system's bus:
// the embedded server's loopback address when it runs, else --bus-url.
func (s *system) busURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nb, ok := s.bus.(*busnats.Bus); ok && s.cfg.BusURL == "" {
		return nb.URL()
	}
	return s.cfg.BusURL
}

// openKafka connects to Kafka brokers (kafka://host:port,host:port).
func openKafka(ctx context.Context, url string, cfg *sharedConfig, log *slog.Logger) (bus.Bus, error) {
	seeds, err := buskafka.ParseURL(url)
	if err != nil {
		return nil, err
	}
	return buskafka.Connect(ctx, seeds, buskafka.Options{MaxAge: cfg.BusMaxAge, Log: log})
}
