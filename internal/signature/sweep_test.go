package signature

import (
	"context"
	"net/http"
	"testing"
	"time"

	blobstore "github.com/docstream/docstream/internal/blob"
)

// A signature's object is keyed by the signature id. Deleting the document
// removes its signature rows by cascade and leaves their objects: the
// sweep removes those and keeps the objects of signatures that exist.
func TestSweepCollectsObjectsOfCascadeDeletedSignatures(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	sig := e.startSignature(t, testOptions{})
	gone := e.createDocument(t, "Deleted", "x")
	kept := e.createDocument(t, "Kept", "y")
	ids := map[string]string{}
	for _, d := range []documentJSON{gone, kept} {
		resp, s := sig.sign(t, map[string]any{"document_id": d.ID, "signer_email": "a@b.co", "signer_name": "A", "signature_data": "aW1hZ2U="})
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("sign: %d", resp.StatusCode)
		}
		ids[d.ID] = s.ID
	}
	if _, err := e.pool.Exec(ctx, `DELETE FROM documents.documents WHERE id = $1`, gone.ID); err != nil {
		t.Fatal(err)
	}
	s := blobstore.NewSweeper(e.sigs, Bucket, sig.svc.Ownership(), blobstore.SweepConfig{Rate: 1000}, testLog())
	rep, err := s.Sweep(ctx, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.sigs.Exists(ctx, ids[gone.ID]); ok || rep.Removed != 1 {
		t.Fatalf("object of the cascade-deleted signature: exists %v, removed %d", ok, rep.Removed)
	}
	if ok, _ := e.sigs.Exists(ctx, ids[kept.ID]); !ok {
		t.Fatal("object of an existing signature was swept")
	}
}
