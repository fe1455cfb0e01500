package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/gowebpki/jcs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testKey is the key every test in this package signs with.
var testKey = func() *audit.Signer {
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	return audit.NewSigner(ed25519.NewKeyFromSeed(seed))
}()

func keys() map[string]ed25519.PublicKey {
	return map[string]ed25519.PublicKey{testKey.KeyID: testKey.Public()}
}

func init() { audit.SetSigner(testKey) }

func newPoolB(b *testing.B) *pgxpool.Pool {
	b.Helper()
	pool, err := postgres.Open(context.Background(), testenv.Database(b), 20)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// chainB is a one-entry chain for benchmarks.
func chainB(b *testing.B, pool *pgxpool.Pool) string {
	b.Helper()
	id := uuid.NewString()
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		return audit.Append(context.Background(), tx, audit.Entry{DocumentID: id, Type: audit.TypeCreated, Actor: "user:alice"})
	})
	if err != nil {
		b.Fatal(err)
	}
	return id
}

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(context.Background(), testenv.Database(t), 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func appendOne(t *testing.T, pool *pgxpool.Pool, e audit.Entry) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error { return audit.Append(context.Background(), tx, e) })
	if err != nil {
		t.Fatalf("append %s: %v", e.Type, err)
	}
}

func verify(t *testing.T, pool *pgxpool.Pool, id string) *audit.Result {
	t.Helper()
	l, err := audit.Read(context.Background(), pool, id)
	if err != nil {
		t.Fatal(err)
	}
	return audit.Verify(l, keys())
}

// chain appends a created entry and n-1 more, returning the document id.
func chain(t *testing.T, pool *pgxpool.Pool, n int) string {
	t.Helper()
	id := uuid.NewString()
	appendOne(t, pool, audit.Entry{DocumentID: id, Type: audit.TypeCreated, Actor: "user:alice", IP: "192.0.2.1",
		UserAgent: "curl/8", Data: map[string]any{"content_sha256": strings.Repeat("ab", 32), "title": "contract"}})
	for i := 2; i <= n; i++ {
		appendOne(t, pool, audit.Entry{DocumentID: id, Type: audit.TypeStatusChanged, Actor: "user:alice",
			Data: map[string]any{"from": "created", "to": "sent", "n": i}})
	}
	return id
}

func TestAChainOfEntriesVerifiesAndItsHeadIsSigned(t *testing.T) {
	pool := newPool(t)
	id := chain(t, pool, 4)
	res := verify(t, pool, id)
	if !res.Valid || res.Entries != 4 || !res.Signed || res.Head == nil || res.Head.Seq != 4 || res.HistoryUnknownBefore != "" {
		t.Fatalf("verify: %+v", res)
	}
	l, err := audit.Read(context.Background(), pool, id)
	if err != nil {
		t.Fatal(err)
	}
	if l.Entries[0].PrevHash != audit.ZeroHash || l.Entries[1].PrevHash != l.Entries[0].Hash || l.Head.Hash != l.Entries[3].Hash {
		t.Fatalf("chain links: %+v", l.Entries)
	}
	if l.Entries[0].KeyID != testKey.KeyID || l.Entries[0].IP != "192.0.2.1" || l.Entries[0].UserAgent != "curl/8" {
		t.Fatalf("entry 1: %+v", l.Entries[0])
	}
	// The same log verified with another key is refused: the head's
	// signature is what ties the trail to this server.
	_, other, _ := ed25519.GenerateKey(nil)
	if res := audit.Verify(l, map[string]ed25519.PublicKey{testKey.KeyID: other.Public().(ed25519.PublicKey)}); res.Valid {
		t.Fatalf("verified with the wrong key: %+v", res)
	}
}

