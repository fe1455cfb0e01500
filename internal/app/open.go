package app

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
	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/search/bleve"
	"github.com/docstream/docstream/internal/search/elastic"
)

// openBus opens the bus named by cfg.BusURL: empty → NATS JetStream embedded
// in <data-dir>/nats (also listening on --bus-listen), nats:// → an external
// NATS server or cluster, kafka:// → Apache Kafka.
func openBus(ctx context.Context, cfg *Shared, log *slog.Logger) (bus.Bus, error) {
	opts := busnats.Options{MaxAge: cfg.BusMaxAge, Replicas: cfg.BusReplicas, PublishTimeout: cfg.BusPublishTimeout,
		StallAfter: cfg.BusStallTimeout, Log: log}
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
		seeds, err := buskafka.ParseURL(u)
		if err != nil {
			return nil, err
		}
		return buskafka.Connect(ctx, seeds, buskafka.Options{MaxAge: cfg.BusMaxAge, StallAfter: cfg.BusStallTimeout, Log: log})
	default:
		return nil, fmt.Errorf("--bus-url %q: want nats://…, kafka://… or empty for the embedded NATS", u)
	}
}

// openIndex opens the index named by --search-url: empty is Bleve in
// <data-dir>/index, http(s):// is Elasticsearch/OpenSearch.
func openIndex(ctx context.Context, cfg *Shared) (search.Index, error) {
	switch u := cfg.SearchURL; {
	case u == "":
		return bleve.Open(filepath.Join(cfg.DataDir, "index"))
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		return elastic.Open(ctx, u, nil)
	default:
		return nil, fmt.Errorf("--search-url %q: want http(s)://host:port[/index] for Elasticsearch/OpenSearch, or empty for the embedded Bleve index", u)
	}
}
