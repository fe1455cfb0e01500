package signature

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/testenv"
)

// TestAShortcutSignatureWaitsForARequestBeingOpened: a signing request is
// being opened (its transaction holds the document row and has inserted
// the request, as Workflow.Create does) when POST /signatures arrives. The
// shortcut's check of open requests is in its insert's transaction, behind
// the document row: it waits, sees the request once it commits, and
// answers 409. (A check before that transaction saw no request and let
// the signature through once the row was free.)
func TestAShortcutSignatureWaitsForARequestBeingOpened(t *testing.T) {
	e := newEnv(t)
	in := e.startWorkflowWith(t, wfOptions{notifier: &LogNotifier{W: io.Discard}})
	doc := e.createDocument(t, "Raced", "terms")
	ctx := context.Background()

	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after commit: a no-op
	if _, err := tx.Exec(ctx, `SELECT 1 FROM documents.documents WHERE id = $1 FOR UPDATE`, doc.ID); err != nil {
		t.Fatal(err)
	}
	rid := mustV7()
	if _, err := tx.Exec(ctx, `INSERT INTO signing.signing_requests (id, document_id, created_by, state, content_sha256, content_key, document_version)
		SELECT $1, id, 'owner@example.com', 'sent', content_sha256, s3_key, version FROM documents.documents WHERE id = $2`, rid, doc.ID); err != nil {
		t.Fatal(err)
	}

	got := make(chan int, 1)
	go func() {
		resp, err := http.Post(in.url+"/signatures", "application/json",
			jsonBody(map[string]any{"document_id": doc.ID, "signer_email": "a@example.com", "signer_name": "A"}))
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	// The shortcut is waiting for the document row.
	testenv.WaitFor(t, "POST /signatures to wait for the document row", func() bool {
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if code := <-got; code != http.StatusConflict {
		t.Fatalf("POST /signatures while a request was being opened: %d, want 409", code)
	}
	if n := e.countSignatures(t, doc.ID); n != 0 {
		t.Fatalf("%d signatures on a document out for signature", n)
	}
}

// TestConcurrentShortcutsAndARequestNeverInterleave: in each round a
// signing request and several POST /signatures start together on a fresh
// document. Whatever wins, no shortcut signature is committed after the
// request: every accepted signature's audit entry comes before the
// request's (the chain is appended in commit order, under the document's
// audit head), and every signature after it was refused with 409.
func TestConcurrentShortcutsAndARequestNeverInterleave(t *testing.T) {
	e := newEnv(t)
	in := e.startWorkflowWith(t, wfOptions{notifier: &LogNotifier{W: io.Discard}})
	const rounds, shortcuts = 8, 4
	var opened, refused, accepted int
	for round := range rounds {
		doc := e.createDocument(t, fmt.Sprintf("Round %d", round), "terms")
		start := make(chan struct{})
		var wg sync.WaitGroup
		codes := make([]int, shortcuts)
		var reqCode int
		for i := range shortcuts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resp, err := http.Post(in.url+"/signatures", "application/json",
					jsonBody(map[string]any{"document_id": doc.ID, "signer_email": fmt.Sprintf("s%d@example.com", i), "signer_name": "S"}))
				if err != nil {
					codes[i] = -1
					return
				}
				resp.Body.Close()
				codes[i] = resp.StatusCode
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := http.Post(in.url+"/documents/"+doc.ID+"/signing-requests", "application/json",
				jsonBody(api.CreateSigningRequest{Recipients: []api.RecipientInput{{Email: "r@example.com", Role: api.RoleSigner}}}))
			if err != nil {
				reqCode = -1
				return
			}
			resp.Body.Close()
			reqCode = resp.StatusCode
		}()
		close(start)
		wg.Wait()

		ok := 0
		for i, c := range codes {
			switch c {
			case http.StatusCreated:
				ok++
			case http.StatusConflict:
				refused++
			default:
				t.Fatalf("round %d: shortcut %d answered %d", round, i, c)
			}
		}
		accepted += ok
		if n := e.countSignatures(t, doc.ID); n != ok {
			t.Fatalf("round %d: %d signatures stored, %d accepted", round, n, ok)
		}
		switch reqCode {
		case http.StatusCreated:
			opened++
		case http.StatusConflict:
			// Shortcuts signed first and the document reads signed: no
			// request can be sent for it, which is no interleaving.
			if ok == 0 {
				t.Fatalf("round %d: the request was refused and no signature was accepted", round)
			}
			continue
		default:
			t.Fatalf("round %d: create request answered %d", round, reqCode)
		}
		trail, err := audit.Read(context.Background(), e.pool, doc.ID)
		if err != nil {
			t.Fatal(err)
		}
		var reqSeq int64
		var sigSeqs []int64
		for _, r := range trail.Entries {
			switch r.Type {
			case "signing_request.created":
				reqSeq = r.Seq
			case audit.TypeSigned:
				sigSeqs = append(sigSeqs, r.Seq)
			}
		}
		if reqSeq == 0 || len(sigSeqs) != ok {
			t.Fatalf("round %d: request entry %d, signature entries %v, %d accepted", round, reqSeq, sigSeqs, ok)
		}
		for _, s := range sigSeqs {
			if s > reqSeq {
				t.Fatalf("round %d: a shortcut signature (entry %d) was committed after the request was opened (entry %d)", round, s, reqSeq)
			}
		}
	}
	t.Logf("%d rounds: %d requests opened, %d shortcuts accepted, %d refused", rounds, opened, accepted, refused)
	if opened == 0 || refused == 0 {
		t.Fatalf("the race was never run both ways: %d requests opened, %d shortcuts refused", opened, refused)
	}
}

func jsonBody(v any) io.Reader {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return bytes.NewReader(b)
}

// TestCancelWhileTheSchedulerRunsAJobOfTheRequest: a scheduler has claimed
// one of the request's jobs (it holds the due row) and is about to lock
// the request, as every job does, when the owner cancels. The cancel does
// not wait for the claimed row (which would deadlock: each holds what the
// other waits for, and PostgreSQL aborted one, a 503); the job then gets
// the request row.
func TestCancelWhileTheSchedulerRunsAJobOfTheRequest(t *testing.T) {
	e := newEnv(t)
	in := e.startWorkflowWith(t, wfOptions{notifier: &LogNotifier{W: io.Discard}})
	doc := e.createDocument(t, "Cancelled", "terms")
	expires := time.Now().Add(time.Hour)
	var req api.SigningRequest
	if code := in.do(t, "POST", "/documents/"+doc.ID+"/signing-requests", api.CreateSigningRequest{ExpiresAt: &expires, ReminderInterval: "30m",
		Recipients: []api.RecipientInput{{Email: "a@example.com", Role: api.RoleSigner}}}, &req); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	ctx := context.Background()
	job, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer job.Rollback(ctx) //nolint:errcheck // after commit: a no-op
	var claimed int
	if err := job.QueryRow(ctx, `SELECT count(*) FROM (SELECT id FROM signing.due WHERE request_id = $1 AND kind IN ('remind', 'expire') FOR UPDATE) c`, req.ID).Scan(&claimed); err != nil || claimed != 2 {
		t.Fatalf("claim the request's jobs: %d %v", claimed, err)
	}
	cancelled := make(chan int, 1)
	go func() {
		resp, err := http.Post(in.url+"/signing-requests/"+req.ID+"/cancel", "application/json", nil)
		if err != nil {
			cancelled <- -1
			return
		}
		resp.Body.Close()
		cancelled <- resp.StatusCode
	}()
	// Either the cancel is done, or it waits for a lock (it held the
	// request row and waited for a claimed job: the deadlock).
	var code int
	testenv.WaitFor(t, "the cancel to end or wait for a lock", func() bool {
		select {
		case code = <-cancelled:
			return true
		default:
		}
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
	// The job locks its request, as lockRequest does.
	_, lockErr := job.Exec(ctx, `SELECT 1 FROM signing.signing_requests WHERE id = $1 FOR NO KEY UPDATE`, req.ID)
	if code == 0 {
		code = <-cancelled
	}
	if code != http.StatusOK || lockErr != nil {
		t.Fatalf("cancel answered %d, the job's lock of the request: %v (want 200 and the lock)", code, lockErr)
	}
	if err := job.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := in.request(t, req.ID); got.State != api.RequestCancelled {
		t.Fatalf("after cancel: %s", got.State)
	}
}