// Each tampering done directly in PostgreSQL is detected and the entry
// named.
func TestTamperingInPostgresIsDetectedAndNamed(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	cases := []struct {
		name     string
		tamper   string // SQL with $1 = document id
		seq      int64
		contains string
	}{
		{"an updated middle entry", `UPDATE audit.entries SET data = '{"from":"created","n":3,"to":"signed"}' WHERE document_id = $1 AND seq = 3`, 3, "changed"},
		{"an updated actor", `UPDATE audit.entries SET actor = 'user:mallory' WHERE document_id = $1 AND seq = 2`, 2, "changed"},
		{"a deleted middle entry", `DELETE FROM audit.entries WHERE document_id = $1 AND seq = 2`, 2, "missing"},
		{"a deleted newest entry", `DELETE FROM audit.entries WHERE document_id = $1 AND seq = 5`, 5, "newest entries deleted"},
		{"a deleted newest entry and a head rolled back to the one before", `WITH d AS (DELETE FROM audit.entries WHERE document_id = $1 AND seq = 5) UPDATE audit.heads SET seq = 4, hash = (SELECT hash FROM audit.entries WHERE document_id = $1 AND seq = 4) WHERE document_id = $1`, 4, "signature does not verify"},
		{"a deleted head", `DELETE FROM audit.heads WHERE document_id = $1`, 5, "head"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := chain(t, pool, 5)
			if res := verify(t, pool, id); !res.Valid {
				t.Fatalf("before tampering: %+v", res)
			}
			if _, err := pool.Exec(ctx, c.tamper, id); err != nil {
				t.Fatal(err)
			}
			res := verify(t, pool, id)
			if res.Valid || res.FirstBroken == nil || res.FirstBroken.Seq != c.seq || !strings.Contains(res.Reason, c.contains) {
				t.Fatalf("after %s: %+v (first broken %+v), want entry %d broken, %q", c.name, res, res.FirstBroken, c.seq, c.contains)
			}
		})
	}
}

// A rewritten entry whose hash was recomputed (by someone who knows the
// format but not the key) breaks the link to the next one.
func TestARecomputedHashBreaksTheNextLink(t *testing.T) {
	pool := newPool(t)
	id := chain(t, pool, 3)
	l, err := audit.Read(context.Background(), pool, id)
	if err != nil {
		t.Fatal(err)
	}
	r := l.Entries[1]
	r.Actor = "user:mallory"
	if r.Hash, err = audit.HashOf(r); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), `UPDATE audit.entries SET actor = $2, hash = $3 WHERE document_id = $1 AND seq = 2`, id, r.Actor, r.Hash); err != nil {
		t.Fatal(err)
	}
	res := verify(t, pool, id)
	if res.Valid || res.FirstBroken.Seq != 3 || !strings.Contains(res.Reason, "entry 2 was replaced") {
		t.Fatalf("verify: %+v %+v", res, res.FirstBroken)
	}
}

// Parallel appends to one document are serialised by the head lock: every
// entry has its own seq and the chain has no fork.
func TestParallelAppendsDoNotForkTheChain(t *testing.T) {
	pool := newPool(t)
	id := chain(t, pool, 1)
	const writers, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				errs <- pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
					return audit.Append(context.Background(), tx, audit.Entry{DocumentID: id, Type: audit.TypeSigned, Actor: "user:s", Data: map[string]any{"w": w, "i": i}})
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	res := verify(t, pool, id)
	if !res.Valid || res.Entries != 1+writers*each || res.Head.Seq != 1+writers*each {
		t.Fatalf("verify: %+v", res)
	}
}

// Parallel first appends (no head row yet) also serialise.
func TestParallelFirstAppendsDoNotFork(t *testing.T) {
	pool := newPool(t)
	id := uuid.NewString()
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
				return audit.Append(context.Background(), tx, audit.Entry{DocumentID: id, Type: audit.TypeSigned, Actor: "user:s"})
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	res := verify(t, pool, id)
	// One genesis entry, then the six.
	if !res.Valid || res.Entries != 7 || res.HistoryUnknownBefore == "" {
		t.Fatalf("verify: %+v", res)
	}
}

// A document inserted by SQL (or created before the audit) gets a genesis
// entry on its first audited change: valid, with its history before
// unknown.
func TestADocumentWithoutHistoryGetsAGenesisEntry(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	id := uuid.NewString()
	if _, err := pool.Exec(ctx, `INSERT INTO documents.documents (id, title, status, created_by, owner, content_sha256)
		VALUES ($1, 'by sql', 'sent', 'a@example.com', 'user:alice', $2)`, id, strings.Repeat("cd", 32)); err != nil {
		t.Fatal(err)
	}
	appendOne(t, pool, audit.Entry{DocumentID: id, Type: audit.TypeStatusChanged, Actor: "user:alice", Data: map[string]any{"to": "signed"}})
	res := verify(t, pool, id)
	if !res.Valid || res.Entries != 2 || res.HistoryUnknownBefore == "" || !strings.Contains(res.Reason, "history before") {
		t.Fatalf("verify: %+v", res)
	}
	l, _ := audit.Read(ctx, pool, id)
	if g := l.Entries[0]; g.Type != audit.TypeGenesis || !strings.Contains(string(g.Data), strings.Repeat("cd", 32)) || !strings.Contains(string(g.Data), `"owner":"user:alice"`) {
		t.Fatalf("genesis: %+v %s", g, g.Data)
	}
}

