package extract

import (
	"bufio"
	"io"
	"os"

	"golang.org/x/net/html"
)

// maxHTMLInput bounds the bytes of an HTML file read.
const maxHTMLInput = 64 << 20

// block elements end a line of text.
var block = map[string]bool{"p": true, "div": true, "br": true, "li": true, "tr": true, "h1": true, "h2": true,
	"h3": true, "h4": true, "h5": true, "h6": true, "title": true, "section": true, "article": true, "td": true,
	"th": true, "pre": true, "blockquote": true, "table": true, "ul": true, "ol": true, "hr": true}

// extractHTML streams the file through the tokenizer, keeping text outside
// script, style and other non-content elements.
func extractHTML(job Job, t *text) Result {
	f, err := os.Open(job.Input)
	if err != nil {
		return failed(ReasonCrashed, "open: %v", err)
	}
	defer f.Close()
	z := html.NewTokenizer(bufio.NewReader(io.LimitReader(f, maxHTMLInput)))
	z.SetMaxBuf(1 << 20) // one token may not hold more than 1 MiB
	skip := 0
	for !t.full() {
		switch tt := z.Next(); tt {
		case html.ErrorToken:
			if z.Err() == io.EOF {
				return Result{Kind: "html"}
			}
			return failed(ReasonCorrupt, "html: %v", z.Err())
		case html.TextToken:
			if skip == 0 {
				t.WriteString(string(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch n := string(name); {
			case n == "script" || n == "style" || n == "noscript" || n == "template" || n == "svg":
				if tt == html.StartTagToken {
					skip++
				}
			case block[n]:
				t.WriteString("\n")
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch n := string(name); {
			case n == "script" || n == "style" || n == "noscript" || n == "template" || n == "svg":
				skip = max(0, skip-1)
			case block[n]:
				t.WriteString("\n")
			}
		}
	}
	t.truncated = true
	return Result{Kind: "html"}
}
