package extract_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/extract"
	"github.com/docstream/docstream/internal/extract/extracttest"
)

func TestMain(m *testing.M) {
	// Tasks that misbehave on purpose, run in the child like a real
	// extraction.
	extract.RegisterTask("hang", func(j extract.Job) extract.Result {
		// A grandchild too, which must die with the group.
		cmd := exec.Command("sleep", "300")
		if err := cmd.Start(); err == nil {
			os.WriteFile(filepath.Join(j.OutDir, "pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
		}
		time.Sleep(time.Hour)
		return extract.Result{}
	})
	extract.RegisterTask("hog", func(j extract.Job) extract.Result {
		var keep [][]byte
		for {
			b := make([]byte, 16<<20)
			for i := range b {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	})
	extract.RegisterTask("spin", func(j extract.Job) extract.Result {
		for x := 0; ; x++ {
			_ = x * x
		}
	})
	// Killed from outside (the kernel's OOM killer, an operator), as soon
	// as it runs.
	for name, sig := range map[string]syscall.Signal{"sigkill": syscall.SIGKILL, "sigterm": syscall.SIGTERM} {
		extract.RegisterTask(name, func(j extract.Job) extract.Result {
			_ = syscall.Kill(os.Getpid(), sig)
			time.Sleep(time.Hour)
			return extract.Result{}
		})
	}
	extract.ChildMain()
	os.Exit(m.Run())
}

// limits are the tests' limits: a wall clock generous for a machine
// loaded by parallel work (one PNG's OCR took over 30 s at load average
// 30); the tests of the limits set their own.
func limits() extract.Limits {
	return extract.Limits{Timeout: 2 * time.Minute, CPU: 20 * time.Second, Memory: 512 << 20, OutputCap: 1 << 20,
		MaxPages: 100, OCRPages: 5, MaxPixels: 40_000_000, MaxZip: 64 << 20, MaxRatio: 100, MaxFiles: 1000, Nice: 5}
}

// extractBytes runs a real extraction of data in a child.
func extractBytes(t *testing.T, contentType string, data []byte, l extract.Limits) (extract.Result, string) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "content")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o700)
	job := extract.Job{Task: "extract", Input: in, OutDir: out, ContentType: contentType,
		Format: extract.Detect(contentType, data[:min(len(data), 512)]), Tools: extract.DetectTools(), Limits: l}
	res, err := extract.Runner{}.Run(context.Background(), job)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	text, _ := os.ReadFile(filepath.Join(out, extract.TextFile))
	return res, string(text)
}

func needTool(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s is not installed (scripts/bootstrap.sh installs poppler-utils and tesseract-ocr): skipping", n)
		}
	}
}

func TestDetectPicksTheFormatFromTheTypeAndTheMagic(t *testing.T) {
	cases := []struct {
		name, ct string
		head     string
		want     string
	}{
		{"a declared PDF", "application/pdf", "", extract.FormatPDF},
		{"a PDF uploaded as octet-stream", "application/octet-stream", "%PDF-1.7", extract.FormatPDF},
		{"a PNG without a type", "", "\x89PNG\r\n\x1a\n", extract.FormatImage},
		{"a DOCX", extracttest.DOCXType, "PK\x03\x04", extract.FormatOffice},
		{"a zip of unknown content", "application/zip", "PK\x03\x04", extract.FormatOffice},
		{"HTML with a charset", "text/html; charset=utf-8", "", extract.FormatHTML},
		{"plain text stays on the indexer's path", "text/plain", "", extract.FormatText},
		{"Markdown is read without its markup", "text/markdown", "", extract.FormatMarkdown},
		{"Markdown under its older name", "text/x-markdown; charset=utf-8", "", extract.FormatMarkdown},
		{"a declared type wins over the magic", "application/x-tar", "%PDF-", extract.FormatNone},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := extract.Detect(c.ct, []byte(c.head)); got != c.want {
				t.Fatalf("Detect(%q) = %q, want %q", c.ct, got, c.want)
			}
		})
	}
}