// Seal keeps a signed checkpoint; deleting entries back past it is caught
// even when the head is rolled back with them.
func TestSealKeepsACheckpointThatVerifies(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	id := chain(t, pool, 3)
	var cp audit.Checkpoint
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) (err error) { cp, err = audit.Seal(ctx, tx, id); return err })
	if err != nil {
		t.Fatal(err)
	}
	if cp.Seq != 3 || cp.KeyID != testKey.KeyID || cp.Signature == "" {
		t.Fatalf("checkpoint %+v", cp)
	}
	msg, _ := audit.Message(&cp)
	if res := verify(t, pool, id); !res.Valid || len(msg) == 0 {
		t.Fatalf("verify: %+v", res)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM audit.entries WHERE document_id = $1 AND seq = 3`, id); err != nil {
		t.Fatal(err)
	}
	if res := verify(t, pool, id); res.Valid || res.FirstBroken.Seq != 3 {
		t.Fatalf("verify after truncation: %+v", res)
	}
}

// Without a key, heads are written unsigned, and such a trail is not
// valid: nothing in it would show its newest entries deleted.
func TestWithoutAKeyHeadsAreUnsignedAndNotValid(t *testing.T) {
	pool := newPool(t)
	audit.SetSigner(nil)
	t.Cleanup(func() { audit.SetSigner(testKey) })
	id := chain(t, pool, 2)
	res := verify(t, pool, id)
	if res.Valid || res.Signed || res.FirstBroken == nil || res.FirstBroken.Seq != 2 || !strings.Contains(res.Reason, "head is unsigned") {
		t.Fatalf("verify: %+v", res)
	}
}

// The RFC 8785 test vectors in testdata/jcs canonicalize to their expected
// bytes (the library the hashes rely on is checked, not trusted).
func TestJCSVectors(t *testing.T) {
	inputs, err := filepath.Glob("testdata/jcs/*.input.json")
	if err != nil || len(inputs) < 5 {
		t.Fatalf("vectors: %v %v", inputs, err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".input.json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.Replace(in, ".input.", ".expected.", 1))
			if err != nil {
				t.Fatal(err)
			}
			got, err := jcs.Transform(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("canonical form\n got %s\nwant %s", got, want)
			}
		})
	}
}

// The forgeries open to someone who can write to PostgreSQL but does not
// hold the key: each makes verification answer invalid, naming why.
func TestForgedHeadsAndCheckpointsAreRefused(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	other := audit.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize)))
	// signedBy is a checkpoint of entry seq of document id signed by s.
	signedBy := func(t *testing.T, s *audit.Signer, id string, seq int64) audit.Checkpoint {
		t.Helper()
		var hash string
		if err := pool.QueryRow(ctx, `SELECT hash FROM audit.entries WHERE document_id = $1 AND seq = $2`, id, seq).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		cp := audit.Checkpoint{DocumentID: id, Seq: seq, Hash: hash, KeyID: s.KeyID, SignedAt: "2026-11-30T10:00:00.000000Z"}
		msg, err := audit.Message(&cp)
		if err != nil {
			t.Fatal(err)
		}
		cp.Signature = s.Sign(msg)
		return cp
	}
	insert := func(t *testing.T, id string, cp audit.Checkpoint) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO audit.checkpoints (document_id, seq, hash, key_id, signed_at, signature)
			VALUES ($1, $2, $3, $4, $5, $6)`, id, cp.Seq, cp.Hash, cp.KeyID, cp.SignedAt, cp.Signature); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name     string
		tamper   func(t *testing.T, id string)
		seq      int64
		contains string
	}{
		{"the newest entry deleted and the head rolled back with an empty key id", func(t *testing.T, id string) {
			execSQL(t, pool, `WITH d AS (DELETE FROM audit.entries WHERE document_id = $1 AND seq = 5)
				UPDATE audit.heads SET seq = 4, key_id = '', signature = '',
					hash = (SELECT hash FROM audit.entries WHERE document_id = $1 AND seq = 4) WHERE document_id = $1`, id)
		}, 4, "head is unsigned"},
		{"the head stripped of its signature", func(t *testing.T, id string) {
			execSQL(t, pool, `UPDATE audit.heads SET key_id = '', signature = '' WHERE document_id = $1`, id)
		}, 5, "head is unsigned"},
		{"the newest entry deleted and the head re-signed by a key that is not published", func(t *testing.T, id string) {
			cp := signedBy(t, other, id, 4)
			execSQL(t, pool, `WITH d AS (DELETE FROM audit.entries WHERE document_id = $1 AND seq = 5)
				UPDATE audit.heads SET seq = 4, hash = $2, key_id = $3, signature = $4 WHERE document_id = $1`, id, cp.Hash, cp.KeyID, cp.Signature)
		}, 4, "not among the published keys"},
		{"a checkpoint signed by a key that is not published", func(t *testing.T, id string) {
			insert(t, id, signedBy(t, other, id, 3))
		}, 3, "not among the published keys"},
		{"an unsigned checkpoint", func(t *testing.T, id string) {
			cp := signedBy(t, testKey, id, 3)
			cp.KeyID, cp.Signature = "", ""
			insert(t, id, cp)
		}, 3, "checkpoint is unsigned"},
		{"a checkpoint signed by the server for another document", func(t *testing.T, id string) {
			// The other document's genuine checkpoint, its hash made to
			// match this trail: the signature covers the document id.
			b := chain(t, pool, 5)
			cp := signedBy(t, testKey, b, 3)
			execSQL(t, pool, `INSERT INTO audit.checkpoints (document_id, seq, hash, key_id, signed_at, signature)
				SELECT $1, 3, hash, $2, $3, $4 FROM audit.entries WHERE document_id = $1 AND seq = 3`, id, cp.KeyID, cp.SignedAt, cp.Signature)
		}, 3, "signature does not verify"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := chain(t, pool, 5)
			if res := verify(t, pool, id); !res.Valid {
				t.Fatalf("before tampering: %+v", res)
			}
			c.tamper(t, id)
			res := verify(t, pool, id)
			if res.Valid || res.FirstBroken == nil || res.FirstBroken.Seq != c.seq || !strings.Contains(res.Reason, c.contains) {
				t.Fatalf("after %s: %+v (first broken %+v), want entry %d broken, %q", c.name, res, res.FirstBroken, c.seq, c.contains)
			}
		})
	}
}

