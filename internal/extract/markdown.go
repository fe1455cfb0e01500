package extract

import (
	"io"
	"os"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	extast "github.com/yuin/goldmark/extension/ast"
	gmtext "github.com/yuin/goldmark/text"
)

// maxMarkdownInput bounds the bytes of a Markdown file read: the parser
// holds the whole source (and its tree) in memory, under the child's
// memory limit.
const maxMarkdownInput = 16 << 20

// markdown parses CommonMark with GitHub's tables, strikethrough, task
// lists and bare links, so a table's cells read as words, not pipes.
var markdown = goldmark.New(goldmark.WithExtensions(extension.GFM))

// extractMarkdown keeps the words of a Markdown file without its markup:
// the text of headings, paragraphs, lists, tables, link texts, image alt
// texts and code; not link targets, emphasis markers or raw HTML (whose
// tags are markup; an HTML file goes through extractHTML).
func extractMarkdown(job Job, t *text) Result {
	f, err := os.Open(job.Input)
	if err != nil {
		return failed(ReasonCrashed, "open: %v", err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, maxMarkdownInput+1))
	if err != nil {
		return failed(ReasonCrashed, "read: %v", err)
	}
	res := Result{Kind: "markdown"}
	if len(src) > maxMarkdownInput {
		src = src[:maxMarkdownInput]
		res.Truncated = true
		res.Detail = "only the first 16 MiB of the file were read"
	}
	doc := markdown.Parser().Parse(gmtext.NewReader(src))
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if t.full() {
			t.truncated = true
			return ast.WalkStop, nil
		}
		if !entering {
			if n.Type() == ast.TypeBlock {
				t.WriteString("\n")
			}
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.HTMLBlock, *ast.RawHTML:
			return ast.WalkSkipChildren, nil
		case *ast.Text:
			t.WriteString(string(n.Value(src)))
			if n.SoftLineBreak() || n.HardLineBreak() {
				t.WriteString("\n")
			}
		case *ast.String:
			t.WriteString(string(n.Value))
		case *ast.AutoLink:
			t.WriteString(string(n.Label(src)))
		case *ast.CodeBlock, *ast.FencedCodeBlock:
			lines := n.Lines()
			for i := range lines.Len() {
				seg := lines.At(i)
				t.WriteString(string(seg.Value(src)))
			}
		case *extast.TableCell:
			t.WriteString(" ")
		}
		return ast.WalkContinue, nil
	})
	return res
}
