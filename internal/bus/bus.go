// Package bus is the one publish/subscribe interface every producer and
// consumer of change events uses. Backends: NATS JetStream (nats/, default,
// embedded or external) and Apache Kafka (kafka/). A process picks one by
// the scheme of --bus-url (internal/app).
package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Topics of the system. Change events go to one topic per table, as the
// reference's Debezium topic routing did.
const (
	TopicDocuments  = "cdc.documents"
	TopicSignatures = "cdc.signatures"
	// TopicExtractions carries documents.extractions: what the extractor
	// made of each document's content (internal/extractor).
	TopicExtractions = "cdc.extractions"
	// TopicSigningRequests and TopicSigningRecipients carry the signing
	// workflow (signing.signing_requests, signing.signing_recipients):
	// every transition of a request or a recipient is one change.
	TopicSigningRequests   = "cdc.signing_requests"
	TopicSigningRecipients = "cdc.signing_recipients"
	// TopicWatermarks carries the WAL position the CDC engine has fully
	// published (see change.Watermark), including idle periods.
	TopicWatermarks = "cdc.watermarks"
)

// DefaultMaxAge is how long the bus keeps events unless told otherwise
// (--bus-max-age; a stream's or topic's retention).
const DefaultMaxAge = 7 * 24 * time.Hour

// Header names set by the CDC engine on every change event.
const (
	HeaderLSN = "lsn" // decimal LSN of the change
	HeaderOp  = "op"  // c, u, d, r
	// HeaderCommitLSN is the decimal LSN of the commit record of the
	// change's transaction (the consistent point for snapshot reads). After
	// a CDC restart a whole transaction is delivered again exactly when its
	// commit LSN is at or above the position the engine had confirmed, so
	// this, not the change's own lsn (transactions interleave), is what
	// tells which changes may come twice.
	HeaderCommitLSN = "commit_lsn"
	// HeaderLate marks an event published after events of later
	// transactions: the CDC engine found it missing from the bus after a
	// restart while events committed after it were stored (a publish lost
	// on a broken connection while later ones got through). It was never
	// delivered before, so consumers must not drop it as a repeat (see
	// Dedup) although its cursor is behind.
	HeaderLate = "late"
	// HeaderSystemID and HeaderTimeline are set on watermarks: the
	// PostgreSQL system identifier and timeline (IDENTIFY_SYSTEM) the
	// engine read the WAL of. LSNs are only comparable within one of them.
	HeaderSystemID = "pg_system_id"
	HeaderTimeline = "pg_timeline"
)

// Message is one event.
type Message struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers map[string]string
	// Set on delivery: the backend's position of the message in its topic
	// (JetStream stream sequence; Kafka offset) and when it was stored.
	Position uint64
	Time     time.Time
	// Partition is the Kafka partition the message was read from (always 0
	// on NATS). Positions are comparable only within one topic and partition.
	Partition int32
}

// Handler processes a batch. Returning nil acknowledges every message in it;
// returning an error leaves them all to be delivered again (at-least-once).
type Handler func(ctx context.Context, msgs []Message) error

// StartKind says where a broadcast subscription begins.
type StartKind int

const (
	StartNew       StartKind = iota // only messages published from now on
	StartBeginning                  // everything the bus still retains
	StartPosition                   // from Start.Position (inclusive)
	StartAfterLSN                   // the first message whose Cursor is > Start.LSN
)

// Cursor is the position of m in commit order: its commit_lsn header, or its
// lsn header when it has none. Messages are published in commit order, so
// the cursor never decreases along a topic, while a change's own lsn can
// (transactions interleave: a change written early may commit late).
// Resuming "after cursor X" therefore skips exactly the transactions
// committed at or before X. 0 when m has neither header.
func Cursor(m Message) uint64 {
	h := m.Headers[HeaderCommitLSN]
	if h == "" {
		h = m.Headers[HeaderLSN]
	}
	v, _ := strconv.ParseUint(h, 10, 64)
	return v
}

// Start is the starting point of a broadcast subscription.
type Start struct {
	Kind     StartKind
	Position uint64
	LSN      uint64
}

// GroupOptions tune a durable group consumer.
type GroupOptions struct {
	MaxBatch int           // most messages handed to the handler at once (default 500)
	MaxWait  time.Duration // longest a partial batch waits for more (default 200ms)
}

