// Package logging builds the one slog logger shape used everywhere: JSON on
// stderr, with the request ID of the context added to every record.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
)

type ctxKey struct{}

// request is what a request's records are tagged with. The principal is
// learnt after the request ID, deeper in the middleware chain, and must
// reach records logged with the outer context too (the access log), so it
// is set in place.
type request struct {
	id        string
	principal atomic.Pointer[string]
}

// WithRequestID returns ctx carrying the request ID id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, &request{id: id})
}

// RequestID returns the request ID carried by ctx, or "".
func RequestID(ctx context.Context) string {
	if r, ok := ctx.Value(ctxKey{}).(*request); ok {
		return r.id
	}
	return ""
}

// SetPrincipal tags every record of ctx's request, including those logged
// with a parent context of the same request, with the caller's principal
// key ("user:<sub>", "apikey:<id>"; never a credential). No-op outside a
// request (WithRequestID).
func SetPrincipal(ctx context.Context, key string) {
	if r, ok := ctx.Value(ctxKey{}).(*request); ok && key != "" {
		r.principal.Store(&key)
	}
}

func principal(ctx context.Context) string {
	if r, ok := ctx.Value(ctxKey{}).(*request); ok {
		if p := r.principal.Load(); p != nil {
			return *p
		}
	}
	return ""
}

// New returns a JSON logger writing to w at the named level (debug, info,
// warn, error; unknown names mean info).
func New(w io.Writer, level string) *slog.Logger {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	}
	return slog.New(contextHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lv})})
}

// Discard is a logger for tests that do not read logs.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// contextHandler adds request_id from the record's context, so callers only
// need to use the *Context logging methods.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if p := principal(ctx); p != "" {
		r.AddAttrs(slog.String("principal", p))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
