package signature

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"

	"github.com/docstream/docstream/proto/documentpb"
)

type countingDocuments struct {
	documentpb.UnimplementedDocumentServiceServer
	calls atomic.Int64
}

func (c *countingDocuments) GetDocument(context.Context, *documentpb.GetDocumentRequest) (*documentpb.DocumentResponse, error) {
	c.calls.Add(1)
	return &documentpb.DocumentResponse{}, nil
}

// TestDialBalancesOverEveryDocumentAddress: a comma-separated
// --signature-document-grpc spreads calls over every instance (a comma
// list failed before, and one address sent everything to one instance),
// and calls go on succeeding when one instance stops.
func TestDialBalancesOverEveryDocumentAddress(t *testing.T) {
	var fakes [2]*countingDocuments
	var servers [2]*grpc.Server
	var addrs []string
	for i := range fakes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fakes[i], servers[i] = &countingDocuments{}, grpc.NewServer()
		documentpb.RegisterDocumentServiceServer(servers[i], fakes[i])
		go servers[i].Serve(ln)
		t.Cleanup(servers[i].Stop)
		addrs = append(addrs, ln.Addr().String())
	}
	conn, err := Dial(addrs[0] + ", " + addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	docs := documentpb.NewDocumentServiceClient(conn)
	ctx := context.Background()
	for i := range 40 {
		if _, err := docs.GetDocument(ctx, &documentpb.GetDocumentRequest{}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if a, b := fakes[0].calls.Load(), fakes[1].calls.Load(); a == 0 || b == 0 {
		t.Fatalf("calls per instance: %d and %d; want both used", a, b)
	}
	servers[0].GracefulStop()
	before := fakes[1].calls.Load()
	for i := range 20 {
		if _, err := docs.GetDocument(ctx, &documentpb.GetDocumentRequest{}, grpc.WaitForReady(true)); err != nil {
			t.Fatalf("call %d after one instance stopped: %v", i, err)
		}
	}
	if got := fakes[1].calls.Load() - before; got != 20 {
		t.Fatalf("the remaining instance got %d of 20 calls", got)
	}
}
