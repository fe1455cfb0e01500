package signature

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/testenv"
)

// How long a document may take to read "signed" once the document service
// is back: reconnect backoff (≤ 1 s) plus reconcile backoff (≤ 0.5 s in
// tests) plus slack for a loaded machine.
const recovery = 15 * time.Second

func TestStatusUpdateIsAppliedWhenTheDocumentServiceComesBack(t *testing.T) {
	e := newEnv(t)
	sig := e.startSignature(t, testOptions{})
	docs := make([]documentJSON, 5)
	for i := range docs {
		docs[i] = e.createDocument(t, fmt.Sprint("Down ", i), "x")
	}
	cancelled := e.createDocument(t, "Cancelled", "x")
	e.setStatus(t, cancelled.ID, "cancelled")

	e.doc.stopGRPC()

	sigIDs := make([]string, len(docs))
	for i, d := range docs {
		resp, got := sig.sign(t, map[string]any{"document_id": d.ID, "signer_email": "a@b.co", "signer_name": "A"})
		if resp.StatusCode != http.StatusCreated || got.DocumentStatusUpdate != "pending" {
			t.Fatalf("sign with the document service down: status %d, update %q: %s", resp.StatusCode, got.DocumentStatusUpdate, readBody(resp))
		}
		sigIDs[i] = got.ID
	}
	// The checks still hold while the document service is down: they fall
	// back to the shared database.
	var er apperr.Body
	if resp := testenv.Do(t, "POST", sig.url+"/signatures", map[string]any{"document_id": uuid.NewString(), "signer_email": "a@b.co", "signer_name": "A"}, &er); resp.StatusCode != 404 {
		t.Errorf("unknown document while down: %d %+v, want 404", resp.StatusCode, er.Error)
	}
	if resp := testenv.Do(t, "POST", sig.url+"/signatures", map[string]any{"document_id": cancelled.ID, "signer_email": "a@b.co", "signer_name": "A"}, &er); resp.StatusCode != 409 {
		t.Errorf("cancelled document while down: %d %+v, want 409", resp.StatusCode, er.Error)
	}
	for _, d := range docs {
		if s := e.documentStatus(t, d.ID); s != "created" {
			t.Fatalf("document %s is %q while the document service is down", d.ID, s)
		}
	}

	e.doc.startGRPC(t)

	for _, d := range docs {
		e.waitStatus(t, d.ID, "signed", recovery)
	}
	// Nothing lost, and every signature now says its update was applied.
	var all []signatureJSON
	testenv.Do(t, "GET", sig.url+"/signatures", nil, &all)
	if len(all) != len(docs) {
		t.Fatalf("%d signatures stored, want %d", len(all), len(docs))
	}
	waitApplied(t, sig, sigIDs)
}

func TestStatusUpdateSurvivesARestartOfTheSignatureService(t *testing.T) {
	e := newEnv(t)
	first := e.startSignature(t, testOptions{})
	docs := make([]documentJSON, 5)
	for i := range docs {
		docs[i] = e.createDocument(t, fmt.Sprint("Restart ", i), "x")
	}
	e.doc.stopGRPC()
	var sigIDs []string
	for _, d := range docs {
		resp, got := first.sign(t, map[string]any{"document_id": d.ID, "signer_email": "a@b.co", "signer_name": "A"})
		if resp.StatusCode != http.StatusCreated || got.DocumentStatusUpdate != "pending" {
			t.Fatalf("sign: status %d, update %q", resp.StatusCode, got.DocumentStatusUpdate)
		}
		sigIDs = append(sigIDs, got.ID)
	}
	// The instance that took the signatures is gone before the document
	// service returns: only what it left in PostgreSQL can finish the job.
	first.stop()
	e.doc.startGRPC(t)
	for _, d := range docs {
		if s := e.documentStatus(t, d.ID); s != "created" {
			t.Fatalf("document %s is %q with no signature service running", d.ID, s)
		}
	}

	second := e.startSignature(t, testOptions{})
	for _, d := range docs {
		e.waitStatus(t, d.ID, "signed", recovery)
	}
	waitApplied(t, second, sigIDs)
}

// Several instances polling one outbox each apply every update (SKIP
// LOCKED spreads the rows; a double apply would be harmless but none is
// lost).
func TestSeveralReconcilersShareTheOutbox(t *testing.T) {
	e := newEnv(t)
	instances := []*sigService{e.startSignature(t, testOptions{}), e.startSignature(t, testOptions{}), e.startSignature(t, testOptions{})}
	docs := make([]documentJSON, 12)
	for i := range docs {
		docs[i] = e.createDocument(t, fmt.Sprint("Shared ", i), "x")
	}
	e.doc.stopGRPC()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sigIDs []string
	for i, d := range docs {
		wg.Go(func() {
			resp, got := instances[i%len(instances)].sign(t, map[string]any{"document_id": d.ID, "signer_email": "a@b.co", "signer_name": "A"})
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("sign: %d", resp.StatusCode)
			}
			mu.Lock()
			sigIDs = append(sigIDs, got.ID)
			mu.Unlock()
		})
	}
	wg.Wait()
	e.doc.startGRPC(t)
	for _, d := range docs {
		e.waitStatus(t, d.ID, "signed", recovery)
	}
	waitApplied(t, instances[0], sigIDs)
}

// An update the document service refuses for good (the document was
// cancelled while the update waited) is not retried forever: the signature
// says it failed and why, and the document keeps its status.
func TestARefusedStatusUpdateIsParkedAsFailed(t *testing.T) {
	e := newEnv(t)
	sig := e.startSignature(t, testOptions{})
	doc := e.createDocument(t, "Cancelled later", "x")
	e.doc.stopGRPC()
	resp, got := sig.sign(t, map[string]any{"document_id": doc.ID, "signer_email": "a@b.co", "signer_name": "A"})
	if resp.StatusCode != http.StatusCreated || got.DocumentStatusUpdate != "pending" {
		t.Fatalf("sign: status %d, update %q", resp.StatusCode, got.DocumentStatusUpdate)
	}
	e.setStatus(t, doc.ID, "cancelled") // through REST, which is still up
	e.doc.startGRPC(t)

	deadline := time.Now().Add(recovery)
	for {
		var s signatureJSON
		testenv.Do(t, "GET", sig.url+"/signatures/"+got.ID, nil, &s)
		if s.DocumentStatusUpdate == "failed" {
			if !strings.Contains(s.DocumentStatusError, "cancelled") {
				t.Errorf("document_status_error %q does not say why", s.DocumentStatusError)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("update still %q after %s, want failed", s.DocumentStatusUpdate, recovery)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := e.documentStatus(t, doc.ID); s != "cancelled" {
		t.Fatalf("document is %q, want cancelled", s)
	}
}

// waitApplied waits for every signature to report its update applied.
func waitApplied(t *testing.T, sig *sigService, ids []string) {
	t.Helper()
	deadline := time.Now().Add(recovery)
	for _, id := range ids {
		for {
			var s signatureJSON
			testenv.Do(t, "GET", sig.url+"/signatures/"+id, nil, &s)
			if s.DocumentStatusUpdate == "applied" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("signature %s: update %q, want applied", id, s.DocumentStatusUpdate)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
