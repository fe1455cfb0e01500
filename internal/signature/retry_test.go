package signature

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/docstream/docstream/proto/documentpb"
)

// flakyDocs is a gRPC DocumentService in front of the real one that fails
// or stalls the first calls of UpdateDocumentStatus, to exercise the
// deadline and the retries.
type flakyDocs struct {
	documentpb.UnimplementedDocumentServiceServer
	real       documentpb.DocumentServiceClient
	failFirst  int32         // this many updates answer Unavailable
	stallFirst int32         // this many updates outlast the caller's deadline
	stall      time.Duration // how long a stalled update waits
	updates    atomic.Int32
}

func (f *flakyDocs) DocumentExists(ctx context.Context, r *documentpb.DocumentExistsRequest) (*documentpb.DocumentExistsResponse, error) {
	return f.real.DocumentExists(ctx, r)
}

func (f *flakyDocs) UpdateDocumentStatus(ctx context.Context, r *documentpb.UpdateDocumentStatusRequest) (*documentpb.DocumentResponse, error) {
	n := f.updates.Add(1)
	switch {
	case n <= f.failFirst:
		return nil, status.Error(codes.Unavailable, "injected: document service restarting")
	case n <= f.failFirst+f.stallFirst:
		select {
		case <-time.After(f.stall):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return f.real.UpdateDocumentStatus(ctx, r)
}

func (e *env) startFlaky(t *testing.T, f *flakyDocs) string {
	t.Helper()
	conn, err := Dial(e.doc.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f.real = documentpb.NewDocumentServiceClient(conn)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	documentpb.RegisterDocumentServiceServer(gs, f)
	go gs.Serve(ln) //nolint:errcheck // returns when stopped
	t.Cleanup(gs.Stop)
	return ln.Addr().String()
}

func TestStatusUpdateRetriesWithinTheRequest(t *testing.T) {
	cases := []struct {
		name       string
		flaky      *flakyDocs
		wantUpdate UpdateState
		wantCalls  int32 // UpdateDocumentStatus calls made by the request itself
	}{
		{"two refusals as unavailable are retried", &flakyDocs{failFirst: 2}, "applied", 3},
		{"a call past its deadline is retried", &flakyDocs{stallFirst: 1, stall: 5 * time.Second}, "applied", 2},
		{"more failures than retries leave it pending", &flakyDocs{failFirst: 3}, "pending", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			addr := e.startFlaky(t, c.flaky)
			sig := e.startSignature(t, testOptions{docAddr: addr, noRecon: true, callTimeout: 300 * time.Millisecond})
			doc := e.createDocument(t, c.name, "x")
			resp, got := sig.sign(t, map[string]any{"document_id": doc.ID, "signer_email": "a@b.co", "signer_name": "A"})
			if resp.StatusCode != http.StatusCreated || got.DocumentStatusUpdate != c.wantUpdate {
				t.Fatalf("status %d, update %q, want 201 %s", resp.StatusCode, got.DocumentStatusUpdate, c.wantUpdate)
			}
			if n := c.flaky.updates.Load(); n != c.wantCalls {
				t.Errorf("%d UpdateDocumentStatus calls, want %d", n, c.wantCalls)
			}
			want := map[UpdateState]string{"applied": "signed", "pending": "created"}[c.wantUpdate]
			if s := e.documentStatus(t, doc.ID); s != want {
				t.Fatalf("document %q, want %q", s, want)
			}
			if c.wantUpdate == "pending" {
				// The reconciler, started later, finishes the job.
				sig.stop()
				later := e.startSignature(t, testOptions{docAddr: addr})
				e.waitStatus(t, doc.ID, "signed", recovery)
				waitApplied(t, later, []string{got.ID})
			}
		})
	}
}
