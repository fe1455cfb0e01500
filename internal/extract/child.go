package extract

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/abadojack/whatlanggo"
)

// Names of the files a child writes in Job.OutDir.
const (
	TextFile  = "text"
	ThumbFile = "thumb.png"
)

// text collects extracted text up to a cap.
type text struct {
	buf       bytes.Buffer
	cap       int64
	truncated bool
}

func newText(limit int64) *text {
	if limit <= 0 {
		limit = 1 << 20
	}
	return &text{cap: limit}
}

// WriteString keeps what fits and notes the rest was cut (never an error:
// extraction goes on so the page count and thumbnail are still right).
func (t *text) WriteString(s string) {
	room := t.cap - int64(t.buf.Len())
	if room <= 0 {
		if s != "" {
			t.truncated = true
		}
		return
	}
	if int64(len(s)) > room {
		s = s[:room]
		// Do not keep half a character.
		for len(s) > 0 && !utf8.ValidString(s[max(0, len(s)-utf8.UTFMax):]) {
			s = s[:len(s)-1]
		}
		t.truncated = true
	}
	t.buf.WriteString(s)
}

func (t *text) full() bool { return int64(t.buf.Len()) >= t.cap }

// run is the "extract" task: the child's whole job for one file.
func run(job Job) Result {
	t := newText(job.Limits.OutputCap)
	var res Result
	switch job.Format {
	case FormatPDF:
		res = extractPDF(job, t)
	case FormatImage:
		res = extractImage(job, t)
	case FormatOffice:
		res = extractOffice(job, t)
	case FormatHTML:
		res = extractHTML(job, t)
	case FormatMarkdown:
		res = extractMarkdown(job, t)
	default:
		return failed(ReasonUnsupported, "no extractor for %q", job.ContentType)
	}
	if res.Status == "" {
		res.Status = StatusDone
	}
	if res.Status != StatusDone {
		return res
	}
	out := bytes.ToValidUTF8(t.buf.Bytes(), nil)
	if err := os.WriteFile(filepath.Join(job.OutDir, TextFile), out, 0o600); err != nil {
		return failed(ReasonCrashed, "write text: %v", err)
	}
	res.TextSize = int64(len(out))
	res.Truncated = res.Truncated || t.truncated
	res.Language = detectLanguage(out)
	if _, err := os.Stat(filepath.Join(job.OutDir, ThumbFile)); err == nil {
		res.Thumbnail = true
	}
	return res
}

// toolRun is the outcome of one external tool.
type toolRun struct {
	out       []byte
	stderr    string // its last stderrCap bytes
	broken    string // why its stderr says the PDF is broken (brokenPDF), seen anywhere in it
	truncated bool   // the output cap was reached and the tool stopped
	err       error
}

// tool runs path with args under the job's limits (prlimit), reading at
// most outCap bytes of its stdout; a tool still writing past the cap is
// killed. No shell is involved: args are passed as they are.
func tool(job Job, outCap int64, path string, args ...string) toolRun {
	name, argv := path, args
	if job.Tools.Prlimit != "" {
		pre := []string{}
		if job.Limits.Memory > 0 {
			pre = append(pre, "--as="+strconv.FormatInt(job.Limits.Memory, 10))
		}
		if job.Limits.CPU > 0 {
			s := int64(job.Limits.CPU.Seconds() + 0.999)
			pre = append(pre, fmt.Sprintf("--cpu=%d:%d", s, s+1))
		}
		name, argv = job.Tools.Prlimit, append(append(pre, "--", path), args...)
	}
	cmd := exec.Command(name, argv...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "OMP_THREAD_LIMIT=1"}
	// The tool dies with the child (the child dies with its parent).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr := &toolStderr{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return toolRun{err: err}
	}
	if err := cmd.Start(); err != nil {
		return toolRun{err: err}
	}
	var r toolRun
	r.out, err = io.ReadAll(io.LimitReader(stdout, outCap+1))
	if int64(len(r.out)) > outCap {
		r.out, r.truncated = r.out[:outCap], true
		_ = cmd.Process.Kill()
	}
	werr := cmd.Wait()
	r.stderr, r.broken = stderr.String(), stderr.broken
	if r.truncated {
		return r
	}
	if err != nil {
		r.err = err
	} else {
		r.err = werr
	}
	return r
}

