package webhooks_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/docstream/docstream/internal/logging"
	"sync/atomic"
)

type atomicBool = atomic.Bool

func readBody(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func netSplit(hostport string) (string, string, error) { return net.SplitHostPort(hostport) }

// testLog is the targets' log: discarded unless WEBHOOKS_TEST_LOG is set.
func testLog() *slog.Logger {
	if os.Getenv("WEBHOOKS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return logging.Discard()
}
