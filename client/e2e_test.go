package client_test

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// ServerEnv names the running system TestExamplesAgainstARunningSystem
// calls; cmd/docstream's end-to-end test starts `docstream dev` and runs
// this test with it set.
const ServerEnv = "DOCSTREAM_CLIENT_E2E_SERVER"

// TestExamplesAgainstARunningSystem runs every Example of this package
// against a running system and checks what each printed: the examples'
// calls are the documented ones, and they work.
func TestExamplesAgainstARunningSystem(t *testing.T) {
	url := os.Getenv(ServerEnv)
	if url == "" {
		t.Skip(ServerEnv + " is not set (cmd/docstream's TestDevWalkthroughThroughTheGateway sets it)")
	}
	server = url
	cases := []struct {
		name string
		run  func()
		want []string
	}{
		{"Example", Example, []string{"signed by Ebrahim Emad", "status signed"}},
		{"Example_errors", Example_errors, []string{"422: created_by is required", "true"}},
		{"ExampleClient_UploadDocument", ExampleClient_UploadDocument, []string{"text/plain 22000", `"Terms and conditions."`, "of 22000 bytes"}},
		{"ExampleClient_UpdateDocumentIfVersion", ExampleClient_UpdateDocumentIfVersion, []string{"sent 2", "precondition_failed"}},
		{"ExampleClient_Search", ExampleClient_Search, []string{"found Quarterly report stale: false", "true"}},
		{"ExampleClient_Watch", ExampleClient_Watch, []string{"document.sent created → sent"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := stdoutOf(t, c.run)
			if strings.Contains(out, "error:") {
				t.Fatalf("%s printed an error:\n%s", c.name, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Fatalf("%s printed no %q:\n%s", c.name, w, out)
				}
			}
		})
	}
}

// stdoutOf runs f with os.Stdout captured, as `go test` does for examples.
func stdoutOf(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, r)
		done <- b.String()
	}()
	defer func() {
		os.Stdout = saved
	}()
	f()
	w.Close()
	out := <-done
	r.Close()
	return out
}
