// Package extract turns uploaded files into searchable text and a
// first-page thumbnail: PDF (poppler's pdftotext, pdftoppm for thumbnails
// and for OCR of image-only pages), images (tesseract), DOCX / XLSX / PPTX
// and ODT / ODS / ODP (their XML inside the zip, read with archive/zip and
// encoding/xml), HTML (golang.org/x/net/html's tokenizer) and Markdown (goldmark's
// syntax tree, its text nodes without the markup).
//
// Uploaded files are hostile input. Every extraction, the Go parsing of
// office files included, runs in a child process (this binary re-executed
// in a hidden mode, see ChildMain) in its own process group, niced, with an
// address-space and a CPU limit, under a wall-clock time limit after which
// the whole group is killed, and with its output capped. A zip bomb, an XML
// entity bomb, a PDF whose page tree loops or an image whose header claims
// a billion pixels stops that child and is recorded as failed with a
// reason (Reason*); it can never take down the serving process.
//
// The external tools run under `prlimit` (util-linux) with the memory
// limit applied to them directly: the Go child's own limit has to sit
// above the Go runtime's address-space reservation (about 1.2 GB of
// virtual memory before the first allocation), which would be no limit
// for a C++ tool.
package extract

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Formats. Plain text (text/* other than HTML and Markdown) is not
// extracted: the indexer reads it directly from the content.
const (
	FormatPDF      = "pdf"
	FormatImage    = "image"
	FormatOffice   = "office" // DOCX, XLSX, PPTX, ODT, ODS, ODP: which one is read from the zip
	FormatHTML     = "html"
	FormatMarkdown = "markdown"
	FormatText     = "text" // indexed directly by the indexer
	FormatNone     = ""     // unsupported
)

// Statuses of a Result.
const (
	StatusDone   = "done"
	StatusFailed = "failed"
)

// Reasons of a failed Result: short, stable codes for metrics and clients.
const (
	ReasonTimeout       = "timeout"         // wall-clock or CPU limit reached; the process group was killed
	ReasonMemory        = "memory"          // the address-space limit was reached
	ReasonZipBomb       = "zip_bomb"        // too many entries, a compression ratio or a total size above the caps
	ReasonEncrypted     = "encrypted"       // a password-protected file
	ReasonCorrupt       = "corrupt"         // the file is not what its type says, or is truncated or malformed
	ReasonImageTooLarge = "image_too_large" // the image header claims more pixels than the cap
	ReasonUnsupported   = "unsupported"     // no extractor for this type, or its tool is not installed
	ReasonCrashed       = "crashed"         // the child died otherwise (a signal, an exit without a result)
	// ReasonKilled: the child or a tool was killed by a signal the
	// extractor did not send (see ErrKilled). Runner.Run returns it with
	// ErrKilled, to be retried; it is recorded only once retries are spent.
	ReasonKilled = "killed"
)

// Limits bound one extraction.
type Limits struct {
	Timeout   time.Duration // wall clock for the whole child; then the process group is killed
	CPU       time.Duration // CPU seconds of each process (RLIMIT_CPU)
	Memory    int64         // address space of each external tool, and the Go child's growth (RLIMIT_AS)
	OutputCap int64         // bytes of text kept; more is cut and the result says Truncated
	MaxPages  int           // PDF pages read; more are left out and the result says Truncated
	OCRPages  int           // pages of an image-only PDF sent to OCR
	MaxPixels int64         // width×height an image may claim
	MaxZip    int64         // total uncompressed bytes of the zip entries read
	MaxRatio  int64         // uncompressed/compressed of any zip entry read
	MaxFiles  int           // entries a zip may have
	Nice      int           // niceness of the child and its tools
}

// Job is one extraction, as the parent hands it to the child (JSON on the
// child's stdin).
type Job struct {
	// Task is "extract" for a file, or a task registered with RegisterTask
	// (tests, the start-up probe).
	Task        string `json:"task"`
	Input       string `json:"input"`   // the content file
	OutDir      string `json:"out_dir"` // the child writes "text" and "thumb.png" here
	ContentType string `json:"content_type"`
	Format      string `json:"format"`
	Tools       Tools  `json:"tools"`
	Languages   string `json:"languages"` // tesseract -l, e.g. "eng+deu"
	Limits      Limits `json:"limits"`
	ThumbSize   int    `json:"thumb_size"` // longest side of the thumbnail in pixels
}

// Result is what an extraction produced.
type Result struct {
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
	Detail    string `json:"detail,omitempty"`
	Kind      string `json:"kind,omitempty"` // docx, odt, png…: the precise format found
	Pages     int    `json:"pages,omitempty"`
	Language  string `json:"language,omitempty"` // detected from the text (ISO 639-3); "" when unsure
	TextSize  int64  `json:"text_size"`
	Truncated bool   `json:"truncated,omitempty"`
	Thumbnail bool   `json:"thumbnail,omitempty"`
	OCR       bool   `json:"ocr,omitempty"`
}

func failed(reason, format string, args ...any) Result {
	return Result{Status: StatusFailed, Reason: reason, Detail: truncate(fmt.Sprintf(format, args...), 500)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// Tools are the paths of the external programs; an empty path means the
// tool is not installed and its formats are off.
type Tools struct {
	PDFToText string `json:"pdftotext,omitempty"`
	PDFToPPM  string `json:"pdftoppm,omitempty"`
	PDFInfo   string `json:"pdfinfo,omitempty"`
	Tesseract string `json:"tesseract,omitempty"`
	Prlimit   string `json:"prlimit,omitempty"`
}

// DetectTools looks the tools up on PATH.
func DetectTools() Tools {
	look := func(name string) string {
		p, err := exec.LookPath(name)
		if err != nil {
			return ""
		}
		return p
	}
	return Tools{PDFToText: look("pdftotext"), PDFToPPM: look("pdftoppm"), PDFInfo: look("pdfinfo"),
		Tesseract: look("tesseract"), Prlimit: look("prlimit")}
}

// OCRLanguages splits configured (tesseract's -l, e.g. "eng+deu") into
// the languages tesseract has data for and those it has not (tesseract
// --list-langs): asking tesseract for a language without its data fails
// every OCR, so OCR runs with the first and the second are reported.
func (t Tools) OCRLanguages(ctx context.Context, configured string) (have, missing []string, err error) {
	if t.Tesseract == "" {
		return nil, nil, nil
	}
	out, err := exec.CommandContext(ctx, t.Tesseract, "--list-langs").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("tesseract --list-langs: %w", err)
	}
	installed := map[string]bool{}
	// The first line is a header: List of available languages in "…" (N):
	for _, l := range strings.Split(string(out), "\n")[1:] {
		if l = strings.TrimSpace(l); l != "" {
			installed[l] = true
		}
	}
	for _, l := range strings.Split(configured, "+") {
		if installed[l] {
			have = append(have, l)
		} else {
			missing = append(missing, l)
		}
	}
	return have, missing, nil
}

// Missing lists, for each format the tools disable, what is missing and
// what it costs (empty when everything is there): the readiness detail and
// the start-up log line.
func (t Tools) Missing() map[string]string {
	out := map[string]string{}
	if t.PDFToText == "" || t.PDFInfo == "" {
		out[FormatPDF] = "pdftotext/pdfinfo not installed (Debian package poppler-utils): PDFs are not extracted"
	} else if t.PDFToPPM == "" {
		out["pdf-thumbnails"] = "pdftoppm not installed (poppler-utils): no PDF thumbnails and no OCR of scanned PDFs"
	}
	if t.Tesseract == "" {
		out["ocr"] = "tesseract not installed (Debian packages tesseract-ocr, tesseract-ocr-eng): images and scanned PDF pages are not read"
	}
	if t.Prlimit == "" {
		out["prlimit"] = "prlimit not installed (util-linux): external tools run under the child's limits only"
	}
	return out
}

// Mime types of the office formats.
var officeTypes = map[string]bool{
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   true,
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         true,
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": true,
	"application/vnd.oasis.opendocument.text":                                   true,
	"application/vnd.oasis.opendocument.spreadsheet":                            true,
	"application/vnd.oasis.opendocument.presentation":                           true,
}

// Detect picks the format of a file from its declared content type and its
// first bytes (head, up to 512). A declared type wins when it names a
// format; the magic decides for application/octet-stream, application/zip
// and for a missing type.
func Detect(contentType string, head []byte) string {
	ct := strings.ToLower(strings.TrimSpace(contentType))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	switch {
	case ct == "application/pdf":
		return FormatPDF
	case ct == "image/png" || ct == "image/jpeg" || ct == "image/gif":
		return FormatImage
	case officeTypes[ct]:
		return FormatOffice
	case ct == "text/html" || ct == "application/xhtml+xml":
		return FormatHTML
	case ct == "text/markdown" || ct == "text/x-markdown":
		return FormatMarkdown
	case strings.HasPrefix(ct, "text/"):
		return FormatText
	case ct != "" && ct != "application/octet-stream" && ct != "application/zip":
		return FormatNone
	}
	switch {
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return FormatPDF
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")), bytes.HasPrefix(head, []byte("\xff\xd8\xff")),
		bytes.HasPrefix(head, []byte("GIF87a")), bytes.HasPrefix(head, []byte("GIF89a")):
		return FormatImage
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return FormatOffice
	}
	return FormatNone
}

// Available reports whether format can be extracted with tools (and why
// not).
func (t Tools) Available(format string) (bool, string) {
	switch format {
	case FormatPDF:
		if t.PDFToText == "" || t.PDFInfo == "" {
			return false, "pdftotext is not installed (poppler-utils)"
		}
	case FormatImage:
		if t.Tesseract == "" {
			return false, "tesseract is not installed (tesseract-ocr)"
		}
	case FormatOffice, FormatHTML, FormatMarkdown:
	default:
		return false, "no extractor for this content type"
	}
	return true, ""
}
