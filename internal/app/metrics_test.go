package app

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// childEnv makes the test binary a child process running one target (see
// TestAProcessExportsOnlyItsTargetsMetrics): the default registry is per
// process, so only a fresh process shows what a target alone exports.
const childEnv = "DOCSTREAM_TEST_METRICS_CHILD"

// TestAProcessExportsOnlyItsTargetsMetrics starts one target per process
// and reads its /metrics: a CDC process must not export the document
// service's docstream_document_redis_up (an alert on it fired falsely on
// every CDC process), and each exports its own.
func TestAProcessExportsOnlyItsTargetsMetrics(t *testing.T) {
	cases := []struct {
		target      string
		want, never []string
	}{
		{"cdc", []string{"docstream_cdc_active", "docstream_cdc_publish_batch_seconds"},
			[]string{"docstream_document_", "docstream_indexer_", "docstream_realtime_", "docstream_signature_", "docstream_audit_", "grpc_server_"}},
		{"document", []string{"docstream_document_redis_up", "docstream_document_cache_invalidator_failing", "docstream_audit_checkpoint_sign_seconds"},
			[]string{"docstream_cdc_", "docstream_indexer_", "docstream_realtime_", "docstream_signature_"}},
		{"realtime", []string{"docstream_realtime_connections", "docstream_realtime_fanout_seconds"},
			[]string{"docstream_cdc_", "docstream_document_", "docstream_indexer_", "docstream_signature_", "docstream_audit_"}},
	}
	db := testenv.Database(t)
	for _, tc := range cases {
		t.Run(tc.target, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMetricsChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+tc.target, "DOCSTREAM_TEST_DB="+db, "DOCSTREAM_TEST_REDIS="+testenv.Redis().URL(),
				"DOCSTREAM_TEST_DIR="+testenv.TempDir(t))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			var names []string
			sc := bufio.NewScanner(strings.NewReader(string(out)))
			for sc.Scan() {
				if n, ok := strings.CutPrefix(sc.Text(), "METRIC "); ok {
					names = append(names, n)
				}
			}
			if len(names) == 0 {
				t.Fatalf("child printed no metrics:\n%s", out)
			}
			for _, w := range tc.want {
				if !slices.Contains(names, w) {
					t.Errorf("a %s process does not export %s", tc.target, w)
				}
			}
			for _, n := range names {
				for _, p := range tc.never {
					if strings.HasPrefix(n, p) {
						t.Errorf("a %s process exports %s, another target's metric", tc.target, n)
					}
				}
			}
		})
	}
}

// TestMetricsChild is the child process of
// TestAProcessExportsOnlyItsTargetsMetrics: it runs one target and prints
// the metric names its port serves.
func TestMetricsChild(t *testing.T) {
	target := os.Getenv(childEnv)
	if target == "" {
		t.Skip("run by TestAProcessExportsOnlyItsTargetsMetrics")
	}
	free := func() string {
		p, err := localstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("127.0.0.1:%d", p)
	}
	c := parse(t, nil, "--data-dir", os.Getenv("DOCSTREAM_TEST_DIR"), "--database-url", os.Getenv("DOCSTREAM_TEST_DB"),
		"--redis-url", os.Getenv("DOCSTREAM_TEST_REDIS"), "--bus-listen", "", "--targets", target,
		"--document-addr", free(), "--document-grpc-addr", free(), "--cdc-addr", free(), "--cdc-slot", "metrics_child",
		"--realtime-addr", free(), "--realtime-jwt-secret", strings.Repeat("s", 32), "--shutdown-drain", "0")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *System, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, logging.Discard(), func(s *System) { ready <- s }) }()
	var sys *System
	select {
	case sys = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() { cancel(); <-done }()
	resp, err := http.Get(sys.URL(target) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	seen := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if n, ok := strings.CutPrefix(line, "# TYPE "); ok {
			n, _, _ = strings.Cut(n, " ")
			if !seen[n] {
				seen[n] = true
				fmt.Println("METRIC " + n)
			}
		}
	}
}
