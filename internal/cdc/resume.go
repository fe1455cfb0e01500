package cdc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/change"
)

// The engine's high-water mark.
//
// PostgreSQL persists a logical slot's confirmed position only at
// checkpoints, and the engine reports it only every StatusInterval, so
// after a restart the slot replays transactions the bus already holds.
// JetStream's duplicate window drops them only within its window (2
// minutes by default). So the engine keeps its own high-water mark, on the
// bus itself, and reads it back at every start:
//
//   - The last watermark on cdc.watermarks, W: every transaction committed
//     before W is on the bus (a watermark is published only once everything
//     before it is acked). Replayed transactions committed before W are
//     skipped whole.
//   - The events stored with a commit LSN at or above W (at most what was in
//     flight: a pipeline of batches, or one large transaction): a replayed
//     event among them is skipped, one. So a restart at any later time
//     publishes nothing twice and the stream's commit_lsn does not go back.
//     An event missing there while events of later transactions are stored
//     (a publish lost with a broken connection while later ones got
//     through) is published, marked bus.HeaderLate.
//
// LSNs compare only within one PostgreSQL history, so watermarks carry the
// system identifier and timeline (IDENTIFY_SYSTEM). A database restored from
// a backup, a failed-over standby or another cluster has another one (or
// its WAL is behind the mark): the engine then refuses to run (a fatal
// error naming the remedy) rather than dropping the new history's changes
// as "already published".

// source is the PostgreSQL history the engine reads.
type source struct {
	systemID string
	timeline string
}

// resumePoint is what the bus holds when streaming starts.
type resumePoint struct {
	mark   uint64                 // transactions committed before it are on the bus
	last   uint64                 // highest commit LSN stored at or above mark
	stored func(bus.Message) bool // nil: nothing to look up
}

// ErrSourceMismatch is the cause of the fatal error Run returns when the
// bus's high-water mark belongs to another PostgreSQL history.
var ErrSourceMismatch = fmt.Errorf("cdc: the bus's change stream belongs to another PostgreSQL history")

// resume identifies the database, reads the bus's high-water mark and
// checks that they belong together.
func (e *Engine) resume(ctx context.Context, repl *pgconn.PgConn, log *slog.Logger) (resumePoint, error) {
	id, err := pglogrepl.IdentifySystem(ctx, repl)
	if err != nil {
		return resumePoint{}, fmt.Errorf("cdc: identify system: %w", err)
	}
	e.src = source{systemID: id.SystemID, timeline: strconv.Itoa(int(id.Timeline))}
	rb, ok := e.bus.(bus.Resumer)
	if !ok || !strings.HasPrefix(bus.TopicWatermarks, e.cfg.TopicPrefix+".") {
		log.Warn("the bus cannot read back what it holds (or the topics are not in the watermarks' stream): after a restart, " +
			"transactions after the slot's confirmed position may be published again")
		return resumePoint{}, nil
	}
	topics := make([]string, len(e.cfg.Tables))
	for i, t := range e.cfg.Tables {
		_, name, _ := strings.Cut(t, ".")
		topics[i] = e.cfg.TopicPrefix + "." + name
	}
	r, err := rb.Resume(ctx, topics, bus.TopicWatermarks)
	if err != nil {
		return resumePoint{}, fmt.Errorf("cdc: read back the bus's high-water mark: %w", err)
	}
	if !r.HasMark {
		return resumePoint{stored: r.Stored, last: r.Last}, nil
	}
	w := bus.Cursor(r.Mark)
	sys, tl := r.Mark.Headers[bus.HeaderSystemID], r.Mark.Headers[bus.HeaderTimeline]
	switch {
	case sys != "" && (sys != e.src.systemID || tl != e.src.timeline):
		return resumePoint{}, e.mismatch(log, fmt.Sprintf("the bus holds changes up to LSN %s of PostgreSQL system %s timeline %s, but the database is system %s timeline %s",
			LSN(w), sys, tl, e.src.systemID, e.src.timeline))
	case w > uint64(id.XLogPos):
		return resumePoint{}, e.mismatch(log, fmt.Sprintf("the bus holds changes up to LSN %s, but the database's WAL ends at %s",
			LSN(w), id.XLogPos))
	}
	if sys == "" {
		log.Info("the bus's last watermark names no PostgreSQL system (written by an older engine); trusting it")
	}
	log.Info("resuming after the bus's high-water mark", "mark", LSN(w), "stored_after_mark", r.Tail, "last_commit", LSN(r.Last))
	return resumePoint{mark: w, last: r.Last, stored: r.Stored}, nil
}

// mismatch logs and returns the fatal error of a bus from another history.
func (e *Engine) mismatch(log *slog.Logger, what string) error {
	remedy := fmt.Sprintf("The database was restored from a backup, failed over, or is another cluster, and LSNs of different histories do not compare: "+
		"streaming now would drop its changes as already published. If this database is the right one, the bus and everything built from it "+
		"(search index, consumer groups) describe the old history: stop docstream, delete the bus's %s stream "+
		"(embedded bus: <data-dir>/nats; external NATS: `nats stream rm %s`), the search index and the consumer groups, "+
		"drop the replication slot %s if it exists, and start again: the engine takes a fresh snapshot of every row and the consumers rebuild from it "+
		"(docs/architecture.md, \"Re-snapshot\"). Otherwise point the engine at the original database.",
		"CDC", "CDC", e.cfg.Slot)
	log.Error("cdc engine refuses to start: "+what, "remedy", remedy)
	return &fatalError{fmt.Errorf("%w: %s. %s", ErrSourceMismatch, what, remedy)}
}

// publishMark publishes a watermark: everything up to lsn is on the bus.
// With wait false, on a bus that can, it only sends it: a watermark the bus
// then loses costs nothing (the next one supersedes it, and a restart
// finds the events after an older one stored), so the confirmer does not
// wait a round trip and a disk sync for each.
func (e *Engine) publishMark(ctx context.Context, lsn uint64, wait bool) error {
	wm, _ := json.Marshal(change.Watermark{LSN: lsn, TsMs: time.Now().UnixMilli()})
	m := bus.Message{Topic: bus.TopicWatermarks, Key: []byte(e.cfg.Slot), Value: wm,
		Headers: map[string]string{bus.HeaderLSN: strconv.FormatUint(lsn, 10),
			bus.HeaderSystemID: e.src.systemID, bus.HeaderTimeline: e.src.timeline}}
	var err error
	if a, ok := e.bus.(asyncPublisher); ok && !wait {
		_, err = a.PublishAsync(ctx, m)
	} else {
		err = e.bus.Publish(ctx, m)
	}
	if err != nil {
		return fmt.Errorf("cdc: publish watermark: %w", err)
	}
	return nil
}
