// Package audit is the per-document audit trail: an append-only,
// hash-chained log in PostgreSQL (schema audit) whose head is signed with
// the server's Ed25519 key, so that anyone holding the public key can
// verify a document's history offline (Verify, `docstream verify`).
//
// # Contract for callers (document, signature, signing requests)
//
//	audit.Append(ctx, tx, audit.Entry{DocumentID: id, Type: audit.TypeSigned, Actor: …, Data: …})
//
// Append runs in the caller's transaction, so an entry commits with the
// change it records or not at all. It locks the document's head row
// (audit.heads) FOR UPDATE: appends to one document are serialised until
// the caller commits, and parallel writers never fork the chain; appends to
// different documents do not wait for each other. Call it after the
// statements that take the caller's own row locks, and keep the transaction
// short: the head lock is held until commit. A document with no trail yet
// (created before this feature, or inserted by SQL) first gets a genesis
// entry (TypeGenesis) recording the document as it is, and verification
// says "valid, history before <time> unknown".
//
// New(ctx, …) builds an Entry whose Actor, IP and UserAgent come from the
// request (auth.FromContext and WithClient); callers without a request set
// them themselves. Data must be JSON-encodable; it is stored in RFC 8785
// (JCS) canonical form. Put hashes, ids and decisions in it, never tokens.
//
// Seal(ctx, tx, id) signs the current head and keeps it as a checkpoint
// (audit.checkpoints): the final hash of a completed signing request.
//
// Every entry's hash is SHA-256 over its canonical form (Record.Canonical);
// the head (and each sealed checkpoint) is an Ed25519 signature over the
// canonical form of {document_id, seq, hash, key_id, signed_at, purpose}
// (Checkpoint.Message). The signer is the process's key (SetSigner); without
// one, heads are recorded unsigned and verification says so.
package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gowebpki/jcs"
	"github.com/jackc/pgx/v5"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/postgres"
)

// Entry types. Others (signing-request events) are the callers' own, in
// the same dotted form.
const (
	TypeGenesis       = "audit.genesis"
	TypeCreated       = "document.created"
	TypeUpdated       = "document.updated"
	TypeStatusChanged = "document.status_changed"
	TypeShared        = "document.shared"
	TypeUnshared      = "document.unshared"
	TypeDownloaded    = "document.downloaded"
	TypeDeleted       = "document.deleted"
	TypeSigned        = "signature.created"
	// TypeContinued is written before an entry appended to a chain whose
	// head did not verify with the published keys; its data holds that
	// head (see lockHead).
	TypeContinued = "audit.continued_from_unverified_head"
)

// Entry is what a caller appends. Actor is a principal key ("user:<sub>",
// "apikey:<id>", "service:<name>") or "anonymous".
type Entry struct {
	DocumentID, Type, Actor, IP, UserAgent string
	Data                                   map[string]any
}

// Record is an entry as stored: Entry plus its place in the chain.
type Record = api.AuditEntry

// ZeroHash is the prev_hash of the first entry of a chain.
var ZeroHash = strings.Repeat("0", 64)

// TimeFormat is how times are written in entries and checkpoints: what a
// timestamptz holds (microseconds), always UTC.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// Version is the format of the canonical forms ("v" in each).
const Version = 1