func TestATextPDFGivesItsWordsPagesAndAThumbnail(t *testing.T) {
	needTool(t, "pdftotext", "pdfinfo", "pdftoppm")
	dir := t.TempDir()
	data := extracttest.PDF("Quokka invoices from Rottnest", "Second page mentions wombats")
	in := filepath.Join(dir, "in.pdf")
	os.WriteFile(in, data, 0o600)
	job := extract.Job{Task: "extract", Input: in, OutDir: dir, Format: extract.FormatPDF, Tools: extract.DetectTools(), Limits: limits()}
	res, err := extract.Runner{}.Run(context.Background(), job)
	if err != nil || res.Status != extract.StatusDone {
		t.Fatalf("res %+v err %v", res, err)
	}
	text, _ := os.ReadFile(filepath.Join(dir, extract.TextFile))
	if !strings.Contains(string(text), "Quokka invoices") || !strings.Contains(string(text), "wombats") || res.Pages != 2 {
		t.Fatalf("text %q pages %d", text, res.Pages)
	}
	thumb, err := os.Open(filepath.Join(dir, extract.ThumbFile))
	if err != nil || !res.Thumbnail {
		t.Fatalf("no thumbnail: %v %+v", err, res)
	}
	defer thumb.Close()
	cfg, err := png.DecodeConfig(thumb)
	if err != nil || max(cfg.Width, cfg.Height) != 256 {
		t.Fatalf("thumbnail %dx%d %v, want 256 on the longest side", cfg.Width, cfg.Height, err)
	}
}

// renderText makes a PNG of text: a PDF rendered by pdftoppm at 200 dpi.
func renderText(t *testing.T, words string) image.Image {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.pdf"), extracttest.PDF(words), 0o600)
	out, err := exec.Command("pdftoppm", "-png", "-gray", "-r", "200", "-singlefile", "-x", "0", "-y", "0", "-W", "1700", "-H", "400",
		filepath.Join(dir, "t.pdf"), filepath.Join(dir, "t")).CombinedOutput()
	if err != nil {
		t.Fatalf("pdftoppm: %v %s", err, out)
	}
	f, err := os.Open(filepath.Join(dir, "t.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestAPNGOfTextIsReadByOCR(t *testing.T) {
	needTool(t, "pdftoppm", "tesseract")
	var buf bytes.Buffer
	png.Encode(&buf, renderText(t, "HELLO OCR PLATYPUS"))
	res, text := extractBytes(t, "image/png", buf.Bytes(), limits())
	// Three words are too few to tell their language: none is recorded.
	if res.Status != extract.StatusDone || !res.OCR || res.Language != "" {
		t.Fatalf("res %+v", res)
	}
	if !strings.Contains(strings.ToUpper(text), "PLATYPUS") {
		t.Fatalf("OCR text %q lacks PLATYPUS", text)
	}
	if !res.Thumbnail {
		t.Fatalf("no thumbnail: %+v", res)
	}
}

// --extractor-ocr-languages may name a language whose tesseract data is
// not installed: tesseract skips it silently while another loads, and
// fails every page when none does. OCRLanguages keeps the languages it
// has data for and names the others (the extractor reports them off, and
// turns OCR off when none is left); OCR with those kept reads the image.
func TestOCRLanguagesKeepsThoseWithDataAndNamesTheOthers(t *testing.T) {
	needTool(t, "pdftoppm", "tesseract")
	tools := extract.DetectTools()
	have, missing, err := tools.OCRLanguages(context.Background(), "eng+zzz")
	if err != nil || strings.Join(have, "+") != "eng" || strings.Join(missing, "+") != "zzz" {
		t.Fatalf("OCRLanguages(eng+zzz) = %v, %v, %v; want [eng], [zzz]", have, missing, err)
	}
	if have, missing, err := (extract.Tools{}).OCRLanguages(context.Background(), "eng"); have != nil || missing != nil || err != nil {
		t.Fatalf("without tesseract: %v, %v, %v; want nothing", have, missing, err)
	}
	var buf bytes.Buffer
	png.Encode(&buf, renderText(t, "HELLO OCR WOMBAT"))
	ocr := func(langs string) (extract.Result, string) {
		dir := t.TempDir()
		in, out := filepath.Join(dir, "content"), filepath.Join(dir, "out")
		os.WriteFile(in, buf.Bytes(), 0o600)
		os.Mkdir(out, 0o700)
		res, err := extract.Runner{}.Run(context.Background(), extract.Job{Task: "extract", Input: in, OutDir: out, ContentType: "image/png",
			Format: extract.FormatImage, Tools: tools, Languages: langs, Limits: limits()})
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		text, _ := os.ReadFile(filepath.Join(out, extract.TextFile))
		return res, string(text)
	}
	if res, text := ocr("zzz"); res.Status == extract.StatusDone && strings.Contains(strings.ToUpper(text), "WOMBAT") {
		t.Fatalf("tesseract read the image with only a language it has no data for (%+v)", res)
	}
	if res, text := ocr(strings.Join(have, "+")); res.Status != extract.StatusDone || !strings.Contains(strings.ToUpper(text), "WOMBAT") {
		t.Fatalf("OCR with the languages kept: %+v %q", res, text)
	}
}

func TestAScannedPDFIsReadByOCR(t *testing.T) {
	needTool(t, "pdftoppm", "pdftotext", "pdfinfo", "tesseract")
	res, text := extractBytes(t, "application/pdf", extracttest.ImagePDF(renderText(t, "SCANNED ECHIDNA RECEIPT")), limits())
	if res.Status != extract.StatusDone || !res.OCR {
		t.Fatalf("res %+v", res)
	}
	if !strings.Contains(strings.ToUpper(text), "ECHIDNA") {
		t.Fatalf("OCR text %q lacks ECHIDNA", text)
	}
}

func TestOfficeFilesGiveTheirText(t *testing.T) {
	cases := []struct {
		name, ct string
		data     []byte
		want     []string
		kind     string
	}{
		{"a DOCX", extracttest.DOCXType, extracttest.DOCX([]string{"Kookaburra minutes", "second paragraph & more"}), []string{"Kookaburra minutes", "second paragraph & more"}, "docx"},
		{"an ODT", extracttest.ODTType, extracttest.ODT("Wallaby report", "Numbat appendix"), []string{"Wallaby report", "Numbat appendix"}, "odt"},
		{"an XLSX", extracttest.XLSXType, extracttest.XLSX([]string{"Dingo budget"}, 4242), []string{"Dingo budget", "4242"}, "xlsx"},
		{"a DOCX uploaded as octet-stream", "application/octet-stream", extracttest.DOCX([]string{"Bilby"}), []string{"Bilby"}, "docx"},
		{"a DOCX with a nested zip bomb (never opened)", extracttest.DOCXType, extracttest.NestedBombDOCX("Cassowary safe"), []string{"Cassowary safe"}, "docx"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, text := extractBytes(t, c.ct, c.data, limits())
			if res.Status != extract.StatusDone || res.Kind != c.kind {
				t.Fatalf("res %+v", res)
			}
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Fatalf("text %q lacks %q", text, w)
				}
			}
			if strings.Contains(text, "not text") {
				t.Fatalf("styles leaked into the text: %q", text)
			}
		})
	}
}

