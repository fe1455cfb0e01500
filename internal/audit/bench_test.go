package audit_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/docstream/docstream/internal/audit"
)

// BenchmarkAppend is one audited change on the general path (PATCH,
// shares, signatures): a transaction that locks the head, checks its
// signature, writes the entry and the newly signed head, and commits.
// Serial, one document.
func BenchmarkAppend(b *testing.B) {
	pool := newPoolB(b)
	ctx := context.Background()
	id := chainB(b, pool)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			return audit.Append(ctx, tx, audit.Entry{DocumentID: id, Type: audit.TypeStatusChanged, Actor: "user:alice", Data: map[string]any{"n": i}})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloorRawTransaction is the floor of BenchmarkAppend: the same
// transaction shape with one trivial statement.
func BenchmarkFloorRawTransaction(b *testing.B) {
	pool := newPoolB(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `SELECT 1`)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHeadSignatureCheck is the CPU the head check adds to each
// append: the head's canonical form and one Ed25519 verification, what
// lockHead runs through checkSignature.
func BenchmarkHeadSignatureCheck(b *testing.B) {
	cp := audit.Checkpoint{DocumentID: "0190c5d4-0000-7000-8000-000000000001", Seq: 7, Hash: audit.ZeroHash, KeyID: testKey.KeyID, SignedAt: "2026-12-01T04:00:00.000000Z"}
	msg, err := audit.Message(&cp)
	if err != nil {
		b.Fatal(err)
	}
	sig, _ := base64.StdEncoding.DecodeString(testKey.Sign(msg))
	pub := testKey.Public()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := audit.Message(&cp)
		if err != nil || !ed25519.Verify(pub, m, sig) {
			b.Fatal("does not verify")
		}
	}
}