// toolFailure names why a tool failed; ok is false when it did not.
// job's CPU limit is the tool's too: through prlimit, or inherited from the
// child's own RLIMIT_CPU.
func toolFailure(job Job, what string, r toolRun) (Result, bool) {
	if r.err == nil {
		// pdftoppm reports a page too large to rasterise under the memory
		// limit with "Out of memory" and exit status 0, writing an empty
		// image: OCR would read nothing and the extraction pass as done.
		if outOfMemory(r.stderr) {
			return failed(ReasonMemory, "%s: memory limit reached: %s", what, lastLine(r.stderr)), true
		}
		return Result{}, false
	}
	low := strings.ToLower(r.stderr)
	var ee *exec.ExitError
	var ws syscall.WaitStatus
	if errors.As(r.err, &ee) {
		ws, _ = ee.Sys().(syscall.WaitStatus)
	}
	switch {
	case outOfMemory(r.stderr):
		return failed(ReasonMemory, "%s: memory limit reached: %s", what, lastLine(r.stderr)), true
	case ws.Signaled() && killedFromOutside(ws.Signal(), ee.ProcessState, job.Limits.CPU):
		return outsideKill(what, ws.Signal(), ee.ProcessState), true
	case ws.Signaled() && (ws.Signal() == syscall.SIGXCPU || ws.Signal() == syscall.SIGKILL):
		return failed(ReasonTimeout, "%s: CPU limit reached (%v)", what, ws.Signal()), true
	case strings.Contains(low, "incorrect password") || strings.Contains(low, "encrypted"):
		return failed(ReasonEncrypted, "%s: the file is password-protected", what), true
	case ws.Signaled():
		return failed(ReasonCrashed, "%s: killed by %v: %s", what, ws.Signal(), lastLine(r.stderr)), true
	case ee != nil:
		return failed(ReasonCorrupt, "%s: %s", what, lastLine(r.stderr)), true
	}
	return failed(ReasonCrashed, "%s: %v", what, r.err), true
}

var pagesRe = regexp.MustCompile(`(?m)^Pages:\s+(\d+)`)

// popplerBroken are the messages with which poppler gives up on a PDF's
// structure but still exits 0, and why the file is failed for each. Other
// "Syntax Error" lines are common in real files that read well, and are
// not failures.
var popplerBroken = map[string]string{
	// A page tree that contains itself: poppler stops walking it and
	// reads the pages it did not reach as empty, so the file would end
	// "done" with no text (or be sent to OCR as a scan).
	"Loop in Pages tree": "the page tree contains itself (poppler: Loop in Pages tree)",
}

// brokenPDF is why a poppler tool's stderr says the file's structure is
// broken, or "" when it does not.
func brokenPDF(stderr string) string {
	for msg, why := range popplerBroken {
		if strings.Contains(stderr, msg) {
			return why
		}
	}
	return ""
}

// stderrCap is how much of a tool's stderr is kept: its end, where the
// reason of a failure is (lastLine).
const stderrCap = 16 << 10

// toolStderr keeps the last stderrCap bytes a tool writes to stderr and
// notes a popplerBroken message wherever it comes: a broken file can make
// poppler write thousands of syntax errors before the one that matters
// (TestAPageTreeLoopAfterManySyntaxErrorsStillFailsAsCorrupt), and others
// after it.
type toolStderr struct {
	tail   []byte
	broken string // brokenPDF of what was written
	carry  string // the end of the last write: a message may span two
}

func (s *toolStderr) Write(p []byte) (int, error) {
	if s.broken == "" {
		seen := s.carry + string(p)
		s.broken = brokenPDF(seen)
		// Longer than any popplerBroken message.
		s.carry = seen[max(0, len(seen)-64):]
	}
	s.tail = append(s.tail, p...)
	if len(s.tail) > 2*stderrCap {
		s.tail = append([]byte(nil), s.tail[len(s.tail)-stderrCap:]...)
	}
	return len(p), nil
}

func (s *toolStderr) String() string { return string(s.tail[max(0, len(s.tail)-stderrCap):]) }

