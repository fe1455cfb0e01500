package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/client"
	"github.com/docstream/docstream/internal/extract/extracttest"
	"github.com/docstream/docstream/internal/testenv"
)

// upload sends data as a multipart upload through the gateway.
func upload(t *testing.T, c *client.Client, title, contentType string, data []byte) *client.Written {
	t.Helper()
	w, err := c.UploadDocument(context.Background(), client.Upload{Title: title, CreatedBy: "e2e@company.com",
		ContentType: contentType, FileName: "f", Content: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("upload %s: %v", title, err)
	}
	return w
}

// waitExtraction waits for the document's extraction to end.
func waitExtraction(t *testing.T, c *client.Client, id string) *client.Extraction {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := c.WaitExtraction(ctx, id, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("extraction of %s: %v", id, err)
	}
	return e
}

// searchIDs searches with read-your-writes at lsn and returns the ids found.
func searchIDs(t *testing.T, c *client.Client, q string, lsn uint64) map[string]api.SearchHit {
	t.Helper()
	r, err := c.Search(context.Background(), api.SearchRequest{Query: q, MinLSN: lsn, Size: 50})
	if err != nil {
		t.Fatalf("search %q: %v", q, err)
	}
	if r.Stale {
		t.Fatalf("search %q at min_lsn %d answered stale", q, lsn)
	}
	out := map[string]api.SearchHit{}
	for _, h := range r.Documents {
		out[h.ID] = h
	}
	return out
}

// renderPNG is a PNG of words: a text PDF rasterised by pdftoppm.
func renderPNG(t *testing.T, words string) []byte {
	t.Helper()
	dir := testenv.TempDir(t)
	pdf := filepath.Join(dir, "w.pdf")
	if err := os.WriteFile(pdf, extracttest.PDF(words), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("pdftoppm", "-png", "-gray", "-r", "200", "-singlefile", "-x", "0", "-y", "0", "-W", "1700", "-H", "400",
		pdf, filepath.Join(dir, "w")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "w.png"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUploadedFilesBecomeSearchable is the extractor's walkthrough on a
// running system: real files uploaded through the gateway, their words
// found by search (read-your-writes through the extraction's commit LSN),
// thumbnails served with an ETag, hostile files failed with a reason, and
// a re-run through the API.
func TestUploadedFilesBecomeSearchable(t *testing.T) {
	for _, tool := range []string{"pdftotext", "pdftoppm", "pdfinfo", "tesseract"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/bootstrap.sh installs poppler-utils and tesseract-ocr): skipping", tool)
		}
	}
	d := startDev(t)
	c := newClient(t, d.gateway)
	ctx := context.Background()

	type file struct {
		title, ct string
		data      []byte
		word      string // found by search once extracted ("" none)
		status    string
		reason    string
		thumb     bool
	}
	var scan bytes.Buffer
	img, err := png.Decode(bytes.NewReader(renderPNG(t, "SCANNED ECHIDNA RECEIPT")))
	if err != nil {
		t.Fatal(err)
	}
	png.Encode(&scan, img)
	files := []file{
		{"text pdf", "application/pdf", extracttest.PDF("Quokka invoices from Rottnest"), "quokka", api.ExtractionDone, "", true},
		{"scanned pdf", "application/pdf", extracttest.ImagePDF(img.(image.Image)), "echidna", api.ExtractionDone, "", true},
		{"png of text", "image/png", renderPNG(t, "HELLO OCR PLATYPUS"), "platypus", api.ExtractionDone, "", true},
		{"docx", extracttest.DOCXType, extracttest.DOCX([]string{"Kookaburra minutes"}), "kookaburra", api.ExtractionDone, "", true},
		{"odt", extracttest.ODTType, extracttest.ODT("Wallaby report"), "wallaby", api.ExtractionDone, "", true},
		{"xlsx", extracttest.XLSXType, extracttest.XLSX([]string{"Dingo budget"}), "dingo", api.ExtractionDone, "", true},
		{"html", "text/html", []byte("<html><body><p>Lyrebird <b>song</b></p><script>var hidden='bandicoot'</script></body></html>"), "lyrebird", api.ExtractionDone, "", false},
		{"zip bomb", extracttest.DOCXType, extracttest.ZipBombDOCX(40 << 20), "", api.ExtractionFailed, "zip_bomb", false},
		{"truncated pdf", "application/pdf", extracttest.PDF("cut short")[:200], "", api.ExtractionFailed, "corrupt", false},
		{"huge png", "image/png", extracttest.HugePNG(100000, 100000), "", api.ExtractionFailed, "image_too_large", false},
		{"encrypted pdf", "application/pdf", extracttest.EncryptedPDF(), "", api.ExtractionFailed, "encrypted", false},
		{"plain text", "text/plain", []byte("numbat notes"), "numbat", api.ExtractionSkipped, "", false},
		{"markdown", "text/markdown", []byte("# Bilby **field** notes\n\nSee [the burrow](https://hiddenhost.example/x).\n"), "bilby", api.ExtractionDone, "", false},
	}
	ids := map[string]string{}
	for _, f := range files {
		w := upload(t, c, f.title, f.ct, f.data)
		ids[f.title] = w.ID
	}
	for _, f := range files {
		t.Run(f.title, func(t *testing.T) {
			id := ids[f.title]
			e := waitExtraction(t, c, id)
			if e.Status != f.status || e.Reason != f.reason {
				t.Fatalf("extraction %+v, want status %s reason %q", e.Extraction, f.status, f.reason)
			}
			if f.word != "" {
				hits := searchIDs(t, c, f.word, e.CommitLSN)
				h, ok := hits[id]
				if !ok {
					t.Fatalf("search %q at min_lsn %d does not find the %s", f.word, e.CommitLSN, f.title)
				}
				if f.status == api.ExtractionDone && !strings.Contains(strings.ToLower(strings.Join(h.Highlights["content"], " ")), "<mark>"+f.word) {
					t.Errorf("no content highlight for %q: %v", f.word, h.Highlights)
				}
			}
			th, err := c.DocumentThumbnail(ctx, id, "")
			if !f.thumb {
				if apperr.CodeOf(err) != apperr.NotFound {
					t.Fatalf("thumbnail of %s: %v, want not_found", f.title, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("thumbnail: %v", err)
			}
			b, _ := io.ReadAll(th)
			th.Close()
			if cfg, err := png.DecodeConfig(bytes.NewReader(b)); err != nil || max(cfg.Width, cfg.Height) != 256 || th.ETag == "" {
				t.Fatalf("thumbnail %dx%d etag %q: %v", cfg.Width, cfg.Height, th.ETag, err)
			}
			again, err := c.DocumentThumbnail(ctx, id, th.ETag)
			if err != nil || !again.NotModified {
				t.Fatalf("If-None-Match: %v %+v", err, again)
			}
			again.Close()
		})
	}
	// The script's words never reach the index, nor a Markdown link's target.
	for _, w := range []string{"bandicoot", "hiddenhost"} {
		if hits := searchIDs(t, c, w, 0); len(hits) != 0 {
			t.Errorf("%s was indexed: %v", w, hits)
		}
	}

	t.Run("a re-run through the API extracts again", func(t *testing.T) {
		id := ids["docx"]
		e, err := c.ExtractDocument(ctx, id)
		if err != nil || e.Status != api.ExtractionPending {
			t.Fatalf("extract: %v %+v", err, e)
		}
		if e := waitExtraction(t, c, id); e.Status != api.ExtractionDone || e.Attempts != 1 {
			t.Fatalf("after re-run: %+v", e.Extraction)
		}
		r, err := c.RerunExtractions(ctx, api.ExtractRequest{Failed: true})
		if err != nil || r.Queued != 4 {
			t.Fatalf("rerun failed: %v %+v, want 4 queued", err, r)
		}
		for _, f := range []string{"zip bomb", "truncated pdf", "huge png", "encrypted pdf"} {
			if e := waitExtraction(t, c, ids[f]); e.Status != api.ExtractionFailed {
				t.Fatalf("%s after a re-run: %+v", f, e.Extraction)
			}
		}
		// The CLI waits for the queue to drain, with a progress bar on stderr.
		var out, errOut bytes.Buffer
		if err := run(ctx, []string{"extract", "--failed", "--server", d.gateway, "--poll", "100ms"}, func(string) string { return "" }, &out, &errOut); err != nil {
			t.Fatalf("docstream extract --failed: %v\n%s", err, errOut.String())
		}
		if !strings.Contains(errOut.String(), "4 extractions queued") || !strings.Contains(out.String(), "queue drained") || !strings.Contains(out.String(), "failed") {
			t.Fatalf("docstream extract --failed printed:\n%s\n%s", out.String(), errOut.String())
		}
		if e := waitExtraction(t, c, ids["zip bomb"]); e.Status != api.ExtractionFailed || e.Reason != "zip_bomb" {
			t.Fatalf("the zip bomb after a re-run: %+v", e.Extraction)
		}
		if _, err := c.RerunExtractions(ctx, api.ExtractRequest{}); apperr.CodeOf(err) != apperr.Validation {
			t.Fatalf("rerun of nothing: %v, want a validation error", err)
		}
		if _, err := c.DocumentExtraction(ctx, "0194c3a0-0000-7000-8000-000000000001"); apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("extraction of an unknown document: %v", err)
		}
		if _, err := c.DocumentThumbnail(ctx, "not-a-uuid", ""); apperr.CodeOf(err) != apperr.Invalid {
			t.Fatalf("thumbnail of a malformed id: %v", err)
		}
	})

	t.Run("a document's version does not move for its extraction", func(t *testing.T) {
		doc, err := c.GetDocument(ctx, ids["text pdf"])
		if err != nil || doc.Version != 1 {
			t.Fatalf("document %+v %v: want version 1", doc, err)
		}
	})

	t.Run("deleting a document removes its thumbnail", func(t *testing.T) {
		id := ids["png of text"]
		if err := c.DeleteDocument(ctx, id); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, "the thumbnail is removed", func() bool {
			_, err := c.DocumentThumbnail(ctx, id, "")
			return apperr.CodeOf(err) == apperr.NotFound
		})
	})
}

// TestAKilledExtractorResumes kills `docstream dev` (SIGKILL) right after
// uploads and starts it again on the same data: every extraction ends,
// none is lost, each was run to a result once (attempts 1) or, the one
// the killed worker held, taken over after its lease (attempts 2).
func TestAKilledExtractorResumes(t *testing.T) {
	for _, tool := range []string{"pdftotext", "pdfinfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/bootstrap.sh installs poppler-utils): skipping", tool)
		}
	}
	// One worker, so that extractions are still queued (or one running)
	// when the process dies; a short lease, so that the one it held is
	// taken over within the test.
	d := startDev(t, "--extractor-workers", "1", "--extractor-timeout", "10s", "--extractor-lease", "15s")
	c := newClient(t, d.gateway)
	var ids []string
	for i := range 12 {
		w := upload(t, c, "resume", "application/pdf", extracttest.PDF("Resumable wombat number "+string(rune('a'+i))))
		ids = append(ids, w.ID)
	}
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.exited
	d2 := d.restart(t)
	c = newClient(t, d2.gateway)
	var lsn uint64
	for _, id := range ids {
		e := waitExtraction(t, c, id)
		if e.Status != api.ExtractionDone || e.Attempts < 1 || e.Attempts > 2 {
			t.Fatalf("after a restart: %+v", e.Extraction)
		}
		if e.Attempts == 2 {
			t.Logf("document %s was being extracted when the process died; taken over after the lease", id)
		}
		lsn = max(lsn, e.CommitLSN)
	}
	// Not at min_lsn alone: events the killed process held unacknowledged
	// come back only after the bus's ack wait (30 s), and meanwhile the
	// applied LSN can run ahead of them (README, "Known limitations").
	testenv.WaitForWithin(t, 90*time.Second, "every document found by its extracted words", func() bool {
		hits := searchIDs(t, c, "wombat", lsn)
		for _, id := range ids {
			if _, ok := hits[id]; !ok {
				return false
			}
		}
		return true
	})
}