// Canonical is the RFC 8785 form of every field of r but Hash: what Hash
// is the SHA-256 of.
func Canonical(r *Record) ([]byte, error) {
	data := r.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	raw, err := json.Marshal(map[string]any{
		"v": Version, "document_id": r.DocumentID, "seq": r.Seq, "type": r.Type, "actor": r.Actor,
		"at": r.At, "ip": r.IP, "user_agent": r.UserAgent, "data": data, "prev_hash": r.PrevHash, "key_id": r.KeyID,
	})
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

// HashOf is the hex SHA-256 of Canonical(r).
func HashOf(r *Record) (string, error) {
	c, err := Canonical(r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// Checkpoint is a signed statement of a chain's head.
type Checkpoint = api.AuditCheckpoint

// CheckpointPurpose separates checkpoint signatures from anything else the
// key could ever sign.
const CheckpointPurpose = "docstream-audit-checkpoint"

// Message is what a checkpoint's signature covers: the RFC 8785 form of
// its fields (Signature aside) and CheckpointPurpose.
func Message(c *Checkpoint) ([]byte, error) {
	raw, err := json.Marshal(map[string]any{
		"v": Version, "purpose": CheckpointPurpose, "document_id": c.DocumentID, "seq": c.Seq,
		"hash": c.Hash, "key_id": c.KeyID, "signed_at": c.SignedAt,
	})
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

// signer is the process's key: set once at start (SetSigner), read by
// every Append and Seal.
var signer atomic.Pointer[Signer]

// SetSigner makes s (nil: none) the key heads and checkpoints are signed
// with in this process.
func SetSigner(s *Signer) {
	keysMu.Lock()
	defer keysMu.Unlock()
	signer.Store(s)
	publishKeyMap()
}

// CurrentSigner is the key set by SetSigner, or nil.
func CurrentSigner() *Signer { return signer.Load() }

// verifyKeys are the public halves of keys that signed before a rotation:
// published so that heads and checkpoints they signed still verify, never
// used to sign.
var verifyKeys atomic.Pointer[[]ed25519.PublicKey]

// SetVerifyKeys publishes keys (besides the signer's) for verification
// only: the keys of --audit-verify-keys.
func SetVerifyKeys(keys []ed25519.PublicKey) {
	keysMu.Lock()
	defer keysMu.Unlock()
	verifyKeys.Store(&keys)
	publishKeyMap()
}

// keyMap is the published keys by key id, as Verify takes them: built
// when the keys are set, not per append (a key id is a SHA-256 of the
// key). keysMu orders the setters, so that the map follows the last of
// them.
var (
	keyMap atomic.Pointer[map[string]ed25519.PublicKey]
	keysMu sync.Mutex
)

func publishKeyMap() {
	m := map[string]ed25519.PublicKey{}
	if s := CurrentSigner(); s != nil {
		m[s.KeyID] = s.Public()
	}
	if old := verifyKeys.Load(); old != nil {
		for _, pub := range *old {
			m[KeyIDOf(pub)] = pub
		}
	}
	keyMap.Store(&m)
}

type clientKey struct{}

type client struct{ ip, userAgent string }

// WithClient records the requesting client's address and user agent for
// the entries New builds from ctx.
func WithClient(ctx context.Context, ip, userAgent string) context.Context {
	return context.WithValue(ctx, clientKey{}, client{ip: ip, userAgent: userAgent})
}

// Actor is the principal key of ctx's caller, "anonymous" without one.
func Actor(ctx context.Context) string {
	if k := auth.FromContext(ctx).Key(); k != "" {
		return k
	}
	return "anonymous"
}

// New is an entry by ctx's caller (Actor, and the client WithClient saw).
func New(ctx context.Context, documentID, typ string, data map[string]any) Entry {
	c, _ := ctx.Value(clientKey{}).(client)
	return Entry{DocumentID: documentID, Type: typ, Actor: Actor(ctx), IP: c.ip, UserAgent: c.userAgent, Data: data}
}

// Limits of the stored columns; longer values are cut (a user agent is
// evidence, not input to refuse a change over).
const (
	maxType      = 64
	maxActor     = 300
	maxIP        = 64
	maxUserAgent = 512
)

func cut(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// now is the clock of entries (a variable for tests).
var now = func() time.Time { return time.Now() }

// Append adds e to its document's chain in tx (see the package comment).
func Append(ctx context.Context, tx pgx.Tx, e Entry) error {
	_, err := appendEntry(ctx, tx, e)
	return err
}

// appendEntry is Append returning the stored record.
func appendEntry(ctx context.Context, tx pgx.Tx, e Entry) (*Record, error) {
	if e.DocumentID == "" || e.Type == "" {
		return nil, apperr.E(apperr.Internal, "audit: an entry needs a document id and a type")
	}
	if e.Actor == "" {
		e.Actor = "anonymous"
	}
	data, err := canonicalData(e.Data)
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "internal error")
	}
	seq, prev, err := lockHead(ctx, tx, e.DocumentID)
	if err != nil {
		return nil, err
	}
	if seq == 0 && e.Type != TypeCreated {
		// No trail: the document predates the audit or was written by SQL.
		g, err := genesis(ctx, tx, e.DocumentID)
		if err != nil {
			return nil, err
		}
		if seq, prev, err = write(ctx, tx, g, 1, prev); err != nil {
			return nil, err
		}
	}
	r := &Record{DocumentID: e.DocumentID, Type: cut(e.Type, maxType), Actor: cut(e.Actor, maxActor),
		IP: cut(e.IP, maxIP), UserAgent: cut(e.UserAgent, maxUserAgent), Data: data}
	if _, _, err := write(ctx, tx, r, seq+1, prev); err != nil {
		return nil, err
	}
	return r, nil
}

func canonicalData(d map[string]any) (json.RawMessage, error) {
	if d == nil {
		return json.RawMessage("{}"), nil
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("audit: data: %w", err)
	}
	c, err := jcs.Transform(raw)
	if err != nil {
		return nil, fmt.Errorf("audit: data: %w", err)
	}
	return c, nil
}

// lockHead takes the document's head row lock, creating the row (seq 0)
// when the chain has none, and returns the newest seq and hash.
//
// Before a chain is extended, its head's signature is checked with the
// published keys: the server signs every head it writes, so one that does
// not verify was written by someone else (the newest entries deleted and
// the head rewritten to name the one before). Extending it silently would
// sign over the truncation and make the trail verify again; instead an
// entry of type TypeContinued records the head as found, and Verify
// refuses the trail unless that head verifies with the keys it is given.
func lockHead(ctx context.Context, tx pgx.Tx, id string) (seq int64, hash string, err error) {
	sel := `SELECT seq, hash, key_id, ` + fmt.Sprintf(timeSQL, "signed_at") + `, signature FROM audit.heads WHERE document_id = $1 FOR UPDATE`
	var h Checkpoint
	err = tx.QueryRow(ctx, sel, id).Scan(&h.Seq, &h.Hash, &h.KeyID, &h.SignedAt, &h.Signature)
	if errors.Is(err, pgx.ErrNoRows) {
		// A first append: concurrent ones wait here for the row's inserter
		// to commit (ON CONFLICT), then lock the row it left.
		if _, err = tx.Exec(ctx, `INSERT INTO audit.heads (document_id, seq, hash, signed_at)
			VALUES ($1, 0, $2, now()) ON CONFLICT (document_id) DO NOTHING`, id, ZeroHash); err != nil {
			return 0, "", postgres.Error(err, "audit head of document "+id)
		}
		err = tx.QueryRow(ctx, sel, id).Scan(&h.Seq, &h.Hash, &h.KeyID, &h.SignedAt, &h.Signature)
	}
	if err != nil {
		return 0, "", postgres.Error(err, "audit head of document "+id)
	}
	if h.Seq == 0 || CurrentSigner() == nil {
		return h.Seq, h.Hash, nil
	}
	h.DocumentID = id
	why := checkSignature(&h, *keyMap.Load())
	if why == "" {
		return h.Seq, h.Hash, nil
	}
	data, err := canonicalData(map[string]any{"head": h, "reason": "the head this entry continues from " + why})
	if err != nil {
		return 0, "", apperr.Wrap(apperr.Internal, err, "internal error")
	}
	c := &Record{DocumentID: id, Type: TypeContinued, Actor: "system", Data: data}
	return write(ctx, tx, c, h.Seq+1, h.Hash)
}

// write stores r as entry seq after prev and moves the signed head to it.
func write(ctx context.Context, tx pgx.Tx, r *Record, seq int64, prev string) (int64, string, error) {
	s := CurrentSigner()
	r.Seq, r.PrevHash, r.At = seq, prev, now().UTC().Truncate(time.Microsecond).Format(TimeFormat)
	if s != nil {
		r.KeyID = s.KeyID
	}
	h, err := HashOf(r)
	if err != nil {
		return 0, "", apperr.Wrap(apperr.Internal, err, "internal error")
	}
	r.Hash = h
	cp, err := sign(s, r.DocumentID, r.Seq, r.Hash, r.At)
	if err != nil {
		return 0, "", err
	}
	_, err = tx.Exec(ctx, `WITH e AS (
	INSERT INTO audit.entries (document_id, seq, type, actor, at, ip, user_agent, data, prev_hash, hash, key_id)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11))
UPDATE audit.heads SET seq = $2, hash = $10, key_id = $11, signed_at = $5, signature = $12 WHERE document_id = $1`,
		r.DocumentID, r.Seq, r.Type, r.Actor, r.At, r.IP, r.UserAgent, string(r.Data), r.PrevHash, r.Hash, r.KeyID, cp.Signature)
	if err != nil {
		return 0, "", postgres.Error(err, "audit entry of document "+r.DocumentID)
	}
	entriesTotal.WithLabelValues(r.Type).Inc()
	return r.Seq, r.Hash, nil
}

// sign makes the checkpoint of (id, seq, hash) at time at, signed when s
// is set.
func sign(s *Signer, id string, seq int64, hash, at string) (*Checkpoint, error) {
	cp := &Checkpoint{DocumentID: id, Seq: seq, Hash: hash, SignedAt: at}
	if s == nil {
		return cp, nil
	}
	defer observeSign(time.Now())
	cp.KeyID = s.KeyID
	msg, err := Message(cp)
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "internal error")
	}
	cp.Signature = s.Sign(msg)
	return cp, nil
}

// genesis is the first entry of a document's chain that began after the
// document: what the document is now, and that its history before is
// unknown.
func genesis(ctx context.Context, tx pgx.Tx, id string) (*Record, error) {
	var doc map[string]any
	err := tx.QueryRow(ctx, `SELECT jsonb_build_object('title', title, 'status', status, 'version', coalesce(version, 1),
		'content_sha256', coalesce(content_sha256, ''), 'content_size', coalesce(content_size, 0), 'created_by', created_by,
		'owner', coalesce(owner, ''), 'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
		FROM documents.documents WHERE id = $1`, id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		doc, err = nil, nil
	}
	if err != nil {
		return nil, postgres.Error(err, "document "+id)
	}
	data := map[string]any{"reason": "the audit trail of this document starts here; its history before is unknown"}
	if doc != nil {
		data["document"] = doc
		if o, _ := doc["owner"].(string); o != "" {
			data["owner"] = o
		}
	}
	c, err := canonicalData(data)
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "internal error")
	}
	return &Record{DocumentID: id, Type: TypeGenesis, Actor: "system", Data: c}, nil
}

