package httpx

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// ShutdownTimeout bounds how long in-flight requests may drain after SIGTERM.
const ShutdownTimeout = 15 * time.Second

// Serve serves h on ln until ctx is done, then stops accepting, drains
// in-flight requests (up to ShutdownTimeout) and returns. Long-lived
// connections (WebSockets) must watch ctx themselves, or register with
// RegisterOnShutdown through the returned server's hook.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	var draining atomic.Bool
	srv := &http.Server{
		Handler:           drainAware(&draining, h),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	draining.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		log.Warn("http shutdown did not drain in time", "addr", ln.Addr().String(), "err", err)
		_ = srv.Close()
	}
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	return nil
}
