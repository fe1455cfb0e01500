package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/postgres"
)

// Log is a document's whole trail as GET /documents/{id}/audit answers it
// and `docstream verify --file` reads it: everything Verify needs besides
// the public keys.
type Log = api.AuditLog

// Querier is a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const timeSQL = `to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

// Read returns document id's trail as stored (Entries empty and Head nil
// when it has none).
func Read(ctx context.Context, q Querier, id string) (*Log, error) {
	l := &Log{DocumentID: id, Entries: []*Record{}, Checkpoints: []Checkpoint{}}
	rows, err := q.Query(ctx, `SELECT document_id::text, seq, type, actor, `+fmt.Sprintf(timeSQL, "at")+`, ip, user_agent, data,
		prev_hash, hash, key_id FROM audit.entries WHERE document_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, postgres.Error(err, "audit of document "+id)
	}
	l.Entries, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Record, error) {
		var r Record
		var data string
		err := row.Scan(&r.DocumentID, &r.Seq, &r.Type, &r.Actor, &r.At, &r.IP, &r.UserAgent, &data, &r.PrevHash, &r.Hash, &r.KeyID)
		r.Data = json.RawMessage(data)
		return &r, err
	})
	if err != nil {
		return nil, postgres.Error(err, "audit of document "+id)
	}
	if l.Entries == nil {
		l.Entries = []*Record{}
	}
	var h Checkpoint
	err = q.QueryRow(ctx, `SELECT document_id::text, seq, hash, key_id, `+fmt.Sprintf(timeSQL, "signed_at")+`, signature
		FROM audit.heads WHERE document_id = $1`, id).Scan(&h.DocumentID, &h.Seq, &h.Hash, &h.KeyID, &h.SignedAt, &h.Signature)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return nil, postgres.Error(err, "audit head of document "+id)
	default:
		l.Head = &h
	}
	rows, err = q.Query(ctx, `SELECT document_id::text, seq, hash, key_id, `+fmt.Sprintf(timeSQL, "signed_at")+`, signature
		FROM audit.checkpoints WHERE document_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, postgres.Error(err, "audit checkpoints of document "+id)
	}
	cps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Checkpoint, error) {
		var c Checkpoint
		err := row.Scan(&c.DocumentID, &c.Seq, &c.Hash, &c.KeyID, &c.SignedAt, &c.Signature)
		return c, err
	})
	if err != nil {
		return nil, postgres.Error(err, "audit checkpoints of document "+id)
	}
	if cps != nil {
		l.Checkpoints = cps
	}
	return l, nil
}

// Broken names the first entry verification failed at.
type Broken = api.AuditBroken

// Result is the answer of Verify.
type Result = api.AuditVerification

func breakAt(res *Result, r *Record, seq int64, reason string) *Result {
	res.Valid = false
	res.FirstBroken = &Broken{Seq: seq, Reason: reason}
	if r != nil {
		res.FirstBroken.Type, res.FirstBroken.At = r.Type, r.At
	}
	res.Reason = fmt.Sprintf("entry %d: %s", seq, reason)
	return res
}