func extractPDF(job Job, t *text) Result {
	info := tool(job, 64<<10, job.Tools.PDFInfo, job.Input)
	if res, bad := toolFailure(job, "pdfinfo", info); bad {
		return res
	}
	m := pagesRe.FindSubmatch(info.out)
	if m == nil {
		return failed(ReasonCorrupt, "pdfinfo reports no page count")
	}
	pages, _ := strconv.Atoi(string(m[1]))
	res := Result{Kind: "pdf", Pages: pages}
	n := pages
	if job.Limits.MaxPages > 0 && n > job.Limits.MaxPages {
		n = job.Limits.MaxPages
		res.Truncated = true
		res.Detail = fmt.Sprintf("only the first %d of %d pages were read (page cap)", n, pages)
	}
	if n == 0 {
		return res
	}
	// Without -q: poppler reports some broken structures only on stderr
	// and then exits 0 as if the pages were empty (see brokenPDF).
	txt := tool(job, t.cap, job.Tools.PDFToText, "-enc", "UTF-8", "-l", strconv.Itoa(n), job.Input, "-")
	if r, bad := toolFailure(job, "pdftotext", txt); bad {
		return r
	}
	if why := txt.broken; why != "" {
		return failed(ReasonCorrupt, "pdftotext: %s", why)
	}
	t.WriteString(string(txt.out))
	t.truncated = t.truncated || txt.truncated
	if job.Tools.PDFToPPM == "" {
		return res
	}
	// The thumbnail: the first page scaled to ThumbSize on its longest side.
	prefix := filepath.Join(job.OutDir, "thumb")
	thumb := tool(job, 1<<10, job.Tools.PDFToPPM, "-q", "-png", "-f", "1", "-l", "1", "-scale-to", strconv.Itoa(thumbSize(job)), "-singlefile", job.Input, prefix)
	if r, bad := toolFailure(job, "pdftoppm", thumb); bad && (r.Reason == ReasonTimeout || r.Reason == ReasonMemory) {
		return r
	}
	// Image-only pages (scans): no text at all, so read them with OCR.
	if job.Tools.Tesseract != "" && !hasWords(string(txt.out)) {
		for p := 1; p <= min(n, max(job.Limits.OCRPages, 1)) && !t.full(); p++ {
			page := filepath.Join(job.OutDir, "page")
			ras := tool(job, 1<<10, job.Tools.PDFToPPM, "-q", "-png", "-gray", "-r", "200", "-f", strconv.Itoa(p), "-l", strconv.Itoa(p), "-singlefile", job.Input, page)
			if r, bad := toolFailure(job, "pdftoppm", ras); bad {
				return r
			}
			ocr := tool(job, t.cap, job.Tools.Tesseract, page+".png", "stdout", "-l", languages(job), "--psm", "3")
			if r, bad := toolFailure(job, "tesseract", ocr); bad {
				return r
			}
			t.WriteString(string(ocr.out))
			_ = os.Remove(page + ".png")
		}
		res.OCR = true
	}
	return res
}

// languageSample is how much of the text language detection reads: a
// page says the language as well as the whole file, at a fixed cost (26 ms
// for 4 KiB on the loaded benchmark machine, 88 ms for 16 KiB; see
// docs/benchmarks.md).
const languageSample = 4 << 10

// detectLanguage names the language of text (ISO 639-3, as tesseract's
// language codes), or "" when the text is too short or the detector
// unsure: a wrong language is worse than none. whatlanggo compares
// trigram profiles of 84 languages without models to load (lingua-go is
// more accurate on short text but embeds large language models in the binary),
// so it runs in every extraction.
func detectLanguage(text []byte) string {
	if len(text) > languageSample {
		text = bytes.ToValidUTF8(text[:languageSample], nil)
	}
	if !hasWords(string(text)) {
		return ""
	}
	info := whatlanggo.Detect(string(text))
	if info.Lang < 0 || !info.IsReliable() {
		return ""
	}
	return info.Lang.Iso6393()
}

func thumbSize(job Job) int {
	if job.ThumbSize > 0 {
		return job.ThumbSize
	}
	return 256
}

func languages(job Job) string {
	if job.Languages == "" {
		return "eng"
	}
	return job.Languages
}

// hasWords reports whether s holds any letter or digit: a PDF whose pages
// yield none is a scan.
func hasWords(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0
}