func TestHTMLGivesItsTextWithoutScripts(t *testing.T) {
	res, text := extractBytes(t, "text/html", []byte(`<html><head><title>Emu</title><style>p{color:red}</style><script>var secret="x"</script></head><body><p>Lyrebird &amp; song</p></body></html>`), limits())
	if res.Status != extract.StatusDone || !strings.Contains(text, "Lyrebird & song") || !strings.Contains(text, "Emu") {
		t.Fatalf("res %+v text %q", res, text)
	}
	if strings.Contains(text, "secret") || strings.Contains(text, "color") {
		t.Fatalf("script or style kept: %q", text)
	}
}

// Markdown is indexed as its words: headings, emphasis, lists, a table's
// cells, link texts, image alt texts and code keep their text; markers,
// link targets and raw HTML go.
func TestMarkdownGivesItsTextWithoutMarkup(t *testing.T) {
	src := "# Wombat *field* notes\n\n" +
		"Some **bold burrow** and `inline_code` and ~~struck~~ text, with a [link text](https://hiddenhost.example/path \"a title\").\n\n" +
		"- first item\n- [x] done item\n\n" +
		"| Animal | Count |\n|--------|------:|\n| Quokka | 42 |\n\n" +
		"![alt of image](pic.png)\n\n" +
		"```go\nfunc burrowDepth() int\n```\n\n" +
		"<div class=\"secretclass\">raw html block</div>\n\n" +
		"Inline <span data-x=\"attrword\">spanned</span> and https://autolinked.example/x here.\n"
	res, text := extractBytes(t, "text/markdown; charset=utf-8", []byte(src), limits())
	if res.Status != extract.StatusDone || res.Kind != "markdown" || res.TextSize != int64(len(text)) {
		t.Fatalf("res %+v", res)
	}
	for _, want := range []string{"Wombat field notes", "bold burrow", "inline_code", "struck", "link text", "first item", "done item",
		"Quokka", "42", "alt of image", "func burrowDepth() int", "spanned", "autolinked.example/x"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	for _, markup := range []string{"#", "*", "`", "~~", "](", "hiddenhost", "a title", "|", "---", "pic.png", "secretclass", "raw html block", "attrword", "<", "[x]"} {
		if strings.Contains(text, markup) {
			t.Errorf("text keeps markup %q:\n%s", markup, text)
		}
	}
}

func TestHostileFilesFailWithAReason(t *testing.T) {
	l := limits()
	cases := []struct {
		name, ct string
		data     []byte
		tools    []string
		reason   []string // any of
	}{
		{"a zip bomb by ratio", extracttest.DOCXType, extracttest.ZipBombDOCX(40 << 20), nil, []string{extract.ReasonZipBomb}},
		{"an XML entity bomb", extracttest.DOCXType, extracttest.EntityBombDOCX(), nil, []string{extract.ReasonCorrupt}},
		{"a PNG claiming 10 gigapixels", "image/png", extracttest.HugePNG(100000, 100000), []string{"tesseract"}, []string{extract.ReasonImageTooLarge}},
		{"an encrypted PDF", "application/pdf", extracttest.EncryptedPDF(), []string{"pdfinfo", "pdftotext"}, []string{extract.ReasonEncrypted}},
		{"a truncated PDF", "application/pdf", extracttest.PDF("cut short")[:200], []string{"pdfinfo", "pdftotext"}, []string{extract.ReasonCorrupt}},
		{"a zip that is no office file", "application/zip", extracttest.Zip([2]string{"a.txt", "hello"}), nil, []string{extract.ReasonUnsupported}},
		{"garbage called a DOCX", extracttest.DOCXType, []byte("not a zip at all"), nil, []string{extract.ReasonCorrupt}},
		// Every check on declared sizes passes: archive/zip stops the
		// entry when it inflates past what it declared.
		{"a zip entry inflating to 50 MiB past its declared 1000 bytes", extracttest.DOCXType, extracttest.LyingZipDOCX(50 << 20), nil, []string{extract.ReasonZipBomb}},
		// 702 bytes whose page rasterises to 40000×40000 for OCR.
		{"a scan whose page would rasterise to 1.6 GB", "application/pdf", extracttest.HugePagePDF(), []string{"pdfinfo", "pdftotext", "pdftoppm", "tesseract", "prlimit"}, []string{extract.ReasonMemory}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			needTool(t, c.tools...)
			res, _ := extractBytes(t, c.ct, c.data, l)
			if res.Status != extract.StatusFailed {
				t.Fatalf("status %q, want failed: %+v", res.Status, res)
			}
			for _, r := range c.reason {
				if res.Reason == r {
					t.Logf("failed as expected: %s (%s)", res.Reason, res.Detail)
					return
				}
			}
			t.Fatalf("reason %q (%s), want one of %v", res.Reason, res.Detail, c.reason)
		})
	}
}

