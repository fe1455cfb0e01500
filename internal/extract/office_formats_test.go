package extract_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docstream/docstream/internal/extract"
	"github.com/docstream/docstream/internal/extract/extracttest"
)

// zipOf builds a zip here with archive/zip (not through extracttest), so
// the fixtures are only what the test says: name → content, in order,
// "mimetype" stored first as ODF requires.
func zipOf(t *testing.T, entries ...[2]string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		method := zip.Deflate
		if e[0] == "mimetype" {
			method = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e[0], Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// slideXML is a slide whose text boxes hold the given runs.
func slideXML(runs ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:sld xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"><p:cSld><p:spTree>`)
	for _, r := range runs {
		fmt.Fprintf(&b, `<p:sp><p:txBody><a:bodyPr/><a:p><a:r><a:rPr lang="en-US"/><a:t>%s</a:t></a:r></a:p></p:txBody></p:sp>`, r)
	}
	b.WriteString(`</p:spTree></p:cSld></p:sld>`)
	return b.String()
}

const odsType = "application/vnd.oasis.opendocument.spreadsheet"

func odsContent(rows ...[]string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.3"><office:automatic-styles><style>not text</style></office:automatic-styles><office:body><office:spreadsheet><table:table table:name="Sheet1">`)
	for _, row := range rows {
		b.WriteString(`<table:table-row>`)
		for _, c := range row {
			fmt.Fprintf(&b, `<table:table-cell office:value-type="string"><text:p>%s</text:p></table:table-cell>`, c)
		}
		b.WriteString(`</table:table-row>`)
	}
	b.WriteString(`</table:table></office:spreadsheet></office:body></office:document-content>`)
	return b.String()
}

func TestPPTXAndODSGiveTheirWords(t *testing.T) {
	pptx := zipOf(t,
		[2]string{"[Content_Types].xml", `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`},
		[2]string{"ppt/presentation.xml", `<p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"/>`},
		// Out of order in the zip, and slide10 after slide2: reading
		// order is the slide number.
		[2]string{"ppt/slides/slide10.xml", slideXML("Tenth slide platypus")},
		[2]string{"ppt/slides/slide1.xml", slideXML("Echidna roadmap", "Quarterly goals")},
		[2]string{"ppt/slides/slide2.xml", slideXML("Second slide bandicoot")},
		[2]string{"ppt/slides/_rels/slide1.xml.rels", `<Relationships><Relationship Target="not text"/></Relationships>`},
		[2]string{"ppt/slideLayouts/slideLayout1.xml", slideXML("layout placeholder not text")},
	)
	ods := zipOf(t,
		[2]string{"mimetype", odsType},
		[2]string{"content.xml", odsContent([]string{"Koala", "budget"}, []string{"Possum ledger", "4242"})},
		[2]string{"styles.xml", `<office:document-styles xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"><text:p xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">not text</text:p></office:document-styles>`},
		[2]string{"META-INF/manifest.xml", `<manifest/>`},
	)
	cases := []struct {
		name, ct string
		data     []byte
		kind     string
		pages    int
		want     []string // in this order in the text
	}{
		{"a PPTX", extracttest.PPTXType, pptx, "pptx", 3, []string{"Echidna roadmap", "Quarterly goals", "Second slide bandicoot", "Tenth slide platypus"}},
		{"a PPTX uploaded as octet-stream", "application/octet-stream", pptx, "pptx", 3, []string{"Echidna roadmap"}},
		{"an ODS", odsType, ods, "ods", 0, []string{"Koala", "budget", "Possum ledger", "4242"}},
		{"an ODS uploaded as a zip", "application/zip", ods, "ods", 0, []string{"Koala", "Possum ledger"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, text := extractBytes(t, c.ct, c.data, limits())
			if res.Status != extract.StatusDone || res.Kind != c.kind || res.Pages != c.pages {
				t.Fatalf("res %+v, want done, kind %s, %d pages", res, c.kind, c.pages)
			}
			at := 0
			for _, w := range c.want {
				i := strings.Index(text[at:], w)
				if i < 0 {
					t.Fatalf("text %q lacks %q after offset %d", text, w, at)
				}
				at += i + len(w)
			}
			if strings.Contains(text, "not text") {
				t.Fatalf("a part other than the content leaked into the text: %q", text)
			}
			if c.kind == "ods" && strings.Contains(text, "Koalabudget") {
				t.Fatalf("adjacent cells are not kept apart: %q", text)
			}
		})
	}
}

// The extracted text's language is recorded (ISO 639-3, tesseract's
// codes), and nothing when the text is too short to tell: a wrong
// language is worse than none.
func TestTheLanguageOfTheTextIsDetected(t *testing.T) {
	cases := []struct {
		name, text, want string
	}{
		{"English", "The committee reviewed the quarterly budget and agreed that the remaining funds should be spent on the new library building before the end of the year.", "eng"},
		{"German", "Der Ausschuss hat den Haushalt für das nächste Quartal geprüft und beschlossen, dass die übrigen Mittel noch vor dem Ende des Jahres für den Neubau der Bibliothek ausgegeben werden.", "deu"},
		{"French", "Le comité a examiné le budget trimestriel et a décidé que les fonds restants seraient consacrés à la construction de la nouvelle bibliothèque avant la fin de l'année.", "fra"},
		{"too short to tell", "Ok 42", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, _ := extractBytes(t, extracttest.DOCXType, extracttest.DOCX([]string{c.text}), limits())
			if res.Status != extract.StatusDone || res.Language != c.want {
				t.Fatalf("language %q, want %q (%+v)", res.Language, c.want, res)
			}
		})
	}
}

// No office renderer is installed (LibreOffice is left out: ~400 MB), so
// an office file's thumbnail is its type's icon, coloured by family and
// labelled with its kind: a text document and a spreadsheet differ.
func TestAnOfficeFileGetsItsTypeIconAsThumbnail(t *testing.T) {
	band := map[string]color.Color{}
	for _, c := range []struct {
		kind, ct string
		data     []byte
	}{
		{"docx", extracttest.DOCXType, extracttest.DOCX([]string{"Emu"})},
		{"odt", extracttest.ODTType, extracttest.ODT("Emu")},
		{"xlsx", extracttest.XLSXType, extracttest.XLSX([]string{"Emu"})},
	} {
		dir := t.TempDir()
		in, out := filepath.Join(dir, "content"), filepath.Join(dir, "out")
		if err := os.WriteFile(in, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Mkdir(out, 0o700)
		res, err := extract.Runner{}.Run(context.Background(), extract.Job{Task: "extract", Input: in, OutDir: out, ContentType: c.ct,
			Format: extract.FormatOffice, Limits: limits(), ThumbSize: 128})
		if err != nil || res.Status != extract.StatusDone || !res.Thumbnail {
			t.Fatalf("%s: %v %+v", c.kind, err, res)
		}
		f, err := os.Open(filepath.Join(out, extract.ThumbFile))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() != 128 || img.Bounds().Dy() != 128 {
			t.Fatalf("%s: icon %v %v", c.kind, img.Bounds(), err)
		}
		// The band's colour, at its left edge (left of the label).
		band[c.kind] = img.At(128/8-128*3/40+1, 128*2/3)
	}
	if band["docx"] != band["odt"] || band["docx"] == band["xlsx"] {
		t.Fatalf("band colours: docx %v odt %v xlsx %v; want text documents alike and a spreadsheet different", band["docx"], band["odt"], band["xlsx"])
	}
}

// A missing tool turns its formats off with a line naming the Debian
// package (the extractor logs each at start and shows it as an "off"
// readiness detail, tool-<format>); office and HTML need no tool.
func TestAMissingToolTurnsItsFormatsOffAndSaysWhichPackage(t *testing.T) {
	none := extract.Tools{}
	missing := none.Missing()
	for what, pkg := range map[string]string{"pdf": "poppler-utils", "ocr": "tesseract-ocr", "prlimit": "util-linux"} {
		if !strings.Contains(missing[what], pkg) {
			t.Errorf("missing[%q] = %q, want it to name %s", what, missing[what], pkg)
		}
	}
	for format, want := range map[string]bool{extract.FormatPDF: false, extract.FormatImage: false, extract.FormatOffice: true, extract.FormatHTML: true} {
		if ok, why := none.Available(format); ok != want || (!ok && why == "") {
			t.Errorf("Available(%s) = %v %q without tools, want %v and a reason when off", format, ok, why, want)
		}
	}
	pdfOnly := extract.Tools{PDFToText: "/usr/bin/pdftotext", PDFInfo: "/usr/bin/pdfinfo", Prlimit: "/usr/bin/prlimit"}
	if m := pdfOnly.Missing(); m["pdf"] != "" || !strings.Contains(m["pdf-thumbnails"], "pdftoppm") || m["ocr"] == "" {
		t.Errorf("with pdftotext but no pdftoppm nor tesseract: %v", m)
	}
}
