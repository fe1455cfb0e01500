package document

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/httpx"
)

// A create whose body is still arriving holds no write slot: with one
// write slot, a PATCH is served while an upload trickles in, and the
// upload, once complete, is stored. A queue of one lets the upload wait
// for the PATCH's slot (a client has its answer a moment before the
// handler gives the slot back); were the upload holding the slot, the
// PATCH would wait behind a body that never comes and be shed.
func TestAnUploadInProgressHoldsNoWriteSlot(t *testing.T) {
	cfg := noProxies()
	cfg.Admission = httpx.NewAdmission("document-test", httpx.AdmissionConfig{
		Write: httpx.ClassLimit{Limit: 1, Queue: 1, MaxWait: 5 * time.Second}, RetryAfter: time.Second})
	e := newEnvWith(t, testDB(t), cfg)
	d := e.create(t, "Before", "x")

	pr, pw := io.Pipe()
	// Runs before the server's cleanup, so a failed test does not wait on
	// the half-sent upload.
	t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF) })
	boundary := "b0undary"
	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.srv.URL+"/documents", pr)
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("upload: %v", err)
			close(done)
			return
		}
		done <- resp
	}()
	fmt.Fprintf(pw, "--%s\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nSlow upload\r\n", boundary)
	fmt.Fprintf(pw, "--%s\r\nContent-Disposition: form-data; name=\"created_by\"\r\n\r\njohn.doe@company.com\r\n", boundary)
	fmt.Fprintf(pw, "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nfirst half ", boundary)

	// The upload is in its handler, reading; the one write slot is free.
	var got Document
	resp := e.do(t, "PATCH", "/documents/"+d.ID, map[string]any{"title": "Changed during an upload"}, &got)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PATCH while an upload was arriving: %d (want 200; the upload must not hold the write slot)", resp.StatusCode)
	}

	fmt.Fprintf(pw, "second half\r\n--%s--\r\n", boundary)
	pw.Close()
	up := <-done
	if up == nil {
		return
	}
	defer up.Body.Close()
	if up.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(up.Body)
		t.Fatalf("upload: %d %s", up.StatusCode, b)
	}
}
