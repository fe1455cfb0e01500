package document

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gocloud.dev/blob"

	blobstore "github.com/docstream/docstream/internal/blob"
)

// Journal makes content that Upload wrote without an fsync durable after
// the fact. Such content was committed with a copy in
// documents.content_journal, in the transaction of its document row: the
// create was acknowledged on PostgreSQL's commit, whose WAL fsync is shared
// by every concurrent commit, instead of on its blob's own fsyncs, which
// on ext4 wait for a journal commit of the file system each batch.
//
// Until its entry is settled a blob may not survive a power loss; its
// entry does. Run settles entries in the background: syncs their blobs in
// batches and deletes the entries. Recover, run before the service
// answers after a start, settles every entry left by a crash, checking its
// blob first and rewriting it from the entry where it is missing or torn.
// Every settling holds its entries locked (Store.settleJournal), so
// instances sharing a bucket and a database settle each entry once, and a
// delete of the document waits for it.
type Journal struct {
	store *Store
	blobs *blobstore.Bucket
	log   *slog.Logger
}

// Journal is the service's content journal, to recover at start, run, and
// flush at shutdown.
func (s *Service) Journal() *Journal { return &Journal{store: s.store, blobs: s.blobs, log: s.log} }

// JournalFlushEvery is how often the journal's entries are settled. Each
// flush costs one transaction and one batch of fsyncs (its blobs' files,
// sidecars and directories, in parallel: one file system journal commit),
// however many entries it holds, so longer is cheaper; the entries waiting
// are bytes in PostgreSQL and in the page cache, and recovery after a crash
// checks each of them.
const JournalFlushEvery = 250 * time.Millisecond

// journalBatch bounds the entries settled in one transaction: one batch
// of fsyncs and one delete.
const journalBatch = 500

// Run flushes the journal every interval until ctx ends. A failed flush is
// logged and tried again at the next tick: the entries stay until their
// blobs are durable.
func (j *Journal) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := j.Flush(ctx); err != nil && ctx.Err() == nil {
			j.log.ErrorContext(ctx, "content journal: flush failed; its entries stay for the next one", "err", err)
		}
	}
}

// Flush settles every entry committed before it was called: syncs the
// entries' blobs and deletes the entries. When a batch's sync fails (or a
// blob is gone), the batch's blobs are written again from their entries and
// synced: after a failed fsync the page cache may hold bytes the disk never
// got, and a second fsync would not say so.
func (j *Journal) Flush(ctx context.Context) error {
	for {
		n, err := j.store.settleJournal(ctx, journalBatch, false, j.sync)
		if err != nil && ctx.Err() == nil {
			j.log.WarnContext(ctx, "content journal: syncing a batch failed; rewriting its blobs from the journal", "err", err)
			n, err = j.store.settleJournal(ctx, journalBatch, true, func(entries []journalEntry) error {
				if _, err := j.rewrite(ctx, entries); err != nil {
					return err
				}
				return j.sync(entries)
			})
		}
		if err != nil || n < journalBatch {
			return err
		}
	}
}

// Recover settles every entry, checking each blob against its entry and
// rewriting the ones a power loss lost or tore. It returns how many it
// rewrote. It runs before the service answers: until then a read could
// find a torn blob behind a committed row.
func (j *Journal) Recover(ctx context.Context) (rewritten int, err error) {
	for {
		n, err := j.store.settleJournal(ctx, journalBatch, true, func(entries []journalEntry) error {
			var bad []journalEntry
			for _, e := range entries {
				if !j.intact(ctx, e) {
					bad = append(bad, e)
				}
			}
			n, err := j.rewrite(ctx, bad)
			rewritten += n
			if err != nil {
				return err
			}
			return j.sync(entries)
		})
		if err != nil {
			return rewritten, fmt.Errorf("content journal: recover: %w", err)
		}
		if n < journalBatch {
			if rewritten > 0 {
				j.log.WarnContext(ctx, "content journal: rewrote blobs lost or torn by a crash", "blobs", rewritten)
			}
			return rewritten, nil
		}
	}
}

// intact says whether e's blob reads back as e's bytes, its sidecar with
// e's content type.
func (j *Journal) intact(ctx context.Context, e journalEntry) bool {
	r, err := j.blobs.NewReader(ctx, e.Key, nil)
	if err != nil {
		return false
	}
	defer r.Close()
	h := sha256.New()
	if _, err := r.WriteTo(h); err != nil {
		return false
	}
	return r.ContentType() == e.ContentType && hex.EncodeToString(h.Sum(nil)) == e.SHA256
}

func (j *Journal) sync(entries []journalEntry) error {
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = e.Key
	}
	return j.blobs.SyncKeys(keys)
}

// rewrite writes each entry's blob again from the entry, replacing what
// is there at once (fileblob's temporary file and rename): a reader sees
// the old bytes or the new, which are the same bytes when the old were
// whole. An entry whose bytes are not those its sha256 names (a damaged
// or tampered row) is not written: that would put bytes the document
// never had behind its content_sha256. It is logged and settled with the
// rest (its blob stays as it is; the entry cannot repair it). It returns
// how many blobs it wrote.
func (j *Journal) rewrite(ctx context.Context, entries []journalEntry) (written int, err error) {
	var errs []error
	for _, e := range entries {
		if sum := sha256.Sum256(e.Bytes); hex.EncodeToString(sum[:]) != e.SHA256 {
			j.log.ErrorContext(ctx, "content journal: an entry's bytes do not match its sha256; its blob is not rewritten from it",
				"key", e.Key, "sha256", e.SHA256, "bytes_sha256", hex.EncodeToString(sum[:]), "bytes", len(e.Bytes))
			continue
		}
		if err := j.blobs.WriteAll(ctx, e.Key, e.Bytes, &blob.WriterOptions{ContentType: e.ContentType}); err != nil {
			errs = append(errs, fmt.Errorf("rewrite %s: %w", e.Key, err))
			continue
		}
		written++
	}
	return written, errors.Join(errs...)
}
