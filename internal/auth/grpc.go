package auth

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/docstream/docstream/internal/logging"
)

// grpcPublic are the gRPC services answered without a credential: health
// checks and reflection (the API's shape, no data).
func grpcPublic(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

// authenticateGRPC is the middleware's rule for a call's metadata
// ("authorization: Bearer …").
func (a *Authenticator) authenticateGRPC(ctx context.Context, fullMethod string) (context.Context, error) {
	if grpcPublic(fullMethod) {
		return ctx, nil
	}
	var raw string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, v := range md.Get("authorization") {
			if scheme, rest, ok := strings.Cut(v, " "); ok && strings.EqualFold(scheme, "Bearer") {
				raw = strings.TrimSpace(rest)
				break
			}
		}
	}
	if raw == "" {
		if a.mode == ModeRequired {
			return nil, errUnauthenticated
		}
		return WithCredential(WithPrincipal(ctx, Anonymous), Credential{}), nil
	}
	p, exp, err := a.verify(ctx, raw)
	if err != nil {
		a.log.DebugContext(ctx, "grpc credential refused", "method", fullMethod, "err", err)
		return nil, err
	}
	logging.SetPrincipal(ctx, p.Key())
	return WithCredential(WithPrincipal(ctx, p), Credential{Raw: raw, Expires: exp}), nil
}

// UnaryServerInterceptor applies Middleware's rules to unary calls. Its
// errors are *apperr.Error: chain it inside the interceptor that maps
// them to a gRPC status. A nil Authenticator lets every call through.
func (a *Authenticator) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if a == nil {
			return handler(ctx, req)
		}
		ctx, err := a.authenticateGRPC(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streams.
func (a *Authenticator) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if a == nil {
			return handler(srv, ss)
		}
		ctx, err := a.authenticateGRPC(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &authStream{ServerStream: ss, ctx: ctx})
	}
}

type authStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *authStream) Context() context.Context { return s.ctx }

// ClientCredentials are the per-RPC credentials of a service's gRPC client
// (grpc.WithPerRPCCredentials): a call made while serving a request
// forwards that caller's own credential, so the called service decides on
// the caller's rights, not the calling service's; a call from background
// work (a context that never went through the middleware or the
// interceptor) presents a service credential naming service. An anonymous
// caller's call (open mode) presents nothing. A nil Authenticator adds
// nothing.
func (a *Authenticator) ClientCredentials(service string) credentials.PerRPCCredentials {
	return perRPC{a: a, service: service}
}

type perRPC struct {
	a       *Authenticator
	service string
}

func (c perRPC) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if c.a == nil {
		return nil, nil
	}
	cred, ok := CredentialFrom(ctx)
	switch {
	case ok && cred.Raw != "":
		return map[string]string{"authorization": "Bearer " + cred.Raw}, nil
	case ok:
		return nil, nil // anonymous caller
	}
	if len(c.a.svcKey) == 0 {
		// No service key (open mode with a JWKS only; required mode
		// refuses to start that way): the call goes anonymous.
		return nil, nil
	}
	raw, err := c.a.ServiceCredential(c.service)
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + raw}, nil
}

// RequireTransportSecurity is false: the services talk over loopback or a
// private network (TLS between them is the deployment's, e.g. a mesh).
func (perRPC) RequireTransportSecurity() bool { return false }
