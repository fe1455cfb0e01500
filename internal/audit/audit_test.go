package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
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

// Without a key, heads are written unsigned and verification says so.
func TestWithoutAKeyHeadsAreUnsignedAndSaidToBe(t *testing.T) {
	pool := newPool(t)
	audit.SetSigner(nil)
	t.Cleanup(func() { audit.SetSigner(testKey) })
	id := chain(t, pool, 2)
	res := verify(t, pool, id)
	if !res.Valid || res.Signed || len(res.Notes) == 0 || !strings.Contains(res.Notes[0], "unsigned") {
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