// Poppler detects the loop itself, says so on stderr and exits 0 reading
// the pages as empty: the extraction fails as corrupt with that reason, in
// bounded time (it ended "done" with no text).
func TestAPDFWhosePageTreeContainsItselfFailsAsCorrupt(t *testing.T) {
	needTool(t, "pdfinfo", "pdftotext")
	l := limits()
	l.Timeout, l.OCRPages = 10*time.Second, 1
	res, text := extractBytes(t, "application/pdf", extracttest.CyclicPDF(), l)
	if res.Status != extract.StatusFailed || res.Reason != extract.ReasonCorrupt || !strings.Contains(res.Detail, "page tree contains itself") {
		t.Fatalf("res %+v text %q: want failed, corrupt, naming the loop", res, text)
	}
	t.Logf("cyclic page tree: %+v", res)
}

// The loop is still seen when poppler writes far more than a stderr
// buffer's worth of other syntax errors before it (2,000 lines, about
// 116 KB).
func TestAPageTreeLoopAfterManySyntaxErrorsStillFailsAsCorrupt(t *testing.T) {
	needTool(t, "pdfinfo", "pdftotext")
	l := limits()
	l.Timeout, l.OCRPages = 10*time.Second, 1
	res, text := extractBytes(t, "application/pdf", extracttest.NoisyCyclicPDF(2000), l)
	if res.Status != extract.StatusFailed || res.Reason != extract.ReasonCorrupt || !strings.Contains(res.Detail, "page tree contains itself") {
		t.Fatalf("res %+v text %q: want failed, corrupt, naming the loop", res, text)
	}
}