// TestASearchRightAfterAnUploadWaitsForItsExtraction is read-your-writes
// for extracted text on a running system: a search sent at once after an
// upload, with wait_for=extraction and the document's id, finds the words
// inside the PDF (and inside a scan, read by OCR) without the client
// polling the extraction; bad parameters are 422 naming the field and an
// unknown document is 404.
func TestASearchRightAfterAnUploadWaitsForItsExtraction(t *testing.T) {
	for _, tool := range []string{"pdftotext", "pdftoppm", "pdfinfo", "tesseract"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/bootstrap.sh installs poppler-utils and tesseract-ocr): skipping", tool)
		}
	}
	// Generous bounds: OCR, and the indexer behind it, on a machine
	// loaded by parallel work take many seconds.
	d := startDev(t, "--search-extraction-wait", "3m", "--search-max-wait", "1m")
	c := newClient(t, d.gateway)
	ctx := context.Background()

	text := upload(t, c, "waited pdf", "application/pdf", extracttest.PDF("Capybara ledger for the wetlands"))
	r, err := c.Search(ctx, api.SearchRequest{Query: "capybara", WaitForExtraction: []string{text.ID}})
	if err != nil || r.Stale {
		t.Fatalf("search right after the upload: %v %+v", err, r)
	}
	if len(r.Documents) != 1 || r.Documents[0].ID != text.ID {
		t.Fatalf("search right after the upload found %+v, want the PDF %s", r.Documents, text.ID)
	}

	img, err := png.Decode(bytes.NewReader(renderPNG(t, "SCANNED AXOLOTL PERMIT")))
	if err != nil {
		t.Fatal(err)
	}
	scan := upload(t, c, "waited scan", "application/pdf", extracttest.ImagePDF(img))
	docx := upload(t, c, "waited docx", extracttest.DOCXType, extracttest.DOCX([]string{"Axolotl tank minutes"}))
	r, err = c.Search(ctx, api.SearchRequest{Query: "axolotl", WaitForExtraction: []string{scan.ID, docx.ID}})
	if err != nil || r.Stale {
		t.Fatalf("search waiting for two: %v %+v", err, r)
	}
	found := map[string]bool{}
	for _, h := range r.Documents {
		found[h.ID] = true
	}
	if !found[scan.ID] || !found[docx.ID] {
		t.Fatalf("search waiting for the scan and the DOCX found %+v", r.Documents)
	}

	bad := []struct {
		query, field string
	}{
		{"q=x&wait_for=later&document_id=" + text.ID, "wait_for"},
		{"q=x&wait_for=extraction", "document_id"},
		{"q=x&wait_for=extraction&document_id=not-a-uuid", "document_id"},
		{"q=x&document_id=" + text.ID, "document_id"},
	}
	for _, b := range bad {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Details []struct {
					Field string `json:"field"`
				} `json:"details"`
			} `json:"error"`
		}
		resp := testenv.Do(t, "GET", d.gateway+"/search?"+b.query, nil, &e)
		if resp.StatusCode != 422 || len(e.Error.Details) == 0 || e.Error.Details[0].Field != b.field {
			t.Fatalf("GET /search?%s: %d %+v, want 422 naming %s", b.query, resp.StatusCode, e, b.field)
		}
	}
	if _, err := c.Search(ctx, api.SearchRequest{Query: "x", WaitForExtraction: []string{"0194c3a0-0000-7000-8000-000000000001"}}); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("waiting for an unknown document: %v, want not_found", err)
	}
}

