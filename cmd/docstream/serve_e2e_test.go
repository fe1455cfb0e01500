package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/testenv"
)

// serveProc is one `docstream serve` process.
type serveProc struct {
	cmd    *exec.Cmd
	out    *testenv.SyncBuffer
	exited chan error
}

func startServe(t *testing.T, name string, args ...string) *serveProc {
	t.Helper()
	return startServeEnv(t, name, nil, args...)
}

// startServeEnv is startServe with more environment variables (S3
// credentials, say).
func startServeEnv(t *testing.T, name string, env []string, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{out: &testenv.SyncBuffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(docstreamBinary(t), append([]string{"serve", "--log-level", "warn", "--shutdown-drain", "0"}, args...)...)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	return p
}

func (p *serveProc) stop(t *testing.T, name string) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("%s did not exit cleanly on SIGTERM: %v\n%s", name, err, p.out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("%s still running a minute after SIGTERM", name)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := localstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// TestMicroservicesAcrossTwoProcesses runs the same binary in the
// microservices shape: process A serves document, cdc, indexer and search;
// process B serves signature, realtime and the gateway. They share one
// PostgreSQL, one Redis and an external nats-server (JetStream), and talk
// to each other only over the network (gRPC for signature → document). The
// reference walkthrough, search and a live watch go through B's gateway.
func TestMicroservicesAcrossTwoProcesses(t *testing.T) {
	ctx := context.Background()
	dir := testenv.TempDir(t)
	pg, err := localstack.StartPostgres(ctx, filepath.Join(dir, "pg"), localstack.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	rds, err := localstack.StartRedis(ctx, filepath.Join(dir, "redis"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rds.Stop)
	nats, err := localstack.StartNATSServer(ctx, filepath.Join(dir, "nats"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nats.Stop)

	const secret = "microservices-test-secret-of-32-bytes-or-more"
	addr := map[string]string{}
	for _, f := range []string{"document-addr", "document-grpc-addr", "cdc-addr", "indexer-addr", "search-addr",
		"signature-addr", "realtime-addr", "gateway-addr", "gateway-admin-addr", "extractor-addr", "webhooks-addr"} {
		addr[f] = freeAddr(t)
	}
	// Open mode (serve's default is required): this test is about the
	// microservices shape; B keeps the old --realtime-jwt-secret spelling,
	// an alias of --auth-jwt-secret.
	// serve needs the audit key for document and signature in every mode.
	keyFile := filepath.Join(dir, "audit.pem")
	if _, _, err := cli(t, "", "audit", "keygen", "--out", keyFile); err != nil {
		t.Fatal(err)
	}
	common := []string{"--auth-mode", "open", "--database-url", pg.URL(), "--redis-url", rds.URL(), "--bus-url", nats.URL(), "--audit-signing-key", keyFile,
		"--blob-url", "file://" + filepath.ToSlash(filepath.Join(dir, "blobs"))}
	a := startServe(t, "process A", append(common, "--targets", "document,cdc,indexer,search,extractor,webhooks", "--data-dir", filepath.Join(dir, "a"),
		"--extractor-addr", addr["extractor-addr"], "--webhooks-addr", addr["webhooks-addr"],
		"--webhooks-secret-key", strings.Repeat("5e", 32),
		"--document-addr", addr["document-addr"], "--document-grpc-addr", addr["document-grpc-addr"],
		"--cdc-addr", addr["cdc-addr"], "--indexer-addr", addr["indexer-addr"], "--search-addr", addr["search-addr"])...)
	// B's gateway routes to the document and search services of A: its
	// built-in routes follow the --*-addr flags even for targets B does not run.
	b := startServe(t, "process B", append(common, "--targets", "signature,realtime,gateway", "--data-dir", filepath.Join(dir, "b"),
		"--signature-addr", addr["signature-addr"], "--signature-document-grpc", addr["document-grpc-addr"],
		"--realtime-addr", addr["realtime-addr"], "--realtime-jwt-secret", secret,
		"--gateway-addr", addr["gateway-addr"], "--gateway-admin-addr", addr["gateway-admin-addr"],
		"--document-addr", addr["document-addr"], "--search-addr", addr["search-addr"],
		"--extractor-addr", addr["extractor-addr"], "--webhooks-addr", addr["webhooks-addr"])...)

	for _, f := range []string{"document-addr", "cdc-addr", "indexer-addr", "search-addr", "signature-addr", "realtime-addr", "gateway-addr"} {
		c := newClient(t, "http://"+addr[f])
		testenv.WaitFor(t, f+" ready", func() bool {
			_, err := c.Ready(ctx)
			return err == nil
		})
	}
	gw := "http://" + addr["gateway-addr"]
	// The gateway sends traffic once its active checks have seen A's services.
	testenv.WaitFor(t, "the gateway sees every upstream healthy", func() bool {
		resp, err := http.Get("http://" + addr["gateway-admin-addr"] + "/upstreams")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && !strings.Contains(string(body), `"available":false`)
	})
	checkErrorsAgree(t, addr)

	// The reference walkthrough, through the gateway.
	gwc := newClient(t, gw)
	var doc api.Document
	call(t, http.MethodPost, gw+"/documents", strings.NewReader(`{"title":"Sales Agreement Q4 2025","content":"This agreement outlines the terms...","created_by":"ebemad@company.com"}`), http.StatusCreated, &doc)
	call(t, http.MethodPost, gw+"/signatures", strings.NewReader(`{"document_id":"`+doc.ID+`","signer_email":"ebemad@client.com","signer_name":"Ebrahim Emad","signature_data":"base64encoded_signature_image_data_here","document_status":"pending"}`), http.StatusCreated, nil)
	// B may have tried A's gRPC before A listened; then the status update
	// is "pending" and B's reconciler applies it once the channel is up.
	testenv.WaitFor(t, "the document reads signed across processes", func() bool {
		got, err := gwc.GetDocument(ctx, doc.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status == api.StatusSigned
	})
	checkHostileRequests(t, addr, pg.URL(), filepath.Join(dir, "blobs"))

	// Read-your-writes search across processes: the update's commit LSN.
	upd, err := gwc.UpdateDocument(ctx, doc.ID, api.UpdateDocumentRequest{Title: "Quarterly sales agreement"})
	if err != nil || upd.CommitLSN == 0 {
		t.Fatalf("update: %+v %v", upd, err)
	}
	res, err := gwc.Search(ctx, api.SearchRequest{Query: "quarterly", MinLSN: upd.CommitLSN})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stale || res.Total != 1 || res.Documents[0].ID != doc.ID || res.Documents[0].Title != "Quarterly sales agreement" {
		t.Fatalf("read-your-writes search: %+v", res)
	}

	// A live watch through B's gateway and realtime, fed by A's CDC over NATS.
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "tester", "email": "tester@company.com", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	watch := exec.Command(docstreamBinary(t), "watch", doc.ID, "-o", "json", "--server", gw, "--token", tok)
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	watch.Stderr = io.Discard
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = watch.Process.Kill(); _ = watch.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	n := 0
	testenv.WaitFor(t, "the watch saw document.updated", func() bool {
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("watch exited")
				}
				if strings.Contains(l, `"document.updated"`) {
					return true
				}
				continue
			default:
			}
			n++
			if _, err := gwc.UpdateDocument(ctx, doc.ID, api.UpdateDocumentRequest{Title: fmt.Sprintf("Retitled %d", n)}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			return false
		}
	})

	b.stop(t, "process B")
	a.stop(t, "process A")
}