func TestTooManyEntriesIsAZipBomb(t *testing.T) {
	var entries [][2]string
	for i := range 50 {
		entries = append(entries, [2]string{"f" + strconv.Itoa(i), "x"})
	}
	l := limits()
	l.MaxFiles = 20
	res, _ := extractBytes(t, extracttest.DOCXType, extracttest.Zip(entries...), l)
	if res.Reason != extract.ReasonZipBomb {
		t.Fatalf("res %+v, want zip_bomb", res)
	}
}

// A zip whose entries each stay under the ratio check (small, or barely
// compressible) but together declare more than MaxZip is refused before
// anything is inflated.
func TestEntriesDeclaringMoreThanTheCapAreAZipBomb(t *testing.T) {
	var paras []string
	x := uint32(1)
	for range 300 {
		var b strings.Builder
		for range 1000 { // pseudo-random letters: deflate cannot shrink them much
			x = x*1664525 + 1013904223
			b.WriteByte('a' + byte(x>>27)%26)
		}
		paras = append(paras, b.String())
	}
	l := limits()
	l.MaxZip = 200 << 10
	res, _ := extractBytes(t, extracttest.DOCXType, extracttest.DOCX(paras), l)
	if res.Status != extract.StatusFailed || res.Reason != extract.ReasonZipBomb || !strings.Contains(res.Detail, "declare more than") {
		t.Fatalf("res %+v, want zip_bomb for the declared total", res)
	}
	l.MaxZip = 64 << 20 // the same file under a cap it fits
	if res, _ := extractBytes(t, extracttest.DOCXType, extracttest.DOCX(paras), l); res.Status != extract.StatusDone {
		t.Fatalf("under a cap it fits: %+v", res)
	}
}

// A scan longer than OCRPages has only its first pages read by OCR (each
// page here is the same image, so its words appear once per page read).
func TestTheOCRPageCapReadsTheFirstPagesOnly(t *testing.T) {
	needTool(t, "pdftoppm", "pdftotext", "pdfinfo", "tesseract")
	l := limits()
	l.OCRPages = 1
	res, text := extractBytes(t, "application/pdf", extracttest.ScannedPDF(renderText(t, "WOMBAT"), 3), l)
	if res.Status != extract.StatusDone || !res.OCR || res.Pages != 3 {
		t.Fatalf("res %+v", res)
	}
	if n := strings.Count(strings.ToUpper(text), "WOMBAT"); n != 1 {
		t.Fatalf("WOMBAT read %d times in %q, want once (one page of OCR)", n, text)
	}
}

// A tool whose output passes the text cap is stopped there (pdftotext of
// a long PDF), and the extraction says it was cut.
func TestAToolsOutputIsCutAtTheTextCap(t *testing.T) {
	needTool(t, "pdfinfo", "pdftotext")
	var pages []string
	for i := range 50 {
		pages = append(pages, fmt.Sprintf("page %d of a long report about quokkas", i))
	}
	l := limits()
	l.OutputCap = 200
	res, text := extractBytes(t, "application/pdf", extracttest.PDF(pages...), l)
	if res.Status != extract.StatusDone || !res.Truncated || res.TextSize > 200 || len(text) > 200 || !strings.Contains(text, "page 0") {
		t.Fatalf("res %+v text %d bytes %q", res, len(text), text)
	}
}

// Markdown nested 300000 blockquotes deep makes the parser's work grow
// with the square of the depth (100000 took over 20 s on the loaded test
// machine): the child's time limit stops it and records why, as for any
// Go parser the child runs.
func TestAMarkdownBombIsStoppedByTheTimeLimit(t *testing.T) {
	l := limits()
	l.Timeout = 2 * time.Second
	res, _ := extractBytes(t, "text/markdown", []byte(strings.Repeat(">", 300000)+" deep"), l)
	if res.Status != extract.StatusFailed || res.Reason != extract.ReasonTimeout {
		t.Fatalf("res %+v, want failed timeout", res)
	}
}

