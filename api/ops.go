package api

import "time"

// Ops is GET /ops on the gateway: the state of the pipeline and the
// services in one answer, for the web application's operations page. It
// is gathered on each call from the services' own /health/ready and
// /metrics (and the realtime service's /stats) at the addresses of the
// module table; a service that cannot be reached is listed with its error
// and the rest is still answered. Numbers a source did not report are
// absent (null), never a made-up zero.
type Ops struct {
	GeneratedAt time.Time `json:"generated_at"`
	// CDC is the change-data-capture engine: its replication slot and how
	// far behind PostgreSQL's WAL it is.
	CDC OpsCDC `json:"cdc"`
	// Bus is the event bus: the last position the realtime service's
	// broadcast consumer (which sees every event) delivered, and each
	// named consumer's backlog.
	Bus OpsBus `json:"bus"`
	// Indexer is the search indexer: the LSN up to which every change is
	// searchable and how far that is behind the CDC engine.
	Indexer OpsIndexer `json:"indexer"`
	// Realtime is the WebSocket service's connections.
	Realtime OpsRealtime `json:"realtime"`
	// Services are every module this gateway knows, in module-table order.
	Services []OpsService `json:"services"`
}

// OpsCDC is the CDC engine's part of Ops.
type OpsCDC struct {
	Slot string `json:"slot,omitempty"`
	// Active: this engine holds the slot (a standby does not).
	Active *bool `json:"active,omitempty"`
	// ConfirmedLSN is the last LSN confirmed to PostgreSQL.
	ConfirmedLSN *uint64 `json:"confirmed_lsn,omitempty"`
	// SlotLagBytes is pg_current_wal_lsn() - confirmed_flush_lsn: WAL not
	// yet published to the bus.
	SlotLagBytes *float64 `json:"slot_lag_bytes,omitempty"`
	// RetainedWALBytes is WAL the slot keeps from being recycled.
	RetainedWALBytes *float64 `json:"retained_wal_bytes,omitempty"`
	// EventsPublished counts change events published since the engine
	// started.
	EventsPublished *float64 `json:"events_published,omitempty"`
}

// OpsBus is the bus's part of Ops.
type OpsBus struct {
	// Position is the bus position of the last event delivered to the
	// realtime service's live consumer, LSN its commit LSN, LastEventAt
	// when it came.
	Position    *uint64    `json:"position,omitempty"`
	LSN         *uint64    `json:"lsn,omitempty"`
	LastEventAt *time.Time `json:"last_event_at,omitempty"`
	// Consumers are the named consumers' backlogs (messages not delivered
	// yet) and whether each is stalled, by consumer name.
	Consumers map[string]OpsConsumer `json:"consumers,omitempty"`
}

// IndexerConsumer is the search indexer's name among OpsBus.Consumers.
const IndexerConsumer = "indexer"

// OpsConsumer is one bus consumer's backlog.
type OpsConsumer struct {
	Pending    float64 `json:"pending"`
	AckPending float64 `json:"ack_pending"`
	Stalled    bool    `json:"stalled"`
}

// OpsIndexer is the indexer's part of Ops.
type OpsIndexer struct {
	// AppliedLSN is the LSN up to which every change is searchable.
	AppliedLSN *uint64 `json:"applied_lsn,omitempty"`
	// LagBytes is the CDC engine's confirmed LSN minus AppliedLSN (WAL
	// bytes; 0 when caught up), when both are known.
	LagBytes *uint64 `json:"lag_bytes,omitempty"`
	// Pending is the indexer consumer's bus backlog (messages).
	Pending *float64 `json:"pending,omitempty"`
}

// OpsRealtime is the realtime service's part of Ops.
type OpsRealtime struct {
	Connections     *int `json:"connections,omitempty"`
	ListSubscribers *int `json:"list_subscribers,omitempty"`
	Documents       *int `json:"documents_with_subscribers,omitempty"`
}

// OpsService is one module as the ops view saw it.
type OpsService struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Ready is its /health/ready status ("ok", "degraded", "unavailable"),
	// or "unreachable" with Error saying why.
	Ready  string                 `json:"ready"`
	Checks map[string]CheckResult `json:"checks,omitempty"`
	Error  string                 `json:"error,omitempty"`
	// Requests and Errors (status >= 500) count HTTP requests since the
	// process started; RequestsPerSecond and ErrorsPerSecond are their
	// rates since the previous GET /ops to this gateway (absent on the
	// first).
	Requests          *float64 `json:"requests,omitempty"`
	Errors            *float64 `json:"errors,omitempty"`
	RequestsPerSecond *float64 `json:"requests_per_second,omitempty"`
	ErrorsPerSecond   *float64 `json:"errors_per_second,omitempty"`
	InFlight          *float64 `json:"in_flight,omitempty"`
	// ConnectionsOpen are the connections its listener holds.
	ConnectionsOpen *float64 `json:"connections_open,omitempty"`
}
