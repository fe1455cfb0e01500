package logging

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/grpclog"
)

var librariesOnce sync.Once

// Libraries routes the lines that libraries print on their own, with the
// standard log package to stderr, into log: go-redis's (pool dial failures
// and the like, at warn) and gRPC's (errors only, its own default
// threshold). A process then has one log stream, all JSON.
//
// Both are process globals that gRPC reads without a lock, so only the
// first call counts: the binary calls it once where it sets up logging,
// and the test harness (testenv.Main) first, with a discarding logger.
// The embedded NATS server logs through its Options.Log; net/http's
// through httpx.Serve's ErrorLog.
func Libraries(log *slog.Logger) {
	librariesOnce.Do(func() {
		redis.SetLogger(redisLogger{log.With("logger", "go-redis")})
		grpclog.SetLoggerV2(grpcLogger{log.With("logger", "grpc")})
	})
}

// redisLogger is go-redis's Logging: everything it prints is a problem
// reaching Redis, which the cache survives, so warn.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}

// grpcLogger is grpclog.LoggerV2 keeping gRPC's default threshold: info and
// warnings (reconnect chatter) are dropped, errors are logged.
type grpcLogger struct{ log *slog.Logger }

func (grpcLogger) Info(...any)                 {}
func (grpcLogger) Infoln(...any)               {}
func (grpcLogger) Infof(string, ...any)        {}
func (grpcLogger) Warning(...any)              {}
func (grpcLogger) Warningln(...any)            {}
func (grpcLogger) Warningf(string, ...any)     {}
func (l grpcLogger) Error(v ...any)            { l.log.Error(fmt.Sprint(v...)) }
func (l grpcLogger) Errorln(v ...any)          { l.log.Error(fmt.Sprint(v...)) }
func (l grpcLogger) Errorf(f string, v ...any) { l.log.Error(fmt.Sprintf(f, v...)) }
func (l grpcLogger) Fatal(v ...any)            { l.log.Error(fmt.Sprint(v...)); os.Exit(1) }
func (l grpcLogger) Fatalln(v ...any)          { l.log.Error(fmt.Sprint(v...)); os.Exit(1) }
func (l grpcLogger) Fatalf(f string, v ...any) { l.log.Error(fmt.Sprintf(f, v...)); os.Exit(1) }
func (grpcLogger) V(level int) bool            { return level <= 0 }