// Seal signs the document's current head and keeps it as a checkpoint
// (idempotent per seq). A document without a trail gets its genesis entry
// first. Without a signer (SetSigner) the checkpoint is unsigned.
func Seal(ctx context.Context, tx pgx.Tx, documentID string) (Checkpoint, error) {
	seq, hash, err := lockHead(ctx, tx, documentID)
	if err != nil {
		return Checkpoint{}, err
	}
	if seq == 0 {
		g, err := genesis(ctx, tx, documentID)
		if err != nil {
			return Checkpoint{}, err
		}
		if seq, hash, err = write(ctx, tx, g, 1, hash); err != nil {
			return Checkpoint{}, err
		}
	}
	cp, err := sign(CurrentSigner(), documentID, seq, hash, now().UTC().Truncate(time.Microsecond).Format(TimeFormat))
	if err != nil {
		return Checkpoint{}, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit.checkpoints (document_id, seq, hash, key_id, signed_at, signature)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (document_id, seq) DO UPDATE SET hash = EXCLUDED.hash, key_id = EXCLUDED.key_id,
			signed_at = EXCLUDED.signed_at, signature = EXCLUDED.signature`,
		cp.DocumentID, cp.Seq, cp.Hash, cp.KeyID, cp.SignedAt, cp.Signature)
	if err != nil {
		return Checkpoint{}, postgres.Error(err, "audit checkpoint of document "+documentID)
	}
	return *cp, nil
}

// Begin gives a document without any trail its genesis entry (what the
// document is now; its history before is unknown) and reports whether it
// wrote one. A document with entries or a head is left alone, whatever
// state they are in: Verify judges them.
func Begin(ctx context.Context, tx pgx.Tx, documentID string) (bool, error) {
	var has bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit.heads WHERE document_id = $1)
		OR EXISTS (SELECT 1 FROM audit.entries WHERE document_id = $1)`, documentID).Scan(&has)
	if err != nil || has {
		return false, postgres.Error(err, "audit of document "+documentID)
	}
	seq, hash, err := lockHead(ctx, tx, documentID)
	if err != nil || seq > 0 {
		return false, err // a concurrent first append won
	}
	g, err := genesis(ctx, tx, documentID)
	if err != nil {
		return false, err
	}
	_, _, err = write(ctx, tx, g, 1, hash)
	return err == nil, err
}

