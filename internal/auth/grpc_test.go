package auth_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
	pb "github.com/docstream/docstream/proto/documentpb"
)

// whoServer answers GetDocument with the caller's principal key in
// created_by.
type whoServer struct {
	pb.UnimplementedDocumentServiceServer
}

func (whoServer) GetDocument(ctx context.Context, _ *pb.GetDocumentRequest) (*pb.DocumentResponse, error) {
	p := auth.FromContext(ctx)
	return &pb.DocumentResponse{CreatedBy: p.Key(), Status: string(p.Kind)}, nil
}

func grpcServer(t *testing.T, a *auth.Authenticator) string {
	t.Helper()
	mapErr := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := h(ctx, req)
		if err != nil {
			e := apperr.As(err)
			return nil, status.Error(apperr.GRPCCode(e.Code), e.Message)
		}
		return resp, nil
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(mapErr, a.UnaryServerInterceptor()), grpc.ChainStreamInterceptor(a.StreamServerInterceptor()))
	pb.RegisterDocumentServiceServer(srv, whoServer{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func newAuthn(t *testing.T, mode auth.Mode) *auth.Authenticator {
	t.Helper()
	cfg := auth.DefaultConfig()
	cfg.JWTSecret, cfg.Mode = secret, string(mode)
	a, err := auth.New(t.Context(), cfg, fakeKeys{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The attack table on gRPC: the REST rules, by metadata.
func TestGRPCAttackTable(t *testing.T) {
	valid := token(t, secret, claims("alice", time.Hour))
	cases := []struct {
		name     string
		md       []string
		required codes.Code
		open     codes.Code
		who      string
	}{
		{"no credential", nil, codes.Unauthenticated, codes.OK, ""},
		{"a valid token", []string{"authorization", "Bearer " + valid}, codes.OK, codes.OK, "user:alice"},
		{"an expired token", []string{"authorization", "Bearer " + token(t, secret, claims("alice", -time.Hour))}, codes.Unauthenticated, codes.Unauthenticated, ""},
		{"a token of another key", []string{"authorization", "Bearer " + token(t, "another-secret-another-secret-xx", claims("alice", time.Hour))}, codes.Unauthenticated, codes.Unauthenticated, ""},
		{"an API key", []string{"authorization", "Bearer dsk_good_secret"}, codes.OK, codes.OK, "apikey:k1"},
		{"a revoked API key", []string{"authorization", "Bearer dsk_revoked_secret"}, codes.Unauthenticated, codes.Unauthenticated, ""},
	}
	for _, mode := range []auth.Mode{auth.ModeRequired, auth.ModeOpen} {
		addr := grpcServer(t, newAuthn(t, mode))
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		c := pb.NewDocumentServiceClient(conn)
		for _, tc := range cases {
			t.Run(string(mode)+"/"+tc.name, func(t *testing.T) {
				want := tc.required
				if mode == auth.ModeOpen {
					want = tc.open
				}
				ctx := t.Context()
				if tc.md != nil {
					ctx = metadata.AppendToOutgoingContext(ctx, tc.md...)
				}
				resp, err := c.GetDocument(ctx, &pb.GetDocumentRequest{DocumentId: "x"})
				if status.Code(err) != want {
					t.Fatalf("code %v, want %v (%v)", status.Code(err), want, err)
				}
				if err == nil && resp.GetCreatedBy() != tc.who {
					t.Fatalf("principal %q, want %q", resp.GetCreatedBy(), tc.who)
				}
			})
		}
		// Health needs no credential in any mode.
		if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("%s: health: %v", mode, err)
		}
	}
}

// The signature service's client credential: a call made for a request
// forwards that caller's own credential; background work presents the
// service's; an anonymous caller's call presents nothing.
func TestClientCredentialsForwardTheCallerOrNameTheService(t *testing.T) {
	a := newAuthn(t, auth.ModeRequired)
	addr := grpcServer(t, a)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(a.ClientCredentials("signature")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := pb.NewDocumentServiceClient(conn)
	call := func(ctx context.Context) (*pb.DocumentResponse, error) {
		return c.GetDocument(ctx, &pb.GetDocumentRequest{DocumentId: "x"})
	}
	bob := token(t, secret, claims("bob", time.Hour))
	resp, err := call(auth.WithCredential(t.Context(), auth.Credential{Raw: bob}))
	if err != nil || resp.GetCreatedBy() != "user:bob" {
		t.Fatalf("forwarded: %v %v, want user:bob", resp, err)
	}
	resp, err = call(t.Context())
	if err != nil || resp.GetCreatedBy() != "service:signature" || resp.GetStatus() != string(auth.KindService) {
		t.Fatalf("background: %v %v, want service:signature", resp, err)
	}
	if _, err := call(auth.WithCredential(t.Context(), auth.Credential{})); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("anonymous caller in required mode: %v, want Unauthenticated", err)
	}
}