// A trail rewritten whole without a key (every entry's key id emptied and
// its hash recomputed, the head unsigned) is refused too: an unsigned head
// proves nothing about the newest entries.
func TestATrailRewrittenUnsignedIsRefused(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	id := chain(t, pool, 4)
	l, err := audit.Read(ctx, pool, id)
	if err != nil {
		t.Fatal(err)
	}
	l.Entries = l.Entries[:3]
	prev := audit.ZeroHash
	for _, r := range l.Entries {
		r.KeyID, r.PrevHash = "", prev
		if r.Hash, err = audit.HashOf(r); err != nil {
			t.Fatal(err)
		}
		prev = r.Hash
	}
	l.Head = &audit.Checkpoint{DocumentID: id, Seq: 3, Hash: prev, SignedAt: l.Entries[2].At}
	res := audit.Verify(l, keys())
	if res.Valid || res.FirstBroken == nil || res.FirstBroken.Seq != 3 || !strings.Contains(res.Reason, "head is unsigned") {
		t.Fatalf("verify: %+v %+v", res, res.FirstBroken)
	}
}

func execSQL(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

// The limit of a head kept in the same database (documented in
// docs/architecture.md): the newest entry deleted and a head the server
// genuinely signed earlier put back verifies, because nothing left in the
// database names the deleted entry. A checkpoint kept elsewhere does.
func TestAReplayedOlderSignedHeadIsCaughtOnlyByAHeadKeptElsewhere(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	id := chain(t, pool, 4)
	earlier, err := audit.Read(ctx, pool, id)
	if err != nil {
		t.Fatal(err)
	}
	appendOne(t, pool, audit.Entry{DocumentID: id, Type: audit.TypeDownloaded, Actor: "user:alice"})
	later, err := audit.Read(ctx, pool, id)
	if err != nil {
		t.Fatal(err)
	}
	h := earlier.Head
	execSQL(t, pool, `WITH d AS (DELETE FROM audit.entries WHERE document_id = $1 AND seq = 5)
		UPDATE audit.heads SET seq = $2, hash = $3, key_id = $4, signed_at = $5, signature = $6 WHERE document_id = $1`,
		id, h.Seq, h.Hash, h.KeyID, h.SignedAt, h.Signature)
	if res := verify(t, pool, id); !res.Valid {
		t.Fatalf("a replayed signed head is expected to pass the trail's own checks: %+v", res)
	}
	// The verifier that kept the later head (an export, the certificate)
	// sees the rollback.
	l, err := audit.Read(ctx, pool, id)
	if err != nil {
		t.Fatal(err)
	}
	res := audit.VerifySince(l, keys(), later.Head)
	if res.Valid || res.FirstBroken == nil || res.FirstBroken.Seq != 5 || !strings.Contains(res.Reason, "rolled back") {
		t.Fatalf("verify since the later head: %+v %+v", res, res.FirstBroken)
	}
	if res := audit.VerifySince(later, keys(), earlier.Head); !res.Valid {
		t.Fatalf("a trail that grew past a head kept earlier: %+v", res)
	}
}

// A truncation laundered by the server's next append: the newest entry
// deleted and the head rewritten unsigned (or with a signature of its
// own making), then a change appended as usual. The server signs the new
// head, but it records the head it continued from, and verification (Go
// and the independent verifier) refuses the trail, naming that entry.
func TestATruncatedTrailContinuedByTheServerStaysInvalid(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	for _, c := range []struct{ name, sig string }{{"an unsigned head", ""}, {"a head with a made-up signature", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 64))}} {
		t.Run(c.name, func(t *testing.T) {
			id := chain(t, pool, 5)
			keyID := testKey.KeyID
			if c.sig == "" {
				keyID = ""
			}
			execSQL(t, pool, `WITH d AS (DELETE FROM audit.entries WHERE document_id = $1 AND seq = 5)
				UPDATE audit.heads SET seq = 4, key_id = $2, signature = $3,
					hash = (SELECT hash FROM audit.entries WHERE document_id = $1 AND seq = 4) WHERE document_id = $1`, id, keyID, c.sig)
			appendOne(t, pool, audit.Entry{DocumentID: id, Type: audit.TypeDownloaded, Actor: "user:alice"})
			res := verify(t, pool, id)
			if res.Valid || res.FirstBroken == nil || res.FirstBroken.Seq != 5 || res.FirstBroken.Type != audit.TypeContinued || !strings.Contains(res.Reason, "may have been deleted") {
				t.Fatalf("verify: %+v %+v", res, res.FirstBroken)
			}
			l, err := audit.Read(ctx, pool, id)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			testenv.WriteJSON(t, filepath.Join(dir, "export.json"), l)
			testenv.WriteJSON(t, filepath.Join(dir, "keys.json"), audit.KeySet{Keys: []audit.PublicKey{audit.PublicKeyOf(testKey.Public())}})
			if out, code := runPython(t, filepath.Join(dir, "export.json"), filepath.Join(dir, "keys.json")); code != 1 || !strings.Contains(out, `"first_broken": 5`) {
				t.Fatalf("python verify: exit %d\n%s", code, out)
			}
		})
	}
	// A head signed by a key published only for verification (after a
	// rotation) is continued without a mark.
	id := chain(t, pool, 2)
	newKey := audit.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{12}, ed25519.SeedSize)))
	audit.SetSigner(newKey)
	audit.SetVerifyKeys([]ed25519.PublicKey{testKey.Public()})
	t.Cleanup(func() { audit.SetSigner(testKey); audit.SetVerifyKeys(nil) })
	appendOne(t, pool, audit.Entry{DocumentID: id, Type: audit.TypeDownloaded, Actor: "user:alice"})
	l, err := audit.Read(ctx, pool, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 3 || l.Entries[2].Type != audit.TypeDownloaded {
		t.Fatalf("entries after a rotation: %d, newest %s", len(l.Entries), l.Entries[len(l.Entries)-1].Type)
	}
}
