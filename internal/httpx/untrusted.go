package httpx

import (
	"mime"
	"net/http"
	"strings"
)

// Untrusted content (issue 15). A document's bytes and its Content-Type
// are the uploader's word, and the web application shares an origin with
// GET /documents/{id}/content: an HTML or SVG upload opened from there
// would run its scripts as the app, with the viewer's session. So every
// such response carries
//
//	X-Content-Type-Options: nosniff  the browser takes the type as given
//	                                 (a text/plain upload that looks like
//	                                 HTML stays text)
//	Content-Security-Policy: sandbox the document, if a browser renders it
//	                                 at all, runs in an opaque origin with
//	                                 scripts, forms and popups disabled
//
// and Content-Disposition: attachment (a download, never rendered) for
// every type outside PreviewTypes. text/html, image/svg+xml, XML and
// anything unparsable never preview: there is no safe way to render
// active content in the app's origin, and a sandboxed HTML preview would
// still be a phishing page under the app's address. (The app previews
// PDFs with its own pdf.js and images with <img>, neither of which runs
// the response as a document; Chromium's built-in PDF viewer declines a
// sandboxed response opened directly, so a PDF opened on its own
// downloads there — the price of one rule for every type.)

// PreviewTypes are the media types that may render inline: formats a
// browser draws without running anything of the file's.
var PreviewTypes = map[string]bool{
	"application/pdf": true,
	"image/png":       true,
	"image/jpeg":      true,
	"image/gif":       true,
	"image/webp":      true,
	"text/plain":      true,
}

// Previewable reports whether a stored Content-Type may render inline
// (its media type, parameters aside, is in PreviewTypes).
func Previewable(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && PreviewTypes[strings.ToLower(mt)]
}

// UntrustedContent sets the headers of a response whose body and type a
// user supplied (see above). Call it before writing the body.
func UntrustedContent(h http.Header, contentType string) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	if Previewable(contentType) {
		h.Set("Content-Disposition", "inline")
	} else {
		h.Set("Content-Disposition", "attachment")
	}
}
