package extract

import (
	"archive/zip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ODF mimetypes (the "mimetype" entry of the zip) and their kinds.
var odfKinds = map[string]string{
	"application/vnd.oasis.opendocument.text":         "odt",
	"application/vnd.oasis.opendocument.spreadsheet":  "ods",
	"application/vnd.oasis.opendocument.presentation": "odp",
}

// ratioFloor is the entry size below which the compression ratio is not
// checked: small XML parts legitimately compress very well.
const ratioFloor = 1 << 20

// extractOffice reads the text of an OOXML or ODF file. The zip is checked
// before anything is decompressed: at most MaxFiles entries, a declared
// total of at most MaxZip bytes, and no entry above 1 MiB compressed more
// than MaxRatio times. archive/zip itself refuses an entry that inflates
// past its declared size, so a lying header cannot get round the caps.
// Archives nested inside (embedded objects) are never opened.
func extractOffice(job Job, t *text) Result {
	f, err := os.Open(job.Input)
	if err != nil {
		return failed(ReasonCrashed, "open: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return failed(ReasonCrashed, "stat: %v", err)
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return failed(ReasonCorrupt, "not a readable zip: %v", err)
	}
	l := job.Limits
	if l.MaxFiles > 0 && len(zr.File) > l.MaxFiles {
		return failed(ReasonZipBomb, "%d entries, above the cap of %d", len(zr.File), l.MaxFiles)
	}
	var total uint64
	byName := make(map[string]*zip.File, len(zr.File))
	for _, e := range zr.File {
		total += e.UncompressedSize64
		if l.MaxZip > 0 && total > uint64(l.MaxZip) {
			return failed(ReasonZipBomb, "entries declare more than %d bytes uncompressed", l.MaxZip)
		}
		if l.MaxRatio > 0 && e.UncompressedSize64 > ratioFloor && e.UncompressedSize64 > e.CompressedSize64*uint64(l.MaxRatio) {
			return failed(ReasonZipBomb, "entry %q is compressed %d:1, above the cap of %d:1", truncate(e.Name, 100), e.UncompressedSize64/max(e.CompressedSize64, 1), l.MaxRatio)
		}
		byName[e.Name] = e
	}

	kind, parts := officeParts(byName)
	if kind == "" {
		return failed(ReasonUnsupported, "a zip that is neither an OOXML nor an OpenDocument file")
	}
	res := Result{Kind: kind}
	if kind == "pptx" || kind == "xlsx" {
		res.Pages = len(parts) - btoi(kind == "xlsx" && byName["xl/sharedStrings.xml"] != nil)
	}
	for _, name := range parts {
		if t.full() {
			t.truncated = true
			break
		}
		if err := readPart(byName[name], kind, t); err != nil {
			if errors.Is(err, zip.ErrFormat) || errors.Is(err, zip.ErrChecksum) {
				return failed(ReasonZipBomb, "entry %q: %v (it inflates past its declared size, or is damaged)", truncate(name, 100), err)
			}
			return failed(ReasonCorrupt, "entry %q: %v", truncate(name, 100), err)
		}
		t.WriteString("\n")
	}
	// No renderer of office files is installed (LibreOffice would be
	// ~400 MB and seconds a document): the thumbnail is the type's icon.
	if err := officeIcon(kind, filepath.Join(job.OutDir, ThumbFile), thumbSize(job)); err != nil {
		res.Detail = "no thumbnail: " + err.Error()
	}
	return res
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// officeParts finds the kind and the XML parts holding the text, in
// reading order.
func officeParts(byName map[string]*zip.File) (kind string, parts []string) {
	if mt := byName["mimetype"]; mt != nil {
		if r, err := mt.Open(); err == nil {
			b, _ := io.ReadAll(io.LimitReader(r, 128))
			r.Close()
			if k := odfKinds[strings.TrimSpace(string(b))]; k != "" && byName["content.xml"] != nil {
				return k, []string{"content.xml"}
			}
		}
	}
	numbered := func(prefix string) []string {
		var out []string
		for name := range byName {
			if strings.HasPrefix(name, prefix) && strings.HasSuffix(name, ".xml") && !strings.Contains(name[len(prefix):], "/") {
				out = append(out, name)
			}
		}
		num := func(s string) int {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimLeft(s[len(prefix):], "abcdefghijklmnopqrstuvwxyz"), ".xml"))
			return n
		}
		sort.Slice(out, func(i, j int) bool { return num(out[i]) < num(out[j]) })
		return out
	}
	switch {
	case byName["word/document.xml"] != nil:
		return "docx", []string{"word/document.xml"}
	case byName["xl/workbook.xml"] != nil:
		parts = numbered("xl/worksheets/sheet")
		if byName["xl/sharedStrings.xml"] != nil {
			parts = append([]string{"xl/sharedStrings.xml"}, parts...)
		}
		return "xlsx", parts
	case byName["ppt/presentation.xml"] != nil:
		return "pptx", numbered("ppt/slides/slide")
	}
	return "", nil
}

// readPart streams one XML part into t: the character data of the text
// elements, a line break after paragraphs and rows. A DTD is refused (no
// office format has one; it is how entity bombs start), and encoding/xml
// never expands entities it was not given.
func readPart(e *zip.File, kind string, t *text) error {
	r, err := e.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	d := xml.NewDecoder(r)
	odf := kind == "odt" || kind == "ods" || kind == "odp"
	depth := 0 // >0 inside an element whose text is kept
	inBody := false
	skipValue := false // inside an xlsx cell whose value is a shared-string index
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch tok := tok.(type) {
		case xml.Directive:
			if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(string(tok))), "DOCTYPE") {
				return fmt.Errorf("a DTD is not allowed in an office file")
			}
		case xml.StartElement:
			name := tok.Name.Local
			switch {
			case odf && name == "body":
				inBody = true
			case odf && inBody && name == "s":
				t.WriteString(" ")
			case name == "tab":
				t.WriteString("\t")
			case name == "br" || name == "line-break":
				t.WriteString("\n")
			case kind == "xlsx" && name == "c":
				skipValue = attr(tok, "t") == "s"
			}
			if name == "t" || (kind == "xlsx" && name == "v" && !skipValue) || (odf && inBody) {
				depth++
			}
		case xml.EndElement:
			name := tok.Name.Local
			if name == "t" || (kind == "xlsx" && name == "v" && !skipValue) || (odf && inBody) {
				depth = max(0, depth-1)
			}
			switch {
			case odf && name == "body":
				inBody = false
			case name == "p" || name == "h" || name == "si" || name == "row" || name == "table-row":
				t.WriteString("\n")
			case name == "c" || name == "table-cell":
				t.WriteString("\t")
			}
		case xml.CharData:
			if depth > 0 {
				t.WriteString(string(tok))
			}
		}
	}
}

func attr(e xml.StartElement, local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}
