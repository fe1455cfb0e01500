package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/client"
	"github.com/docstream/docstream/internal/app"
	"github.com/docstream/docstream/internal/extract"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/testenv"
)

// binDir holds the docstream binary built once for the package's
// end-to-end tests (built on first use, so the unit tests of the package do
// not pay for it).
var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	extract.ChildMain() // dev and serve in these tests run extractions in children of the test binary
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// docstreamBinary builds ./cmd/docstream once per test run.
func docstreamBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binError = os.MkdirTemp("", "docstream-e2e-bin-*"); binError != nil {
			return
		}
		binPath = filepath.Join(binDir, "docstream")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// devSystem is `docstream dev` running as a subprocess on free ports.
type devSystem struct {
	cmd      *exec.Cmd
	dataDir  string
	addrs    map[string]string // flag name → host:port
	targets  map[string]bool   // targets this binary has
	gateway  string            // http://127.0.0.1:port
	document string
	sig      string
	output   *testenv.SyncBuffer
	exited   chan error
	bin      string
	args     []string
	// rebind gives every listen flag a new free port (nil on a restart,
	// which keeps its ports): see launch.
	rebind func(t *testing.T)
}

var (
	flagRE    = regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9-]+)`)
	targetsRE = regexp.MustCompile(`services to run: all, ([a-z, ]+)`)
)

// startDev reads `docstream dev --help` for the listen-address flags of
// every target this binary has (any flag ending in -addr, and --bus-listen),
// gives each a free loopback port, and starts the system with extra
// flags appended.
func startDev(t *testing.T, extra ...string) *devSystem {
	t.Helper()
	bin := docstreamBinary(t)
	help, err := exec.Command(bin, "dev", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("dev --help: %v\n%s", err, help)
	}
	d := &devSystem{dataDir: testenv.TempDir(t), addrs: map[string]string{}, targets: map[string]bool{}, output: &testenv.SyncBuffer{}, exited: make(chan error, 1)}
	if m := targetsRE.FindSubmatch(help); m != nil {
		for _, n := range strings.Split(string(m[1]), ",") {
			d.targets[strings.TrimSpace(n)] = true
		}
	}
	var listen []string
	for _, line := range strings.Split(string(help), "\n") {
		if m := flagRE.FindStringSubmatch(line); m != nil && (strings.HasSuffix(m[1], "-addr") || m[1] == "bus-listen") {
			listen = append(listen, m[1])
		}
	}
	d.bin = bin
	d.rebind = func(t *testing.T) {
		args := []string{"dev", "--data-dir", d.dataDir}
		for _, f := range listen {
			port, err := localstack.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			d.addrs[f] = fmt.Sprintf("127.0.0.1:%d", port)
			args = append(args, "--"+f, d.addrs[f])
		}
		if a, ok := d.addrs["document-grpc-addr"]; ok {
			args = append(args, "--signature-document-grpc", a)
		}
		d.args = append(args, extra...)
		d.gateway, d.document, d.sig = "http://"+d.addrs["gateway-addr"], "http://"+d.addrs["document-addr"], "http://"+d.addrs["signature-addr"]
	}
	d.rebind(t)
	for _, f := range []string{"gateway-addr", "gateway-admin-addr", "document-addr", "signature-addr", "realtime-addr"} {
		if d.addrs[f] == "" {
			t.Fatalf("dev has no --%s flag; flags found: %v", f, d.addrs)
		}
	}
	d.launch(t)
	return d
}

// restart starts the system again on the same data directory and ports
// (after it exited or was killed).
func (d *devSystem) restart(t *testing.T) *devSystem {
	t.Helper()
	n := *d
	n.cmd, n.output, n.exited, n.rebind = nil, &testenv.SyncBuffer{}, make(chan error, 1), nil
	n.launch(t)
	return &n
}

// launch starts the process and waits until it is ready. A first start
// whose port was taken in the moment between FreePort's check and dev's
// bind (another test process picked the same one: seen in CI) is tried
// again on new ports, up to three times.
func (d *devSystem) launch(t *testing.T) {
	t.Helper()
	for try := 1; ; try++ {
		err := d.start(t)
		if err == nil {
			break
		}
		if d.rebind == nil || try == 3 || !strings.Contains(d.output.String(), "address already in use") {
			t.Fatalf("docstream dev exited before it was ready: %v\n%s", err, d.output.String())
		}
		t.Logf("docstream dev could not bind a port (try %d), starting again on new ports:\n%s", try, d.output.String())
		d.output, d.exited = &testenv.SyncBuffer{}, make(chan error, 1)
		d.rebind(t)
	}
	gwc := newClient(t, d.gateway)
	testenv.WaitFor(t, "the gateway is ready", func() bool {
		_, err := gwc.Ready(context.Background())
		return err == nil
	})
}

// start starts the process and waits until it says it is ready; the
// process's exit error when it exits first.
func (d *devSystem) start(t *testing.T) error {
	t.Helper()
	bin, args := d.bin, d.args
	d.cmd = exec.Command(bin, args...)
	d.cmd.Dir = d.dataDir
	// Only what the system needs from the environment: no stray DATABASE_URL
	// or *_ADDR of the machine may leak into the test.
	d.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = d.output
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			fmt.Fprintln(d.output, sc.Text())
			if strings.Contains(sc.Text(), "docstream dev is ready") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			t.Logf("docstream dev output:\n%s", d.output.String())
		}
	})
	select {
	case <-ready:
		return nil
	case err := <-d.exited:
		d.exited <- err
		if err == nil {
			err = errors.New("exit status 0")
		}
		return err
	case <-time.After(2 * time.Minute):
		t.Fatalf("docstream dev not ready after 2 minutes\n%s", d.output.String())
		return nil
	}
}

// newClient is the public client of the API at base.
func newClient(t *testing.T, base string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(base, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// devToken is a dev-mode access token for user (mail user@example.com) in
// groups, minted through anon, a client of the gateway.
func devToken(t *testing.T, anon *client.Client, user string, groups ...string) string {
	t.Helper()
	tk, err := anon.DevTokenWith(context.Background(), user, user+"@example.com", client.DevTokenOptions{Groups: groups})
	if err != nil {
		t.Fatalf("dev token for %s: %v", user, err)
	}
	return tk.AccessToken
}

// asToken is a client of the API at base that sends tok.
func asToken(t *testing.T, base, tok string) *client.Client {
	t.Helper()
	return newClient(t, base, client.WithToken(tok))
}

// stop sends SIGTERM and expects a clean exit.
func (d *devSystem) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		if err != nil {
			t.Fatalf("docstream dev did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("docstream dev still running a minute after SIGTERM")
	}
}

// call sends a raw JSON request and decodes the JSON answer into out: for
// the reference's curl walkthrough verbatim and the gateway's admin API.
// Every other call goes through the public client.
func call(t *testing.T, method, url string, body io.Reader, wantStatus int, out any) http.Header {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: %d, want %d: %s", method, url, resp.StatusCode, wantStatus, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, raw)
		}
	}
	return resp.Header
}

// TestDevWalkthroughThroughTheGateway runs the reference README's curl
// walkthrough against `docstream dev`, through the gateway (and the direct
// ports), then the CLI, search and a live watch, and stops the system.
func TestDevWalkthroughThroughTheGateway(t *testing.T) {
	d := startDev(t)
	gw := d.gateway
	ctx := context.Background()
	gwc := newClient(t, gw)

	// 1A. Create a document with inline JSON.
	var doc api.Document
	hdr := call(t, http.MethodPost, gw+"/documents", strings.NewReader(`{
    "title": "Sales Agreement Q4 2025",
    "content": "This agreement outlines the terms...",
    "created_by": "ebemad@company.com"
  }`), http.StatusCreated, &doc)
	if doc.ID == "" || doc.Status != "created" || doc.Version != 1 || doc.CreatedBy != "ebemad@company.com" || doc.ContentSize != int64(len("This agreement outlines the terms...")) {
		t.Fatalf("created: %+v", doc)
	}
	if hdr.Get("X-Request-ID") == "" {
		t.Fatal("the gateway did not return an X-Request-ID")
	}

	// 1B. Create one from a JSON file, as `curl -d @sample_doc.json`.
	sample := filepath.Join(t.TempDir(), "sample_doc.json")
	if err := os.WriteFile(sample, []byte(`{"title":"Master Services Agreement","content":"Full text of the master services agreement between the parties.","content_type":"text/plain","created_by":"legal@company.com"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(sample)
	if err != nil {
		t.Fatal(err)
	}
	var fromFile api.Document
	call(t, http.MethodPost, gw+"/documents", f, http.StatusCreated, &fromFile)
	f.Close()
	if fromFile.ID == "" || fromFile.Title != "Master Services Agreement" {
		t.Fatalf("created from file: %+v", fromFile)
	}
	// The same works directly on the document port.
	if direct, err := newClient(t, d.document).GetDocument(ctx, fromFile.ID); err != nil || direct.ID != fromFile.ID {
		t.Fatalf("GET on the document port: %+v %v", direct, err)
	}

	// 2. Sign it through the gateway.
	var sig api.Signature
	call(t, http.MethodPost, gw+"/signatures", strings.NewReader(`{
    "document_id": "`+doc.ID+`",
    "signer_email": "ebemad@client.com",
    "signer_name": "Ebrahim Emad",
    "signature_data": "base64encoded_signature_image_data_here",
    "document_status":"pending"
  }`), http.StatusCreated, &sig)
	if sig.ID == "" || sig.DocumentID != doc.ID || sig.SignerEmail != "ebemad@client.com" {
		t.Fatalf("signature: %+v", sig)
	}

	// 3. The document reads signed (the signature service updates it over
	// gRPC; its outbox retries if that first call failed).
	testenv.WaitFor(t, "the document reads signed", func() bool {
		got, err := gwc.GetDocument(ctx, doc.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status == api.StatusSigned
	})
	sigs, err := gwc.DocumentSignatures(ctx, doc.ID)
	if err != nil || len(sigs) != 1 || sigs[0].ID != sig.ID {
		t.Fatalf("/documents/{id}/signatures through the gateway: %+v %v", sigs, err)
	}

	// Stats and the view counters in Redis agree.
	if _, err := gwc.GetDocument(ctx, doc.ID); err != nil {
		t.Fatal(err)
	}
	st, err := gwc.DocumentStats(ctx, doc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.DocumentID != doc.ID || st.TotalViews < 2 || st.UniqueViews != 1 {
		t.Fatalf("stats: %+v", st)
	}
	var state app.DevState
	raw, err := os.ReadFile(filepath.Join(d.dataDir, "dev.json"))
	if err != nil || json.Unmarshal(raw, &state) != nil || state.RedisURL == "" {
		t.Fatalf("dev.json: %v %s", err, raw)
	}
	opts, err := redis.ParseURL(state.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	views, err := rdb.Get(ctx, "views:"+doc.ID).Int64()
	if err != nil || views != st.TotalViews {
		t.Fatalf("redis views:%s = %d (%v), stats say %d", doc.ID, views, err, st.TotalViews)
	}
	if n, err := rdb.PFCount(ctx, "unique_views:"+doc.ID).Result(); err != nil || n != st.UniqueViews {
		t.Fatalf("redis unique_views = %d (%v), stats say %d", n, err, st.UniqueViews)
	}
	if n, err := rdb.Exists(ctx, "document:"+doc.ID).Result(); err != nil || n != 1 {
		t.Fatalf("document:%s not cached (%d, %v)", doc.ID, n, err)
	}

	// The CLI against the real system.
	cliRun := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(ctx, append(args, "--server", gw), func(string) string { return "" }, &out, &errb); err != nil {
			t.Fatalf("docstream %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}
	if out := cliRun("doc", "get", doc.ID); !strings.Contains(out, "signed") {
		t.Fatalf("doc get:\n%s", out)
	}
	upload := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(upload, bytes.Repeat([]byte("uploaded through the gateway\n"), 100000), 0o600); err != nil {
		t.Fatal(err)
	}
	var up api.Document
	if err := json.Unmarshal([]byte(cliRun("doc", "create", "-f", upload, "--created-by", "cli@company.com", "-o", "json")), &up); err != nil || up.ContentSize != 2900000 {
		t.Fatalf("upload: %+v %v", up, err)
	}
	var content bytes.Buffer
	if err := run(ctx, []string{"doc", "content", up.ID, "--server", gw}, func(string) string { return "" }, &content, io.Discard); err != nil || content.Len() != 2900000 {
		t.Fatalf("content: %d bytes, %v", content.Len(), err)
	}
	if out := cliRun("doc", "list", "--limit", "100"); !strings.Contains(out, up.ID) || !strings.Contains(out, doc.ID) {
		t.Fatalf("doc list:\n%s", out)
	}

	t.Run("every service answers health and metrics on its own port", func(t *testing.T) {
		for flag, addr := range d.addrs {
			if strings.Contains(flag, "grpc") || flag == "bus-listen" {
				continue
			}
			c := newClient(t, "http://"+addr)
			if h, err := c.Live(ctx); err != nil || h.Status != "ok" {
				t.Errorf("--%s /health/live: %+v %v", flag, h, err)
			}
			if h, err := c.Ready(ctx); err != nil {
				t.Errorf("--%s /health/ready: %+v %v", flag, h, err)
			}
			if flag == "gateway-addr" {
				continue // the proxy port forwards everything else; its metrics are on the admin port
			}
			for _, path := range []string{"/metrics"} {
				resp, err := http.Get("http://" + addr + path)
				if err != nil {
					t.Fatalf("%s %s: %v", flag, path, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("--%s %s: %d %s", flag, path, resp.StatusCode, body)
				}
				if path == "/metrics" && !strings.Contains(string(body), "docstream_http_requests_total") {
					t.Errorf("--%s /metrics lacks the request metrics", flag)
				}
			}
		}
	})

	t.Run("search finds the document", func(t *testing.T) {
		for _, need := range []string{"search", "indexer", "cdc"} {
			if !d.targets[need] {
				t.Skipf("NOT TESTED: this build has no %q target yet (targets: %v)", need, d.targets)
			}
		}
		testenv.WaitFor(t, "search finds the signed document", func() bool {
			res, err := gwc.Search(ctx, api.SearchRequest{Query: "Sales"})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range res.Documents {
				if h.ID == doc.ID && h.Status == api.StatusSigned {
					return true
				}
			}
			return false
		})
		if out := cliRun("search", "Sales"); !strings.Contains(out, doc.ID) {
			t.Fatalf("docstream search:\n%s", out)
		}
	})

	t.Run("watch streams a document's events live", func(t *testing.T) {
		if !d.targets["cdc"] {
			t.Skipf("NOT TESTED: this build has no \"cdc\" target yet, so no events reach realtime (targets: %v)", d.targets)
		}
		live, err := gwc.CreateDocument(ctx, api.CreateDocumentRequest{Title: "Watched", Content: "watch me", CreatedBy: "ebemad@company.com"})
		if err != nil {
			t.Fatal(err)
		}
		var out testenv.SyncBuffer
		watchCtx, stopWatch := context.WithCancel(ctx)
		watchDone := make(chan error, 1)
		go func() {
			watchDone <- run(watchCtx, []string{"watch", live.ID, "-o", "json", "--server", gw}, func(string) string { return "" }, &out, io.Discard)
		}()
		// Only changes made after the socket is open are pushed: retitle
		// until one arrives, which also proves the WAL is being streamed.
		n := 0
		testenv.WaitFor(t, "the watch saw document.updated", func() bool {
			if strings.Contains(out.String(), `"document.updated"`) {
				return true
			}
			n++
			if _, err := gwc.UpdateDocument(ctx, live.ID, api.UpdateDocumentRequest{Title: fmt.Sprintf("Watched %d", n)}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			return false
		})
		cliRun("sign", live.ID, "--email", "ebemad@client.com", "--name", "Ebrahim Emad", "--document-status", "pending")
		testenv.WaitFor(t, "the watch saw the signature", func() bool {
			o := out.String()
			return strings.Contains(o, `"signature.added"`) && strings.Contains(o, `"document.signed"`)
		})
		stopWatch()
		if err := <-watchDone; err != nil {
			t.Fatalf("watch ended with %v; output:\n%s", err, out.String())
		}
	})

	t.Run("the public client's examples work against the system", func(t *testing.T) {
		for _, need := range []string{"search", "indexer", "cdc"} {
			if !d.targets[need] {
				t.Skipf("NOT TESTED: this build has no %q target (targets: %v)", need, d.targets)
			}
		}
		// The client package's own test runs its Example functions, so
		// these are exactly the documented calls.
		cmd := exec.Command("go", "test", "-count=1", "-run", "^TestExamplesAgainstARunningSystem$", "-v", "github.com/docstream/docstream/client")
		cmd.Env = append(os.Environ(), "DOCSTREAM_CLIENT_E2E_SERVER="+gw)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestExamplesAgainstARunningSystem") {
			t.Fatalf("client examples against %s: %v\n%s", gw, err, out)
		}
	})

	// The gateway's admin, read with the public client, shows every
	// upstream available.
	ups, err := newClient(t, "http://"+d.addrs["gateway-admin-addr"]).GatewayUpstreams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ups {
		if s.Name == "document" || s.Name == "signature" || s.Name == "realtime" {
			if !s.Upstreams[0].Available {
				t.Fatalf("admin: %s not available", s.Name)
			}
		}
	}

	d.stop(t)
}