// Verify checks a trail: every entry's hash is the hash of its content,
// each follows the one before (seq and prev_hash), none is missing, the
// head names the newest entry, and the head's and every checkpoint's
// signature verifies with keys (by key id). It names the first entry that
// fails.
//
// The head is what detects truncation (deleting the newest entries), so an
// unsigned head, or one whose key is not in keys, is invalid: anyone who
// can write to the table can delete the newest entry and write a head that
// names the one before, but cannot sign it. The same holds for sealed
// checkpoints. This includes trails written by a server without
// --audit-signing-key: nothing in them proves they are whole. A genesis
// entry (a document older than the trail) is written and signed like any
// other, so it verifies. What a signature cannot show is a rollback to an
// older head that was itself genuinely signed (the newest entries deleted
// and a head saved earlier put back): only a head or checkpoint kept
// outside the database (an export, the certificate of completion) shows
// that, by naming an entry the trail no longer has.
func Verify(l *Log, keys map[string]ed25519.PublicKey) *Result {
	res := &Result{Valid: true, DocumentID: l.DocumentID, Entries: len(l.Entries), Head: l.Head}
	entries := append([]*Record(nil), l.Entries...)
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].Seq < entries[j].Seq })
	prev := ZeroHash
	for i, r := range entries {
		want := int64(i + 1)
		switch {
		case r.DocumentID != l.DocumentID:
			return breakAt(res, r, r.Seq, fmt.Sprintf("belongs to document %s", r.DocumentID))
		case r.Seq > want:
			return breakAt(res, nil, want, fmt.Sprintf("missing: the trail goes from entry %d to entry %d (deleted)", want-1, r.Seq))
		case r.Seq < want:
			return breakAt(res, r, r.Seq, "appears twice")
		}
		h, err := HashOf(r)
		if err != nil {
			return breakAt(res, r, r.Seq, "cannot be put in canonical form: "+err.Error())
		}
		if h != r.Hash {
			return breakAt(res, r, r.Seq, "changed: its content does not match its hash")
		}
		if r.PrevHash != prev {
			return breakAt(res, r, r.Seq, fmt.Sprintf("does not follow entry %d: prev_hash is not that entry's hash (entry %d was replaced)", r.Seq-1, r.Seq-1))
		}
		if r.Type == TypeContinued {
			if why := checkContinued(r, prev, keys); why != "" {
				return breakAt(res, r, r.Seq, why)
			}
			res.Notes = append(res.Notes, fmt.Sprintf("entry %d: the server continued from a head it could not verify then, which verifies now", r.Seq))
		}
		prev = r.Hash
	}
	if len(entries) > 0 && entries[0].Type == TypeGenesis {
		res.HistoryUnknownBefore = entries[0].At
		res.Notes = append(res.Notes, "history before "+entries[0].At+" unknown: the trail began after the document")
	}
	var last *Record
	if len(entries) > 0 {
		last = entries[len(entries)-1]
	}
	h := l.Head
	switch {
	case h == nil && last == nil:
		res.Reason = "no audit trail"
		return res
	case h == nil:
		return breakAt(res, last, last.Seq, "the head that names the newest entry is missing")
	case last == nil && h.Seq > 0:
		return breakAt(res, nil, 1, fmt.Sprintf("missing: every entry up to %d (the signed head) was deleted", h.Seq))
	case last != nil && h.Seq > last.Seq:
		return breakAt(res, nil, last.Seq+1, fmt.Sprintf("missing: the signed head is at entry %d but the trail ends at entry %d (newest entries deleted)", h.Seq, last.Seq))
	case last != nil && h.Seq < last.Seq:
		return breakAt(res, last, h.Seq+1, fmt.Sprintf("not covered by the head: the head is at entry %d (entries added outside the log, or the head was rolled back)", h.Seq))
	case last != nil && h.Hash != last.Hash:
		return breakAt(res, last, last.Seq, "the head's hash is not this entry's hash")
	}
	if h.DocumentID != l.DocumentID {
		return breakAt(res, last, h.Seq, "the head belongs to document "+h.DocumentID)
	}
	if why := checkSignature(h, keys); why != "" {
		return breakAt(res, last, h.Seq, "head "+why)
	}
	res.Signed = true
	bySeq := map[int64]*Record{}
	for _, r := range entries {
		bySeq[r.Seq] = r
	}
	for _, c := range l.Checkpoints {
		r := bySeq[c.Seq]
		switch {
		case c.DocumentID != l.DocumentID:
			return breakAt(res, r, c.Seq, "its checkpoint belongs to document "+c.DocumentID)
		case r == nil:
			return breakAt(res, nil, c.Seq, "missing: a sealed checkpoint names it")
		case r.Hash != c.Hash:
			return breakAt(res, r, c.Seq, "its hash is not the one its sealed checkpoint names")
		}
		if why := checkSignature(&c, keys); why != "" {
			return breakAt(res, r, c.Seq, "sealed checkpoint "+why)
		}
	}
	if res.Reason == "" {
		res.Reason = fmt.Sprintf("valid: %d entries, head at entry %d", len(entries), h.Seq)
		if res.HistoryUnknownBefore != "" {
			res.Reason += ", history before " + res.HistoryUnknownBefore + " unknown"
		}
	}
	return res
}