// OwnerOf is the principal key the trail records as the document's owner
// (its created or genesis entry), "" when it records none: who may still
// read the trail of a deleted document.
func OwnerOf(l *Log) string {
	for _, r := range l.Entries {
		if r.Type != TypeCreated && r.Type != TypeGenesis {
			continue
		}
		var d struct {
			Owner string `json:"owner"`
		}
		if json.Unmarshal(r.Data, &d) == nil {
			return d.Owner
		}
		return ""
	}
	return ""
}

// PublishedKeys is the key set of /.well-known/docstream-audit-keys: the
// public half of this process's key first, then the keys it signed with
// before a rotation (SetVerifyKeys), each once.
func PublishedKeys() KeySet {
	ks := KeySet{Keys: []PublicKey{}}
	seen := map[string]bool{}
	add := func(pub ed25519.PublicKey) {
		if k := PublicKeyOf(pub); !seen[k.KeyID] {
			seen[k.KeyID] = true
			ks.Keys = append(ks.Keys, k)
		}
	}
	if s := CurrentSigner(); s != nil {
		add(s.Public())
	}
	if old := verifyKeys.Load(); old != nil {
		for _, pub := range *old {
			add(pub)
		}
	}
	return ks
}

// First returns one statement (SQL and arguments) that starts a new
// document's chain with e as entry 1 and its signed head, for the caller
// to send in the batch or transaction that inserts the document: no read,
// no lock, no round trip of its own (the create path's cost). It fails
// with a unique violation if the document already has a head, which a
// freshly generated id never has; Append is the general way.
func First(e Entry) (sql string, args []any, err error) {
	if e.DocumentID == "" || e.Type == "" {
		return "", nil, apperr.E(apperr.Internal, "audit: an entry needs a document id and a type")
	}
	if e.Actor == "" {
		e.Actor = "anonymous"
	}
	data, err := canonicalData(e.Data)
	if err != nil {
		return "", nil, apperr.Wrap(apperr.Internal, err, "internal error")
	}
	s := CurrentSigner()
	r := &Record{DocumentID: e.DocumentID, Seq: 1, Type: cut(e.Type, maxType), Actor: cut(e.Actor, maxActor),
		IP: cut(e.IP, maxIP), UserAgent: cut(e.UserAgent, maxUserAgent), Data: data, PrevHash: ZeroHash,
		At: now().UTC().Truncate(time.Microsecond).Format(TimeFormat)}
	if s != nil {
		r.KeyID = s.KeyID
	}
	if r.Hash, err = HashOf(r); err != nil {
		return "", nil, apperr.Wrap(apperr.Internal, err, "internal error")
	}
	cp, err := sign(s, r.DocumentID, r.Seq, r.Hash, r.At)
	if err != nil {
		return "", nil, err
	}
	// Counted when built: the caller sends it in the document's insert.
	entriesTotal.WithLabelValues(r.Type).Inc()
	return `WITH h AS (
	INSERT INTO audit.heads (document_id, seq, hash, key_id, signed_at, signature)
	VALUES ($1, $2, $10, $11, $5, $12) RETURNING document_id)
INSERT INTO audit.entries (document_id, seq, type, actor, at, ip, user_agent, data, prev_hash, hash, key_id)
SELECT h.document_id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM h`,
		[]any{r.DocumentID, r.Seq, r.Type, r.Actor, r.At, r.IP, r.UserAgent, string(r.Data), r.PrevHash, r.Hash, r.KeyID, cp.Signature}, nil
}
