package document

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/validate"
	pb "github.com/docstream/docstream/proto/documentpb"
)

// GRPCServer is document.DocumentService on port 50051, wire-compatible
// with the reference proto.
type GRPCServer struct {
	pb.UnimplementedDocumentServiceServer
	docs *Service
	log  *slog.Logger
}

// NewGRPCServer returns a grpc.Server with DocumentService, the standard
// health service and server reflection registered. a verifies each call's
// credential (metadata "authorization: Bearer …") by the REST API's rules
// (nil: every caller anonymous). opts come after these (a test's
// interceptor runs inside them). The health service is returned too: the
// caller sets it NOT_SERVING (Shutdown) when it drains.
func NewGRPCServer(docs *Service, log *slog.Logger, a *auth.Authenticator, opts ...grpc.ServerOption) (*grpc.Server, *health.Server) {
	srv := grpc.NewServer(append([]grpc.ServerOption{
		// Metrics outermost: they count the status code the client gets;
		// the error mapping next, so that auth's errors get it too.
		grpc.ChainUnaryInterceptor(metricsInterceptor(), errorInterceptor(log), a.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(a.StreamServerInterceptor()),
	}, opts...)...)
	pb.RegisterDocumentServiceServer(srv, &GRPCServer{docs: docs, log: log})
	hs := health.NewServer()
	hs.SetServingStatus(pb.DocumentService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return srv, hs
}

// errorInterceptor maps *apperr.Error to a gRPC status in one place and
// logs internal failures with their cause.
func errorInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err == nil {
			return resp, nil
		}
		e := apperr.As(err)
		if e.Code == apperr.Internal {
			log.ErrorContext(ctx, "grpc call failed", "method", info.FullMethod, "err", err)
		}
		return nil, status.Error(apperr.GRPCCode(e.Code), e.Message)
	}
}

func (g *GRPCServer) UpdateDocumentStatus(ctx context.Context, req *pb.UpdateDocumentStatusRequest) (*pb.DocumentResponse, error) {
	id, err := validate.ID("document", req.GetDocumentId())
	if err != nil {
		return nil, err
	}
	// The REST API's rule, so that the same status gets the same answer.
	st := req.GetStatus()
	if err := (UpdateInput{Status: &st}).Validate(); err != nil {
		return nil, err
	}
	d, err := g.docs.SetStatus(ctx, id, st)
	if err != nil {
		return nil, err
	}
	return toProto(d), nil
}

func (g *GRPCServer) GetDocument(ctx context.Context, req *pb.GetDocumentRequest) (*pb.DocumentResponse, error) {
	id, err := validate.ID("document", req.GetDocumentId())
	if err != nil {
		return nil, err
	}
	d, err := g.docs.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	return toProto(d), nil
}

// DocumentExists answers exists=false for an unknown id (not an error).
func (g *GRPCServer) DocumentExists(ctx context.Context, req *pb.DocumentExistsRequest) (*pb.DocumentExistsResponse, error) {
	id, err := validate.ID("document", req.GetDocumentId())
	if err != nil {
		return nil, err
	}
	d, levels, err := g.docs.Levels(ctx, id)
	if apperr.CodeOf(err) == apperr.NotFound {
		return &pb.DocumentExistsResponse{Exists: false}, nil
	}
	if err != nil {
		return nil, err
	}
	out := &pb.DocumentExistsResponse{Exists: true, Status: string(d.Status)}
	for _, l := range levels {
		out.Levels = append(out.Levels, string(l))
	}
	return out, nil
}

func toProto(d *Document) *pb.DocumentResponse {
	return &pb.DocumentResponse{
		Id: d.ID, Title: d.Title, Status: string(d.Status), CreatedBy: d.CreatedBy,
		ContentType: d.ContentType, ContentSize: d.ContentSize, S3Key: d.S3Key,
		CreatedAt: d.CreatedAt.String(), UpdatedAt: d.UpdatedAt.String(), Version: d.Version, Owner: d.Owner,
		SigningStatus: string(d.SigningStatus),
	}
}
