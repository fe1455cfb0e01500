package document

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// A create whose caller went away may have committed all the same (the
// server commits, then the client's cancel or a lost connection turns the
// answer into an error): its content must stay, or a committed document
// points at nothing. Only a failure that certainly wrote nothing, or an
// uncertain one with no row behind it, removes the content.
func TestAnUncertainCreateFailureKeepsCommittedContent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	upload := func() *Upload {
		t.Helper()
		u, err := e.svc.Upload(ctx, "text/plain", strings.NewReader("the terms"), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	exists := func(u *Upload) bool {
		t.Helper()
		ok, err := e.bucket.Exists(ctx, u.Key)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	committed := upload()
	if _, _, err := e.svc.store.Insert(ctx, &Document{ID: committed.ID, Title: "t", ContentType: committed.ContentType, ContentSize: committed.Size,
		S3Key: committed.Key, Status: StatusCreated, CreatedBy: "a@company.com", ContentSHA256: committed.SHA256}, nil); err != nil {
		t.Fatal(err)
	}
	e.svc.discardUnlessCommitted(ctx, committed, context.Canceled)
	if !exists(committed) {
		t.Fatal("the content of a committed row was removed after an uncertain error")
	}

	lost := upload()
	e.svc.discardUnlessCommitted(ctx, lost, context.Canceled)
	if exists(lost) {
		t.Fatal("an uncertain failure without a row kept its content")
	}

	refused := upload()
	e.svc.discardUnlessCommitted(ctx, refused, &pgconn.PgError{Code: "23505"})
	if exists(refused) {
		t.Fatal("a failure PostgreSQL answered kept its content")
	}
}