// Bus is implemented by every backend.
type Bus interface {
	// Publish stores msgs durably and returns only when the bus has
	// acknowledged all of them. Messages with the same key keep their order.
	Publish(ctx context.Context, msgs ...Message) error
	// Group consumes topic as a member of the named durable group: each
	// message goes to one member, at least once, and the group resumes where
	// it left off. Blocks until ctx is done or a fatal error.
	Group(ctx context.Context, topic, group string, opts GroupOptions, h Handler) error
	// Broadcast delivers every message of topic from start to h in order,
	// for this subscriber alone, keeping no state on the bus. Blocks until
	// ctx is done or a fatal error.
	//
	// topic may be a comma-separated list of topics of one family (see
	// Topics): one subscription then delivers the messages of all of them.
	// Whether they arrive in one order across the topics depends on the
	// backend: NATS keeps a family in one stream and delivers in stream
	// (= publish, = commit for CDC) order, with Position one sequence
	// space across the topics; Kafka keeps only per-partition order, and
	// a StartPosition offset applies to every partition of every topic.
	Broadcast(ctx context.Context, topic string, start Start, h Handler) error
	// Ping checks the connection (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// Resumer is implemented by a bus that can tell a restarted producer what
// it already holds of its change stream (the NATS bus). The CDC engine uses
// it so that a restart at any later time never publishes an event twice.
type Resumer interface {
	// Resume reads the last message of marks (the watermark topic) and every
	// event of topics whose cursor is at or above that watermark's lsn
	// header: those are all that a producer resuming from the watermark may
	// find already stored.
	Resume(ctx context.Context, topics []string, marks string) (Resume, error)
}

// Resume is what the bus holds at the end of a change stream.
type Resume struct {
	// Mark is the last watermark; HasMark is false when there is none.
	Mark    Message
	HasMark bool
	// Tail is the number of events read back, Last the highest cursor among
	// them (0 when none).
	Tail int
	Last uint64
	// Stored reports whether an event with m's topic, lsn header and key is
	// among the events read back.
	Stored func(m Message) bool
}

// Topics joins topics into the topic argument of one Broadcast over all of
// them, e.g. Topics(TopicDocuments, TopicSignatures) =
// "cdc.documents,cdc.signatures". Group takes a single topic only.
func Topics(topics ...string) string { return strings.Join(topics, ",") }

// SplitTopics is the inverse of Topics, for backends: the topics of a
// Broadcast's topic argument, refusing empty and repeated entries.
func SplitTopics(topic string) ([]string, error) {
	parts := strings.Split(topic, ",")
	seen := make(map[string]bool, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("bus: empty topic in %q", topic)
		}
		if seen[p] {
			return nil, fmt.Errorf("bus: topic %q listed twice in %q", p, topic)
		}
		seen[p] = true
		parts[i] = p
	}
	return parts, nil
}

// consumerNameKey is the context key of Named.
type consumerNameKey struct{}

// Named labels the subscriptions (Group, Broadcast) started with the
// returned context as the consumer name, e.g. "indexer": a bus that watches
// its subscriptions (Watcher) reports them under that name in Consumers,
// and in the docstream_bus_consumer_* metrics. Unnamed subscriptions (a
// client's replay, a CLI tail) are watched too but not reported.
func Named(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, consumerNameKey{}, name)
}

// ConsumerName is the name Named put on ctx ("" when none).
func ConsumerName(ctx context.Context) string {
	s, _ := ctx.Value(consumerNameKey{}).(string)
	return s
}

// ConsumerState is what a bus knows of one named subscription of this
// process (readiness, metrics, tests).
type ConsumerState struct {
	Name  string // the Named name
	Topic string
	Group string // "" for a broadcast
	// Pending is how many messages the bus holds for the subscription that
	// were not delivered yet (JetStream num_pending); AckPending, how many
	// were delivered and not acknowledged yet.
	Pending    uint64
	AckPending int
	// LastProgress is when the subscription last delivered a message or was
	// seen caught up (nothing pending); its start before either.
	LastProgress time.Time
	// Stalled is set while nothing progressed for the bus's stall timeout
	// although messages are pending, the subscription is lost, or the bus
	// cannot tell (its stream unavailable). The bus re-subscribes each time
	// a subscription stalls; Stalled clears at the next progress.
	Stalled bool
	// Resubscribes counts the subscriptions the bus replaced (lost, stalled
	// or failed), LastError the reason of the latest.
	Resubscribes int
	LastError    string
}

// Watcher is implemented by a bus that watches its subscriptions and heals
// them (the NATS bus): a subscription that was lost (its consumer deleted,
// its connection's pull requests gone) or stopped progressing while
// messages wait is replaced, and logged; Consumers reports every named one.
type Watcher interface {
	Consumers() []ConsumerState
}

// CheckConsumers is a readiness probe over b's named subscriptions whose
// name is one of names: an error naming each stalled one, or each one not
// subscribed at all. nil when b does not watch its subscriptions.
func CheckConsumers(b Bus, names ...string) error {
	w, ok := b.(Watcher)
	if !ok {
		return nil
	}
	seen := map[string]bool{}
	var problems []string
	for _, c := range w.Consumers() {
		if !slices.Contains(names, c.Name) {
			continue
		}
		seen[c.Name] = true
		if c.Stalled {
			p := fmt.Sprintf("consumer %s of %s stalled: no progress since %s with %d pending", c.Name, c.Topic,
				c.LastProgress.UTC().Format(time.RFC3339), c.Pending)
			if c.LastError != "" {
				p += " (" + c.LastError + ")"
			}
			problems = append(problems, p)
		}
	}
	for _, n := range names {
		if !seen[n] {
			problems = append(problems, "consumer "+n+" is not subscribed")
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
