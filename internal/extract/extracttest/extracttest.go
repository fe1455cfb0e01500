// Package extracttest builds the files the extraction tests upload: real
// PDFs (text, image-only, encrypted, cyclic), OOXML and ODF documents,
// zip bombs and hostile images, written byte by byte so no fixture has to
// be trusted.
package extracttest

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"strconv"
	"strings"
)

// pdf assembles objects (numbered from 1) into a PDF with a correct xref.
func pdf(trailerExtra string, objs ...string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, trailerExtra, xref)
	return b.Bytes()
}

func escape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`)
	return r.Replace(s)
}

// PDF is a text PDF with one page per string (Helvetica, 24 pt).
func PDF(pages ...string) []byte {
	// 1 catalog, 2 pages, 3 font, then (page, content) pairs.
	objs := []string{"<< /Type /Catalog /Pages 2 0 R >>", "", "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"}
	var kids []string
	for i, text := range pages {
		page, content := 4+2*i, 5+2*i
		kids = append(kids, fmt.Sprintf("%d 0 R", page))
		stream := fmt.Sprintf("BT /F1 24 Tf 40 700 Td (%s) Tj ET", escape(text))
		objs = append(objs,
			fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", content),
			fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(stream), stream))
	}
	objs[1] = fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(pages))
	return pdf("", objs...)
}

// ImagePDF is a one-page PDF holding img as a gray image and no text: what
// a scanner makes.
func ImagePDF(img image.Image) []byte {
	b := img.Bounds()
	var raw bytes.Buffer
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			raw.WriteByte(byte((r*299 + g*587 + bl*114) / 1000 >> 8))
		}
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw.Bytes())
	zw.Close()
	w, h := b.Dx(), b.Dy()
	// The page is the image's size at 200 dpi.
	pw, ph := w*72/200, h*72/200
	content := fmt.Sprintf("q %d 0 0 %d 0 0 cm /Im1 Do Q", pw, ph)
	return pdf("",
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>", pw, ph),
		fmt.Sprintf("<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream", w, h, z.Len(), z.String()),
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
}

// ScannedPDF is an n-page PDF whose every page is img as a gray image and
// no text: a long scan, which OCR reads page by page.
func ScannedPDF(img image.Image, n int) []byte {
	one := ImagePDF(img)
	// Reuse ImagePDF's image and content objects (4 and 5) for every page.
	start := bytes.Index(one, []byte("4 0 obj\n"))
	end := bytes.Index(one, []byte("xref\n"))
	objs := strings.SplitAfter(string(one[start:end]), "endobj\n")
	body := func(o string) string {
		o = o[strings.Index(o, "\n")+1:]
		return strings.TrimSuffix(o, "\nendobj\n")
	}
	b := img.Bounds()
	pw, ph := b.Dx()*72/200, b.Dy()*72/200
	out := []string{"<< /Type /Catalog /Pages 2 0 R >>", "", body(objs[0]), body(objs[1])}
	var kids []string
	for i := range n {
		kids = append(kids, fmt.Sprintf("%d 0 R", 5+i))
		out = append(out, fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /XObject << /Im1 3 0 R >> >> /Contents 4 0 R >>", pw, ph))
	}
	out[1] = fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), n)
	return pdf("", out...)
}

// EncryptedPDF is a PDF under the standard security handler whose user
// password is not empty: no reader opens it without the password.
func EncryptedPDF() []byte {
	o := strings.Repeat("\x11", 32)
	u := strings.Repeat("\x22", 32)
	hex := func(s string) string { return fmt.Sprintf("<%x>", s) }
	return pdf("/Encrypt 4 0 R /ID [<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>] ",
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
		fmt.Sprintf("<< /Filter /Standard /V 1 /R 2 /O %s /U %s /P -4 >>", hex(o), hex(u)))
}

// CyclicPDF is a PDF whose page tree contains itself.
func CyclicPDF() []byte {
	return pdf("",
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
		"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R 3 0 R] /Count 1000000 >>")
}

// NoisyCyclicPDF is CyclicPDF behind n kids of the wrong type: poppler
// writes a syntax error line for each (about 58 bytes) before it reaches
// the loop, so a reader of its stderr sees the loop only past n lines.
func NoisyCyclicPDF(n int) []byte {
	kids := make([]string, 0, n+1)
	objs := []string{"<< /Type /Catalog /Pages 2 0 R >>", "", "<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>"}
	for i := range n {
		kids = append(kids, fmt.Sprintf("%d 0 R", 4+i))
		objs = append(objs, strconv.Itoa(i))
	}
	kids = append(kids, "3 0 R")
	objs[1] = fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), n+1)
	return pdf("", objs...)
}

// Zip builds a zip of name → content, deflated, in the given order.
func Zip(entries ...[2]string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		method := zip.Deflate
		if e[0] == "mimetype" {
			method = zip.Store // ODF: first and stored
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e[0], Method: method})
		if err != nil {
			panic(err)
		}
		w.Write([]byte(e[1]))
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

const (
	DOCXType = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	XLSXType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	PPTXType = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
	ODTType  = "application/vnd.oasis.opendocument.text"
)

const contentTypes = `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`

// DOCXXML is word/document.xml with one paragraph per string.
func DOCXXML(paras ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>`)
	for _, p := range paras {
		fmt.Fprintf(&b, `<w:p><w:r><w:t xml:space="preserve">%s</w:t></w:r></w:p>`, xmlEscape(p))
	}
	b.WriteString(`</w:body></w:document>`)
	return b.String()
}

