package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/extract/extracttest"
)

// TestExtractAllRerunsTheFailedWithProgressAndThumbnailsRevalidate runs
// `docstream dev` with a 1 ms extraction time limit: three uploads (two
// HTML pages, a DOCX) fail as timeouts. Restarted with the limit raised,
// `docstream extract --all` queues the three again, shows a progress bar
// to 3/3 on stderr and ends with the queue drained, all three done. The
// DOCX's thumbnail is then served through the gateway with an ETag and
// Cache-Control, answered 304 (no body, the same ETag) to If-None-Match
// with that ETag, and 200 with the image to another ETag.
func TestExtractAllRerunsTheFailedWithProgressAndThumbnailsRevalidate(t *testing.T) {
	d := startDev(t, "--extractor-timeout", "1ms")
	c := newClient(t, d.gateway)
	ctx := context.Background()
	ids := map[string]string{}
	for title, f := range map[string]struct {
		ct   string
		data []byte
	}{
		"page one": {"text/html", []byte("<html><body><p>Cassowary</p></body></html>")},
		"page two": {"text/html", []byte("<html><body><p>Tasmanian devil</p></body></html>")},
		"minutes":  {extracttest.DOCXType, extracttest.DOCX([]string{"Kookaburra minutes"})},
	} {
		ids[title] = upload(t, c, title, f.ct, f.data).ID
	}
	for title, id := range ids {
		if e := waitExtraction(t, c, id); e.Status != api.ExtractionFailed || e.Reason != "timeout" {
			t.Fatalf("%s under a 1 ms limit: %+v, want failed, timeout", title, e.Extraction)
		}
	}

	d.stop(t)
	for i, a := range d.args {
		if a == "--extractor-timeout" {
			d.args[i+1] = "2m"
		}
	}
	d = d.restart(t)
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"extract", "--all", "--server", d.gateway, "--poll", "50ms"}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("docstream extract --all: %v\n%s", err, errOut.String())
	}
	if e := errOut.String(); !strings.Contains(e, "3 extractions queued") || !strings.Contains(e, "extracting") || !strings.Contains(e, "(3/3") {
		t.Fatalf("docstream extract --all printed no progress to 3/3 on stderr:\n%q", e)
	}
	if !strings.Contains(out.String(), "queue drained: 3 done, 0 failed") {
		t.Fatalf("docstream extract --all printed:\n%s", out.String())
	}
	for title, id := range ids {
		if e := waitExtraction(t, c, id); e.Status != api.ExtractionDone || e.Attempts != 1 {
			t.Fatalf("%s after extract --all: %+v, want done by a fresh run", title, e.Extraction)
		}
	}

	get := func(etag string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, d.gateway+"/documents/"+ids["minutes"]+"/thumbnail", nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, img := get("")
	etag, cc := resp.Header.Get("ETag"), resp.Header.Get("Cache-Control")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || len(img) == 0 ||
		!strings.HasPrefix(etag, `"`) || len(etag) < 3 || !strings.Contains(cc, "max-age=") || !strings.Contains(cc, "private") {
		t.Fatalf("thumbnail: %d, %d bytes, headers %v", resp.StatusCode, len(img), resp.Header)
	}
	resp, body := get(etag)
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("ETag") != etag || resp.Header.Get("Cache-Control") != cc {
		t.Fatalf("thumbnail with If-None-Match %s: %d, %d bytes, headers %v; want 304, no body, the same ETag and Cache-Control",
			etag, resp.StatusCode, len(body), resp.Header)
	}
	resp, body = get(`"another"`)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, img) {
		t.Fatalf("thumbnail with another ETag: %d, %d bytes; want 200 and the image", resp.StatusCode, len(body))
	}
}
