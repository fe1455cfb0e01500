package document

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// gRPC server metrics, named and labelled as go-grpc-prometheus and
// go-grpc-middleware's prometheus provider name theirs, so their dashboards
// and alerts work unchanged. The document service's RPCs are all unary.
var (
	grpcStarted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "grpc_server_started_total",
		Help: "RPCs started on the server.",
	}, []string{"grpc_type", "grpc_service", "grpc_method"})
	grpcHandled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "grpc_server_handled_total",
		Help: "RPCs completed on the server, by gRPC status code.",
	}, []string{"grpc_type", "grpc_service", "grpc_method", "grpc_code"})
	grpcSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "grpc_server_handling_seconds",
		Help:    "Time the server took to handle an RPC.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
	}, []string{"grpc_type", "grpc_service", "grpc_method"})
)

// metricsInterceptor counts and times every unary call.
func metricsInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		svc, method := splitMethod(info.FullMethod)
		grpcStarted.WithLabelValues("unary", svc, method).Inc()
		start := time.Now()
		resp, err := handler(ctx, req)
		grpcHandled.WithLabelValues("unary", svc, method, status.Code(err).String()).Inc()
		grpcSeconds.WithLabelValues("unary", svc, method).Observe(time.Since(start).Seconds())
		return resp, err
	}
}

// splitMethod splits "/pkg.Service/Method".
func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}