// checkSignature says why c's signature does not hold ("" when it does):
// it is missing, its key is not among keys, or it does not verify.
func checkSignature(c *Checkpoint, keys map[string]ed25519.PublicKey) string {
	if c.Signature == "" {
		return "is unsigned: nothing proves the newest entries were not deleted (written without --audit-signing-key, or its signature removed)"
	}
	pub, known := keys[c.KeyID]
	if !known {
		return fmt.Sprintf("is signed by key %q, which is not among the published keys", c.KeyID)
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil {
		return "signature is not base64"
	}
	msg, err := Message(c)
	if err != nil {
		return "cannot be put in canonical form: " + err.Error()
	}
	if !ed25519.Verify(pub, msg, sig) {
		return "signature does not verify: it was changed, or made for another document or entry"
	}
	return ""
}

// VerifySince is Verify, and checks that the trail still holds a head the
// verifier kept from earlier (an export's head, a certificate's sealed
// checkpoint): its entry is there with the same hash. This is what shows a
// rollback to an older genuinely signed head, which the trail alone
// cannot. The kept head must itself verify with keys.
func VerifySince(l *Log, keys map[string]ed25519.PublicKey, kept *Checkpoint) *Result {
	res := Verify(l, keys)
	if !res.Valid || kept == nil {
		return res
	}
	if kept.DocumentID != l.DocumentID {
		return breakAt(res, nil, kept.Seq, "the head kept earlier belongs to document "+kept.DocumentID)
	}
	if why := checkSignature(kept, keys); why != "" {
		return breakAt(res, nil, kept.Seq, "the head kept earlier "+why)
	}
	var r *Record
	for _, e := range l.Entries {
		if e.Seq == kept.Seq {
			r = e
		}
	}
	switch {
	case r == nil:
		return breakAt(res, nil, kept.Seq, fmt.Sprintf("missing: the trail was rolled back: a head signed at %s names entry %d, the trail ends at entry %d", kept.SignedAt, kept.Seq, res.Entries))
	case r.Hash != kept.Hash:
		return breakAt(res, r, kept.Seq, "rewritten: its hash is not the one a head signed at "+kept.SignedAt+" names")
	}
	res.Notes = append(res.Notes, fmt.Sprintf("holds the head kept earlier (entry %d, signed at %s)", kept.Seq, kept.SignedAt))
	return res
}

// checkContinued judges a TypeContinued entry: the head it records must
// name the entry before it and verify with keys now (it may, when the key
// that signed it was published only later); otherwise entries after that
// one may have been deleted before the chain was continued.
func checkContinued(r *Record, prev string, keys map[string]ed25519.PublicKey) string {
	var d struct {
		Head *Checkpoint `json:"head"`
	}
	if err := json.Unmarshal(r.Data, &d); err != nil || d.Head == nil {
		return "the server continued the trail from a head it could not verify, and does not say which"
	}
	h := d.Head
	if h.DocumentID != r.DocumentID || h.Seq != r.Seq-1 || h.Hash != prev {
		return fmt.Sprintf("the server continued the trail from a head (entry %d) that is not the entry before", h.Seq)
	}
	if why := checkSignature(h, keys); why != "" {
		return fmt.Sprintf("the server continued the trail from entry %d's head, which %s; entries after %d may have been deleted before it", h.Seq, why, h.Seq)
	}
	return ""
}
