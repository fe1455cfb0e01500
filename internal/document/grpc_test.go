package document

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/logging"
	pb "github.com/docstream/docstream/proto/documentpb"
)

func grpcClient(t *testing.T, e *env) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs, _ := NewGRPCServer(e.svc, logging.Discard(), nil)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestGRPCDocumentServiceWithAGeneratedClient(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cc := grpcClient(t, e)
	c := pb.NewDocumentServiceClient(cc)
	d := e.create(t, "Over gRPC", "hello")

	got, err := c.GetDocument(ctx, &pb.GetDocumentRequest{DocumentId: d.ID})
	if err != nil || got.Id != d.ID || got.Title != "Over gRPC" || got.Status != "created" || got.Version != 1 ||
		got.ContentSize != 5 || got.S3Key != d.S3Key || got.CreatedAt != d.CreatedAt.String() || got.SigningStatus != "" {
		t.Fatalf("GetDocument: %v %v", got, err)
	}
	ex, err := c.DocumentExists(ctx, &pb.DocumentExistsRequest{DocumentId: d.ID})
	if err != nil || !ex.Exists || ex.Status != "created" {
		t.Fatalf("DocumentExists: %v %v", ex, err)
	}
	ex, err = c.DocumentExists(ctx, &pb.DocumentExistsRequest{DocumentId: "0691e72f-799b-7efd-8000-e5c4e1cb7813"})
	if err != nil || ex.Exists {
		t.Fatalf("DocumentExists(unknown): %v %v", ex, err)
	}
	up, err := c.UpdateDocumentStatus(ctx, &pb.UpdateDocumentStatusRequest{DocumentId: d.ID, Status: "signed"})
	if err != nil || up.Status != "signed" || up.Version != 2 {
		t.Fatalf("UpdateDocumentStatus: %v %v", up, err)
	}
	// Idempotent: signing again changes nothing.
	up, err = c.UpdateDocumentStatus(ctx, &pb.UpdateDocumentStatusRequest{DocumentId: d.ID, Status: "signed"})
	if err != nil || up.Version != 2 {
		t.Fatalf("repeated UpdateDocumentStatus: %v %v", up, err)
	}
	// The REST view sees the gRPC change (cache invalidated).
	var rest Document
	e.do(t, "GET", "/documents/"+d.ID, nil, &rest)
	if rest.Status != StatusSigned {
		t.Fatalf("REST after gRPC update: %s", rest.Status)
	}

	cases := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"a bad id is INVALID_ARGUMENT", func() error {
			_, err := c.GetDocument(ctx, &pb.GetDocumentRequest{DocumentId: "nope"})
			return err
		}, codes.InvalidArgument},
		{"an unknown id is NOT_FOUND", func() error {
			_, err := c.GetDocument(ctx, &pb.GetDocumentRequest{DocumentId: "0691e72f-799b-7efd-8000-e5c4e1cb7813"})
			return err
		}, codes.NotFound},
		{"an unknown status is INVALID_ARGUMENT", func() error {
			_, err := c.UpdateDocumentStatus(ctx, &pb.UpdateDocumentStatusRequest{DocumentId: d.ID, Status: "shredded"})
			return err
		}, codes.InvalidArgument},
		{"an illegal transition is FAILED_PRECONDITION", func() error {
			_, err := c.UpdateDocumentStatus(ctx, &pb.UpdateDocumentStatusRequest{DocumentId: d.ID, Status: "created"})
			return err
		}, codes.FailedPrecondition},
		{"updating an unknown id is NOT_FOUND", func() error {
			_, err := c.UpdateDocumentStatus(ctx, &pb.UpdateDocumentStatusRequest{DocumentId: "0691e72f-799b-7efd-8000-e5c4e1cb7813", Status: "signed"})
			return err
		}, codes.NotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := status.Code(tc.call()); got != tc.want {
				t.Fatalf("code %v, want %v", got, tc.want)
			}
		})
	}

	h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: "document.DocumentService"})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
}

// A document's signing_status reaches gRPC callers as it reaches REST ones:
// empty before the document ever had a signing request, the newest
// request's state after (migration 00021's trigger sets it in the
// request's transaction).
func TestGRPCCarriesTheSigningStatus(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := pb.NewDocumentServiceClient(grpcClient(t, e))
	d := e.create(t, "Lease", "terms")
	if got, err := c.GetDocument(ctx, &pb.GetDocumentRequest{DocumentId: d.ID}); err != nil || got.SigningStatus != "" {
		t.Fatalf("before any signing request: %v %v", got, err)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO signing.signing_requests (id, document_id, created_by, state, content_sha256, content_key, document_version)
		VALUES ($1, $2::uuid, 'ann@example.com', 'sent', $3, $2::text || '/content', 1)`, uuid.NewString(), d.ID, strings.Repeat("a", 64)); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetDocument(ctx, &pb.GetDocumentRequest{DocumentId: d.ID})
	if err != nil || got.SigningStatus != string(api.RequestSent) || got.Version != d.Version+1 {
		t.Fatalf("with a sent request: %v %v, want signing_status sent at version %d", got, err, d.Version+1)
	}
	// UpdateDocumentStatus answers the same document, so the signature
	// service's status moves see it too.
	up, err := c.UpdateDocumentStatus(ctx, &pb.UpdateDocumentStatusRequest{DocumentId: d.ID, Status: "sent"})
	if err != nil || up.SigningStatus != string(api.RequestSent) {
		t.Fatalf("UpdateDocumentStatus: %v %v", up, err)
	}
}

func TestGRPCCallsAreCountedByMethodAndCode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := pb.NewDocumentServiceClient(grpcClient(t, e))
	d := e.create(t, "Counted", "x")
	count := func(method, code string) float64 {
		return testutil.ToFloat64(grpcHandled.WithLabelValues("unary", "document.DocumentService", method, code))
	}
	ok, notFound := count("GetDocument", "OK"), count("GetDocument", "NotFound")
	if _, err := c.GetDocument(ctx, &pb.GetDocumentRequest{DocumentId: d.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetDocument(ctx, &pb.GetDocumentRequest{DocumentId: "0691e72f-799b-7efd-8000-e5c4e1cb7813"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown id: %v", err)
	}
	if got := count("GetDocument", "OK") - ok; got != 1 {
		t.Fatalf("grpc_server_handled_total{GetDocument,OK} rose by %v, want 1", got)
	}
	// The code the client got (mapped from the application error), not "Unknown".
	if got := count("GetDocument", "NotFound") - notFound; got != 1 {
		t.Fatalf("grpc_server_handled_total{GetDocument,NotFound} rose by %v, want 1", got)
	}
}
