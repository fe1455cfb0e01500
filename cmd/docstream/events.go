package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/docstream/docstream/internal/app"
	"github.com/docstream/docstream/internal/bus"
	buskafka "github.com/docstream/docstream/internal/bus/kafka"
	busnats "github.com/docstream/docstream/internal/bus/nats"
	"github.com/docstream/docstream/internal/change"
)

func newEventsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "events", Short: "Operator tools for the event bus"}
	var (
		busURL, dataDir, key string
		fromBeginning        bool
		afterLSN             uint64
		limit                int
	)
	tail := &cobra.Command{
		Use:   "tail <topic>",
		Short: "Print the events of a topic as JSON lines (cdc.documents, cdc.signatures, cdc.watermarks, or a comma-separated list; the cdc. prefix may be left out)",
		Long: "Print the events of a topic as JSON lines, one {topic, position, time, key, headers, value} object per event, " +
			"new ones as they come, until interrupted. Without --bus-url the bus of a running `docstream dev` is found in <data-dir>/dev.json.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			names := strings.Split(args[0], ",")
			for i, n := range names {
				if n = strings.TrimSpace(n); !strings.Contains(n, ".") {
					n = "cdc." + n
				}
				names[i] = n
			}
			topic := strings.Join(names, ",")
			url, err := findBusURL(busURL, dataDir)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			b, err := dialBus(ctx, url)
			if err != nil {
				return err
			}
			defer b.Close()
			start := bus.Start{Kind: bus.StartNew}
			switch {
			case cmd.Flags().Changed("after-lsn"):
				start = bus.Start{Kind: bus.StartAfterLSN, LSN: afterLSN}
			case fromBeginning:
				start = bus.Start{Kind: bus.StartBeginning}
			}
			return tailEvents(ctx, b, topic, start, key, limit, e.stdout)
		},
	}
	fs := tail.Flags()
	fs.StringVar(&busURL, "bus-url", "", "bus to read: nats://… or kafka://…; default: the running dev system's (from <data-dir>/dev.json)")
	fs.StringVar(&dataDir, "data-dir", "./var", "where `docstream dev` keeps dev.json")
	fs.BoolVar(&fromBeginning, "from-beginning", false, "start with the oldest event the bus retains (default: only new events)")
	fs.Uint64Var(&afterLSN, "after-lsn", 0, "start with the first event whose LSN is above this one")
	fs.StringVar(&key, "key", "", "only events of this row id")
	fs.IntVar(&limit, "max", 0, "stop after this many events (0: run until interrupted)")
	cmd.AddCommand(tail)
	return cmd
}

// findBusURL is the --bus-url flag (or BUS_URL) or the bus of the running
// dev system.
func findBusURL(flag, dataDir string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	st, err := app.ReadDevState(dataDir)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no --bus-url and no %s: start `docstream dev` or pass --bus-url nats://… / kafka://…", app.DevStatePath(dataDir))
	}
	if err != nil {
		return "", err
	}
	if st.BusURL == "" {
		return "", fmt.Errorf("%s has no bus_url (was dev started with --bus-listen \"\"?)", app.DevStatePath(dataDir))
	}
	return st.BusURL, nil
}

func dialBus(ctx context.Context, url string) (bus.Bus, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch {
	case strings.HasPrefix(url, "kafka://"):
		seeds, err := buskafka.ParseURL(url)
		if err != nil {
			return nil, err
		}
		return buskafka.Connect(ctx, seeds, buskafka.Options{})
	case strings.HasPrefix(url, "nats://"), strings.HasPrefix(url, "tls://"):
		return busnats.Connect(ctx, url, busnats.Options{})
	}
	return nil, fmt.Errorf("bus url %q: want nats://… or kafka://…", url)
}

// tailLine is one printed event. Key and value are embedded as JSON when
// they are JSON (they are for CDC events), as strings otherwise.
type tailLine struct {
	Topic    string            `json:"topic"`
	Position uint64            `json:"position"`
	Time     time.Time         `json:"time"`
	Key      json.RawMessage   `json:"key"`
	Headers  map[string]string `json:"headers,omitempty"`
	Value    json.RawMessage   `json:"value"`
}

func asJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

// tailEvents prints events of topic until ctx is done or limit events.
func tailEvents(ctx context.Context, b bus.Bus, topic string, start bus.Start, key string, limit int, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	n := 0
	err := b.Broadcast(ctx, topic, start, func(_ context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			if key != "" {
				var k change.Key
				if json.Unmarshal(m.Key, &k) != nil || k.ID != key {
					if string(m.Key) != key {
						continue
					}
				}
			}
			line := tailLine{Topic: m.Topic, Position: m.Position, Time: m.Time.UTC(), Key: asJSON(m.Key), Headers: m.Headers, Value: asJSON(m.Value)}
			if err := enc.Encode(line); err != nil {
				cancel()
				return nil // stdout closed (| head): stop
			}
			n++
			if limit > 0 && n >= limit {
				cancel()
				return nil
			}
		}
		return nil
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