func TestThePageCapReadsTheFirstPagesAndSaysSo(t *testing.T) {
	needTool(t, "pdfinfo", "pdftotext")
	l := limits()
	l.MaxPages = 2
	res, text := extractBytes(t, "application/pdf", extracttest.PDF("alpha page", "beta page", "gamma page"), l)
	if res.Status != extract.StatusDone || !res.Truncated || res.Pages != 3 {
		t.Fatalf("res %+v", res)
	}
	if !strings.Contains(text, "beta") || strings.Contains(text, "gamma") {
		t.Fatalf("text %q: want pages 1-2 only", text)
	}
}

func TestTheOutputCapCutsTheTextAndSaysSo(t *testing.T) {
	l := limits()
	l.OutputCap = 100
	res, text := extractBytes(t, extracttest.DOCXType, extracttest.DOCX([]string{strings.Repeat("héllo ", 100)}), l)
	if res.Status != extract.StatusDone || !res.Truncated || res.TextSize > 100 || len(text) > 100 {
		t.Fatalf("res %+v len %d", res, len(text))
	}
}

func TestAChildOverItsTimeLimitIsKilledWithItsGroup(t *testing.T) {
	// On a loaded machine the child may not have started its grandchild
	// (and written its pid) before the limit: then run again with a longer
	// one, as the grandchild is what this test is about.
	var pid int
	for _, limit := range []time.Duration{time.Second, 4 * time.Second, 16 * time.Second} {
		dir := t.TempDir()
		l := limits()
		l.Timeout = limit
		res, err := extract.Runner{}.Run(context.Background(), extract.Job{Task: "hang", OutDir: dir, Limits: l})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != extract.StatusFailed || res.Reason != extract.ReasonTimeout {
			t.Fatalf("res %+v, want failed timeout", res)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "pid")); err == nil {
			pid, _ = strconv.Atoi(string(b))
			break
		}
		t.Logf("the child wrote no grandchild pid within %v; again with a longer limit", limit)
	}
	if pid == 0 {
		t.Fatal("the child never started its grandchild")
	}
	// The grandchild dies with the group (it may linger as a zombie of
	// init for a moment).
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("grandchild %d still alive after the timeout", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A child that spins on the CPU under a generous wall clock is stopped by
// its CPU limit (RLIMIT_CPU: SIGXCPU, then SIGKILL) and recorded as a
// timeout naming the CPU limit.
func TestAChildOverItsCPULimitFailsWithReasonTimeout(t *testing.T) {
	l := limits()
	l.CPU, l.Timeout = time.Second, 10*time.Minute
	res, err := extract.Runner{}.Run(context.Background(), extract.Job{Task: "spin", OutDir: t.TempDir(), Limits: l})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != extract.StatusFailed || res.Reason != extract.ReasonTimeout || !strings.Contains(res.Detail, "CPU limit") {
		t.Fatalf("res %+v, want failed timeout by the CPU limit", res)
	}
}

// A child killed by a signal neither the extractor nor the limits sent
// (the OOM killer's SIGKILL long before the CPU limit, an operator's
// SIGTERM) is not the file's fault: Run returns ErrKilled, with a failed
// Result of reason killed naming the signal, for the extractor to retry
// (it was a failed Result, "CPU limit reached" for the SIGKILL, recorded
// and never retried).
func TestAChildKilledFromOutsideIsATransientError(t *testing.T) {
	for task, sig := range map[string]string{"sigkill": "killed", "sigterm": "terminated"} {
		t.Run(task, func(t *testing.T) {
			res, err := extract.Runner{}.Run(context.Background(), extract.Job{Task: task, OutDir: t.TempDir(), Limits: limits()})
			if !errors.Is(err, extract.ErrKilled) {
				t.Fatalf("err %v (res %+v), want ErrKilled", err, res)
			}
			if res.Status != extract.StatusFailed || res.Reason != extract.ReasonKilled || !strings.Contains(res.Detail, sig) {
				t.Fatalf("res %+v, want failed, killed, naming the signal", res)
			}
		})
	}
}

// A tool killed from outside (the OOM killer picks the largest process:
// a tool rather than the child) is the same transient failure, while a
// tool at its CPU limit stays a timeout
// (TestAChildOverItsCPULimitFailsWithReasonTimeout's rule).
func TestAToolKilledFromOutsideIsATransientError(t *testing.T) {
	needTool(t, "pdfinfo")
	killed := filepath.Join(t.TempDir(), "pdftotext")
	if err := os.WriteFile(killed, []byte("#!/bin/sh\nkill -KILL $$\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "content")
	if err := os.WriteFile(in, extracttest.PDF("Quokka"), 0o600); err != nil {
		t.Fatal(err)
	}
	tools := extract.DetectTools()
	tools.PDFToText, tools.PDFToPPM, tools.Tesseract = killed, "", ""
	res, err := extract.Runner{}.Run(context.Background(), extract.Job{Task: "extract", Input: in, OutDir: dir, ContentType: "application/pdf",
		Format: extract.FormatPDF, Tools: tools, Limits: limits()})
	if !errors.Is(err, extract.ErrKilled) || res.Reason != extract.ReasonKilled || !strings.Contains(res.Detail, "pdftotext was killed") {
		t.Fatalf("res %+v err %v, want ErrKilled naming pdftotext", res, err)
	}
}

func TestAChildOverItsMemoryLimitFailsWithReasonMemory(t *testing.T) {
	l := limits()
	l.Memory = 128 << 20
	res, err := extract.Runner{}.Run(context.Background(), extract.Job{Task: "hog", OutDir: t.TempDir(), Limits: l})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != extract.StatusFailed {
		t.Fatalf("res %+v, want failed", res)
	}
	// Under the race detector the child's runtime sometimes dies of the
	// limit with a message not recognised as memory (seen in CI, exit
	// status 2, not reproduced alone); the hog is still stopped and
	// recorded failed, which is what protects the process.
	if res.Reason != extract.ReasonMemory && !(raceBuild && res.Reason == extract.ReasonCrashed) {
		t.Fatalf("res %+v, want failed memory", res)
	}
}

func TestAToolOverItsMemoryLimitFailsWithReasonMemory(t *testing.T) {
	needTool(t, "pdftoppm", "pdftotext", "pdfinfo", "tesseract", "prlimit")
	l := limits()
	l.Memory = 24 << 20 // far too little for tesseract's model
	res, _ := extractBytes(t, "application/pdf", extracttest.ImagePDF(image.NewGray(image.Rect(0, 0, 400, 200))), l)
	if res.Status != extract.StatusFailed || res.Reason != extract.ReasonMemory {
		t.Fatalf("res %+v, want failed memory", res)
	}
}

func TestACancelledRunIsAnErrorNotAResult(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	_, err := extract.Runner{}.Run(ctx, extract.Job{Task: "hang", OutDir: t.TempDir(), Limits: limits()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

// TestMeasureThroughput measures extraction throughput through the whole
// sandbox (child start, limits, tools, thumbnail) for docs/benchmarks.md.
// It runs only with DOCSTREAM_MEASURE=1.
func TestMeasureThroughput(t *testing.T) {
	if os.Getenv("DOCSTREAM_MEASURE") != "1" {
		t.Skip("set DOCSTREAM_MEASURE=1 to measure")
	}
	needTool(t, "pdftotext", "pdfinfo", "pdftoppm", "tesseract")
	pages := []string{}
	for i := range 10 {
		pages = append(pages, "Page "+strconv.Itoa(i)+" of the quarterly report about quokkas and wallabies")
	}
	text := extracttest.PDF(pages...)
	start := time.Now()
	const runs = 20
	for range runs {
		if res, _ := extractBytes(t, "application/pdf", text, limits()); res.Status != extract.StatusDone {
			t.Fatalf("%+v", res)
		}
	}
	took := time.Since(start)
	t.Logf("text PDF, 10 pages: %d runs in %v: %.1f pages/s, %.0f ms per document (thumbnail included)", runs, took.Round(time.Millisecond),
		float64(runs*10)/took.Seconds(), float64(took.Milliseconds())/runs)
	scan := extracttest.ImagePDF(renderText(t, "SCANNED ECHIDNA RECEIPT NUMBER 42"))
	start = time.Now()
	const ocrRuns = 5
	for range ocrRuns {
		if res, _ := extractBytes(t, "application/pdf", scan, limits()); res.Status != extract.StatusDone || !res.OCR {
			t.Fatalf("%+v", res)
		}
	}
	took = time.Since(start)
	t.Logf("scanned PDF, 1 page at 200 dpi: %d runs in %v: %.2f pages/s", ocrRuns, took.Round(time.Millisecond), float64(ocrRuns)/took.Seconds())
}