// DOCX is a Word document with one paragraph per string, plus extra
// entries.
func DOCX(paras []string, extra ...[2]string) []byte {
	return Zip(append([][2]string{{"[Content_Types].xml", contentTypes}, {"word/document.xml", DOCXXML(paras...)}}, extra...)...)
}

// ODT is an OpenDocument text with one paragraph per string.
func ODT(paras ...string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:automatic-styles><style>not text</style></office:automatic-styles><office:body><office:text>`)
	for _, p := range paras {
		fmt.Fprintf(&b, `<text:p>%s</text:p>`, xmlEscape(p))
	}
	b.WriteString(`</office:text></office:body></office:document-content>`)
	return Zip([2]string{"mimetype", ODTType}, [2]string{"content.xml", b.String()}, [2]string{"META-INF/manifest.xml", `<manifest/>`})
}

// XLSX is a workbook with one sheet whose cells are the strings (shared)
// and the numbers given.
func XLSX(cells []string, numbers ...float64) []byte {
	var ss, sheet strings.Builder
	ss.WriteString(`<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">`)
	sheet.WriteString(`<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1">`)
	for i, c := range cells {
		fmt.Fprintf(&ss, `<si><t>%s</t></si>`, xmlEscape(c))
		fmt.Fprintf(&sheet, `<c t="s"><v>%d</v></c>`, i)
	}
	for _, n := range numbers {
		fmt.Fprintf(&sheet, `<c><v>%g</v></c>`, n)
	}
	ss.WriteString(`</sst>`)
	sheet.WriteString(`</row></sheetData></worksheet>`)
	return Zip([2]string{"[Content_Types].xml", contentTypes}, [2]string{"xl/workbook.xml", `<workbook/>`},
		[2]string{"xl/sharedStrings.xml", ss.String()}, [2]string{"xl/worksheets/sheet1.xml", sheet.String()})
}

// ZipBombDOCX is a DOCX whose document.xml inflates n bytes of
// whitespace from a few kilobytes.
func ZipBombDOCX(n int) []byte {
	body := DOCXXML("bomb") + strings.Repeat(" ", n)
	return Zip([2]string{"[Content_Types].xml", contentTypes}, [2]string{"word/document.xml", body})
}

// NestedBombDOCX is a DOCX with a harmless document and a high-ratio zip
// embedded as an object.
func NestedBombDOCX(paras ...string) []byte {
	inner := Zip([2]string{"zeros", strings.Repeat("\x00", 8<<20)})
	return DOCX(paras, [2]string{"word/embeddings/oleObject1.zip", string(inner)})
}

// EntityBombDOCX is a DOCX whose document.xml is a billion-laughs entity
// expansion.
func EntityBombDOCX() []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">`)
	prev := "lol"
	for i := 1; i <= 9; i++ {
		name := fmt.Sprintf("lol%d", i)
		fmt.Fprintf(&b, `<!ENTITY %s "%s">`, name, strings.Repeat("&"+prev+";", 10))
		prev = name
	}
	b.WriteString(`]><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>`)
	return Zip([2]string{"[Content_Types].xml", contentTypes}, [2]string{"word/document.xml", b.String()})
}

// HugePNG is a valid PNG header claiming w×h pixels, with one tiny IDAT:
// a few dozen bytes that would need w×h×4 bytes to decode.
func HugePNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	chunk("IHDR", ihdr)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(make([]byte, 1024))
	zw.Close()
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
	return b.Bytes()
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// HugePagePDF is a scan whose one page is 14400 pt square (200 inches, the
// largest page PDF allows) holding a tiny image: rasterising it for OCR at
// 200 dpi would take 40000×40000 pixels, 1.6 GB, from a file of a few
// hundred bytes.
func HugePagePDF() []byte {
	one := ImagePDF(image.NewGray(image.Rect(0, 0, 8, 8)))
	return bytes.Replace(bytes.Replace(one, []byte("/MediaBox [0 0 2 2]"), []byte("/MediaBox [0 0 14400 14400]"), 1),
		[]byte("q 2 0 0 2 0 0 cm"), []byte("q 14400 0 0 14400 0 0 cm"), 1)
}

// LyingZipDOCX is a DOCX whose word/document.xml declares 1000 bytes in
// its headers but inflates to n: a zip bomb that passes every check made
// on the declared sizes.
func LyingZipDOCX(n int) []byte {
	var body bytes.Buffer
	body.WriteString(`<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>`)
	body.Write(bytes.Repeat([]byte("a"), n))
	body.WriteString(`</w:t></w:r></w:p></w:body></w:document>`)
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	fw.Write(body.Bytes())
	fw.Close()
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	w, _ := zw.Create("[Content_Types].xml")
	w.Write([]byte(`<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`))
	raw, _ := zw.CreateRaw(&zip.FileHeader{Name: "word/document.xml", Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(body.Bytes()),
		CompressedSize64: uint64(z.Len()), UncompressedSize64: 1000})
	raw.Write(z.Bytes())
	zw.Close()
	return out.Bytes()
}