// TestAKilledWorkersExtractionIsTakenOverWithinALease kills `docstream
// dev` (SIGKILL) while one of its workers is in the middle of a long
// extraction (a 40-page scan read by OCR) and starts it again on the same
// data with the default lease: the dead worker's heartbeat stops, so the
// row is taken over within the lease (30 s), not after the extraction's
// time limit. Deleting the document then ends the new run without a
// result and leaves nothing derived from it behind.
func TestAKilledWorkersExtractionIsTakenOverWithinALease(t *testing.T) {
	for _, tool := range []string{"pdftotext", "pdftoppm", "pdfinfo", "tesseract"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/bootstrap.sh installs poppler-utils and tesseract-ocr): skipping", tool)
		}
	}
	// Limits far above what the scan needs, so only the kill ends the run.
	args := []string{"--extractor-workers", "1", "--extractor-ocr-pages", "40", "--extractor-timeout", "30m", "--extractor-cpu", "30m"}
	d := startDev(t, args...)
	c := newClient(t, d.gateway)
	ctx := context.Background()
	img, err := png.Decode(bytes.NewReader(renderPNG(t, "LONG SCAN OF A NUMBAT")))
	if err != nil {
		t.Fatal(err)
	}
	w := upload(t, c, "long scan", "application/pdf", extracttest.ScannedPDF(img, 40))
	running := func(c *client.Client, attempts int) func() bool {
		return func() bool {
			e, err := c.DocumentExtraction(ctx, w.ID)
			return err == nil && e.Status == api.ExtractionRunning && e.Attempts == attempts
		}
	}
	testenv.WaitFor(t, "the scan's extraction runs", running(c, 1))
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.exited
	killed := time.Now()
	d2 := d.restart(t)
	c = newClient(t, d2.gateway)
	// Before this change the row waited out a five-minute lease; the
	// bound here is generous for a loaded machine and still below it.
	testenv.WaitForWithin(t, 4*time.Minute, "another worker takes the dead worker's extraction", running(c, 2))
	t.Logf("taken over %v after the kill (lease 30s)", time.Since(killed).Round(time.Second))

	if err := c.DeleteDocument(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	// The run ends without a result: stopped at its next heartbeat (10 s),
	// or, on a machine fast enough to OCR the 40 pages before that beat,
	// finished and found its row gone. Only the first was awaited before,
	// so a fast machine waited for a line that never came; and the second
	// left the text and thumbnail it had stored after the delete behind.
	testenv.WaitForWithin(t, 2*time.Minute, "the deleted document's extraction ends without a result", func() bool {
		out := d2.output.String()
		return strings.Contains(out, "this run stops") || strings.Contains(out, "result dropped")
	})
	t.Logf("ended %v after the delete (stopped at a heartbeat: %v)", time.Since(deleted).Round(time.Second),
		strings.Contains(d2.output.String(), "this run stops"))
	// The worker is free again: a new upload is extracted.
	next := upload(t, c, "after the scan", "application/pdf", extracttest.PDF("Numbat follow-up"))
	ne := waitExtraction(t, c, next.ID)
	if ne.Status != api.ExtractionDone {
		t.Fatalf("the next upload's extraction: %+v", ne.Extraction)
	}
	// Nothing derived from the deleted document is left: not in object
	// storage (the next document's text is, where it should be), not in
	// the index.
	objects := filepath.Join(d2.dataDir, "blobs", "documents")
	if _, err := os.Stat(filepath.Join(objects, next.ID, "text")); err != nil {
		t.Fatalf("the next document's text: %v", err)
	}
	for _, f := range []string{"text", "thumb.png"} {
		if _, err := os.Stat(filepath.Join(objects, w.ID, f)); err == nil {
			t.Errorf("the deleted document's %s is still stored", f)
		}
	}
	if _, err := c.DocumentThumbnail(ctx, w.ID, ""); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("the deleted document's thumbnail: %v, want not_found", err)
	}
	if hits := searchIDs(t, c, "numbat", ne.CommitLSN); len(hits) != 1 || hits[next.ID].ID == "" {
		t.Errorf("search for numbat found %+v, want only the next document", hits)
	}
}
