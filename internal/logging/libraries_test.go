package logging_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// TestRedisPoolFailuresAreLoggedThroughSlog: go-redis's own line about a
// failed dial arrives as a JSON record at warn, tagged logger=go-redis,
// instead of a "redis: 2026/…" line on stderr.
func TestRedisPoolFailuresAreLoggedThroughSlog(t *testing.T) {
	var out testenv.SyncBuffer
	logging.Libraries(logging.New(&out, "info"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err == nil {
		t.Fatal("ping of a closed port succeeded")
	}
	var rec struct {
		Level  string `json:"level"`
		Msg    string `json:"msg"`
		Logger string `json:"logger"`
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON record: %q", line)
		}
		if rec.Logger == "go-redis" && rec.Level == "WARN" && strings.Contains(rec.Msg, "failed to dial") {
			return
		}
	}
	t.Fatalf("no go-redis warning in the slog output: %q", out.String())
}
