package app

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/docstream/docstream/internal/testenv"
	"github.com/docstream/docstream/internal/webapp"
)

// axe is axe-core, vendored from npm (scripts/vendor-web.sh): injected
// into the page by the test, never served by the application.
//
//go:embed testdata/axe.min.js
var axeSource string

// browserWait bounds how long a DOM condition may take to hold: it only
// decides how long a broken test hangs (the machine may be very loaded),
// it is no performance limit.
const browserWait = 3 * time.Minute

// screenshotDir is where the browser tests write screenshots:
// DOCSTREAM_SCREENSHOTS (make screenshots sets it to docs/screenshots),
// else a temp dir.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("DOCSTREAM_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// browser is one headless Chromium (Debian's chromium package, installed
// by scripts/bootstrap.sh) and what its tabs reported.
type browser struct {
	t     *testing.T
	base  string
	alloc context.Context
	first context.Context
	shots string

	mu       sync.Mutex
	problems []string // CSP violations, uncaught exceptions, dialogs
	console  []string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed for the browser tests (scripts/bootstrap.sh installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in CI's container
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{t: t, base: base, alloc: alloc, shots: screenshotDir(t)}
	first, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b.first = first
	b.watch(first, "tab 1")
	return b
}

// tab opens another tab of the same browser (sharing its localStorage,
// so the session).
func (b *browser) tab(name string) context.Context {
	ctx, cancel := chromedp.NewContext(b.first)
	b.t.Cleanup(cancel)
	b.watch(ctx, name)
	return ctx
}

// watch records a tab's CSP violations (console and Log domain), uncaught
// exceptions and dialogs (an alert() from a payload would open one).
func (b *browser) watch(ctx context.Context, name string) {
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *cdplog.EventEntryAdded:
			line := fmt.Sprintf("%s: log %s %s: %s %s", name, e.Entry.Source, e.Entry.Level, e.Entry.Text, e.Entry.URL)
			b.console = append(b.console, line)
			if isCSP(e.Entry.Text) {
				b.problems = append(b.problems, line)
			}
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
			}
			line := fmt.Sprintf("%s: console.%s %s", name, e.Type, strings.Join(parts, " "))
			b.console = append(b.console, line)
			if isCSP(line) {
				b.problems = append(b.problems, line)
			}
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.problems = append(b.problems, fmt.Sprintf("%s: uncaught exception: %s (%s:%d)", name, msg, d.URL, d.LineNumber))
		case *page.EventJavascriptDialogOpening:
			b.problems = append(b.problems, fmt.Sprintf("%s: a %s dialog opened: %q", name, e.Type, e.Message))
			// Not from the listener itself, which must not wait on the tab.
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	})
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		b.t.Fatal(err)
	}
	// The page also reports violations to itself (securitypolicyviolation);
	// the test reads window.__csp.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `window.__csp = [];
		document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI), true);`}); err != nil {
		b.t.Fatal(err)
	}
}

func isCSP(s string) bool {
	return strings.Contains(s, "Content Security Policy") || strings.Contains(s, "Content-Security-Policy") || strings.Contains(s, "Refused to")
}

func (b *browser) run(ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v\nconsole:\n%s", err, b.consoleText())
	}
}

func (b *browser) consoleText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.console, "\n")
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, ctx context.Context, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v\nconsole:\n%s", expr, err, b.consoleText())
	}
	return v
}

// waitJS waits until a JavaScript expression is true in the tab; on
// failure it shows what the page said.
func (b *browser) waitJS(ctx context.Context, what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main')?.innerText || ''`))
			b.t.Fatalf("timed out after %v waiting for %s\n  (%s)\nlast error: %v\npage:\n%s\nconsole:\n%s", browserWait, what, expr, err, text, b.consoleText())
		}
		// Polling the page is the wait; the browser does the work.
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *browser) open(ctx context.Context, path string) {
	b.t.Helper()
	b.run(ctx, chromedp.Navigate(b.base+path))
	b.waitJS(ctx, "the app to start on "+path, `document.querySelector('#who') && document.querySelector('#who').childElementCount > 0`)
}

func (b *browser) screenshot(ctx context.Context, name string) {
	b.t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// checkClean fails on any CSP violation, uncaught exception or dialog so
// far, and on violations the page recorded itself.
func (b *browser) checkClean(ctx context.Context, where string) {
	b.t.Helper()
	self := eval[[]string](b, ctx, `window.__csp || []`)
	b.mu.Lock()
	problems := append([]string(nil), b.problems...)
	b.mu.Unlock()
	if len(problems) > 0 || len(self) > 0 {
		b.t.Fatalf("%s: %d problems in the browser:\n%s\nsecuritypolicyviolation events: %v", where, len(problems), strings.Join(problems, "\n"), self)
	}
}

// axe runs axe-core on the page and fails on serious or critical
// violations.
func (b *browser) axe(ctx context.Context, where string) {
	b.t.Helper()
	type violation struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []struct {
			Target []any `json:"target"`
		} `json:"nodes"`
	}
	// Evaluated by DevTools, not loaded by the page: the CSP does not
	// apply to it and the app never serves it.
	b.run(ctx, chromedp.Evaluate[chromedp.Void](axeSource+";0"))
	res := eval[[]violation](b, ctx, `axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => ({target: n.target}))})))`,
		chromedp.EvalAwaitPromise)
	var bad []string
	for _, v := range res {
		if v.Impact == "serious" || v.Impact == "critical" {
			var targets []string
			for _, n := range v.Nodes {
				targets = append(targets, fmt.Sprint(n.Target...))
			}
			bad = append(bad, fmt.Sprintf("%s (%s): %s at %v", v.ID, v.Impact, v.Help, targets))
		}
	}
	if len(bad) > 0 {
		b.t.Errorf("axe on %s: %d serious violations:\n%s", where, len(bad), strings.Join(bad, "\n"))
	}
}

// tabTo presses Tab until the focused element matches selector.
func (b *browser) tabTo(ctx context.Context, selector string) {
	b.t.Helper()
	for i := 0; i < 80; i++ {
		if eval[bool](b, ctx, fmt.Sprintf(`!!document.activeElement && document.activeElement.matches(%q)`, selector)) {
			return
		}
		b.run(ctx, chromedp.KeyEvent(kb.Tab))
	}
	b.t.Fatalf("Tab never reached %s", selector)
}

// stroke draws a line on the element's box with the mouse or a pen
// (pointer events, as a finger or stylus would).
func (b *browser) stroke(ctx context.Context, selector string, pointer input.DispatchMouseEventPointerType, from, to [2]float64) {
	b.t.Helper()
	box := eval[struct{ X, Y, W, H float64 }](b, ctx, fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect(); return {X: r.x, Y: r.y, W: r.width, H: r.height}; })()`, selector))
	at := func(f [2]float64) (float64, float64) { return box.X + f[0]*box.W, box.Y + f[1]*box.H }
	x0, y0 := at(from)
	x1, y1 := at(to)
	ev := func(typ input.DispatchMouseEventType, x, y float64, buttons int64) {
		b.t.Helper()
		if _, err := chromedp.Call(ctx, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: typ, X: x, Y: y,
			Button: input.MouseButtonLeft, Buttons: buttons, ClickCount: 1, PointerType: pointer}); err != nil {
			b.t.Fatal(err)
		}
	}
	ev(input.DispatchMouseEventTypeMousePressed, x0, y0, 1)
	for i := 1; i <= 10; i++ {
		f := float64(i) / 10
		ev(input.DispatchMouseEventTypeMouseMoved, x0+(x1-x0)*f, y0+(y1-y0)*f+10*math.Sin(f*math.Pi*2), 1)
	}
	ev(input.DispatchMouseEventTypeMouseReleased, x1, y1, 0)
}

// startDevSystem starts every target as `docstream dev` runs them (open
// mode, the dev token issuer) over the test database; it returns the
// gateway's URL.
func startDevSystem(t *testing.T) (string, *Config) {
	t.Helper()
	return startDevSystemWith(t, func(*Config) {})
}

// uploadFile creates a document through the API as the browser would
// (multipart), for the documents the test does not upload by hand.
func uploadFile(t *testing.T, base, name, contentType string, content []byte) string {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("title", name)
	w.WriteField("created_by", "carol@example.com")
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name="file"; filename=%q`, name)}
	h["Content-Type"] = []string{contentType}
	part, err := w.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	part.Write(content)
	w.Close()
	resp, err := http.Post(base+"/documents", w.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload %s: %d %v", name, resp.StatusCode, err)
	}
	return doc.ID
}

// onePagePDF is a valid one-page PDF showing text, with its xref table.
func onePagePDF(text string) []byte {
	stream := fmt.Sprintf("BT /F1 36 Tf 72 700 Td (%s) Tj ET", text)
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(stream), stream),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

// TestBrowser drives the web application in headless Chromium against a
// docstream dev-shaped system: sign in, upload and see the document
// appear live in a second tab, preview (text, PDF page 1), sign on the
// canvas and see the status change live in the other tab, search with
// highlights, suggestions, facets and a fuzzy match;
// XSS payloads in titles, file names and an uploaded HTML file stay inert;
// no CSP violation; axe finds no serious violation; a keyboard-only
// upload-and-sign flow; a phone-width layout.
func TestBrowser(t *testing.T) {
	base, _ := startDevSystem(t)

	// The application's own answers carry the strict policy.
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); got != webapp.CSP("") {
		t.Fatalf("CSP of /: %q", got)
	}
	b := newBrowser(t, base)
	a := b.first

	// Sign in with the dev user picker.
	b.open(a, "/app/signin")
	b.axe(a, "the sign-in page")
	b.screenshot(a, "signin")
	b.run(a, chromedp.Click(chromedp.CSS(`button[data-user="alice"]`)))
	b.waitJS(a, "alice to be signed in and the list to show", `location.pathname === '/' && document.querySelector('[data-testid=signed-in-as]') && document.querySelector('[data-testid=signed-in-as]').textContent.includes('Alice')`)
	b.waitJS(a, "the list feed to be live", `document.querySelector('#live-state').dataset.state === 'live'`)

	// A second tab on the list, live.
	other := b.tab("tab 2")
	b.open(other, "/")
	b.waitJS(other, "tab 2's list feed to be live", `document.querySelector('#live-state').dataset.state === 'live'`)

	// Upload a text file with the picker in tab 1; tab 2 shows it without a reload.
	dir := t.TempDir()
	word := "zanzibarite"
	txt := filepath.Join(dir, "quarterly-report.txt")
	if err := os.WriteFile(txt, []byte("The quarterly figures mention "+word+" twice: "+word+".\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.run(a, chromedp.SetUploadFiles(chromedp.CSS(`#upload-input`), []string{txt}))
	b.waitJS(a, "the upload to finish with a link", `document.querySelector('.upload[data-document-id] a')`)
	id := eval[string](b, a, `document.querySelector('.upload[data-document-id]').dataset.documentId`)
	progress := eval[float64](b, a, `document.querySelector('.upload progress').value`)
	if progress != 100 {
		t.Errorf("progress bar at %v after the upload, want 100", progress)
	}
	b.waitJS(other, "the upload to appear in tab 2 without a reload", fmt.Sprintf(`document.querySelector('#doc-rows tr[data-id=%q] a.title')?.textContent === 'quarterly-report.txt'`, id))
	b.screenshot(other, "documents")
	b.axe(other, "the document list")

	// Open it: metadata and the text preview.
	b.run(a, chromedp.Click(chromedp.CSS(`.upload[data-document-id] a`)))
	b.waitJS(a, "the text preview", fmt.Sprintf(`document.querySelector('#preview-text')?.textContent.includes(%q)`, word))
	b.waitJS(a, "the document's live feed", `document.querySelector('#doc-live')?.dataset.state === 'live'`)

	// Sign on the canvas (a mouse stroke and a pen stroke); tab 2's list
	// shows the new status live, tab 1's page too.
	b.stroke(a, "#sign-canvas", input.DispatchMouseEventPointerTypeMouse, [2]float64{0.1, 0.6}, [2]float64{0.5, 0.4})
	b.stroke(a, "#sign-canvas", input.DispatchMouseEventPointerTypePen, [2]float64{0.5, 0.4}, [2]float64{0.9, 0.6})
	b.screenshot(a, "document")
	b.run(a, chromedp.Click(chromedp.CSS(`#sign-submit`)))
	b.waitJS(a, "the signature to be recorded", `document.querySelector('#sign-msg .ok')`)
	b.waitJS(other, "tab 2's list to show the document signed, live", fmt.Sprintf(`document.querySelector('#doc-rows tr[data-id=%q] [data-status=signed]')`, id))
	b.waitJS(a, "the document page to show signed, live", `document.querySelector('#doc-status [data-status=signed]')`)
	b.waitJS(a, "the signature image in the list of signatures", `document.querySelector('#signatures img.sig-img')`)
	b.axe(a, "the document page")

	// A PDF previews its page 1 through pdf.js.
	pdfID := uploadFile(t, base, "contract.pdf", "application/pdf", onePagePDF("Hello from page one"))
	b.open(a, "/app/documents/"+pdfID)
	b.waitJS(a, "pdf.js to render page 1", `document.querySelector('#pdf-canvas')?.dataset.rendered === 'true'`)
	inked := eval[bool](b, a, `(() => { const c = document.querySelector('#pdf-canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		for (let i = 0; i < d.length; i += 4) if (d[i] < 128 && d[i+3] > 0) return true; return false; })()`)
	if !inked {
		t.Errorf("the PDF preview canvas has no dark pixel: page 1 was not drawn")
	}
	b.screenshot(a, "pdf-preview")

	// Search: suggestions as you type, the word highlighted, facets with
	// counts, and a fuzzy match shown as one.
	b.open(a, "/app/search")
	b.run(a, chromedp.SendKeys(chromedp.CSS(`#q`), "quar"))
	b.waitJS(a, "a suggestion for the title prefix", `[...document.querySelectorAll('#suggestions li')].some(li => li.textContent === 'quarterly-report.txt')`)
	testenv.WaitForWithin(t, browserWait, "the word to be found and highlighted", func() bool {
		b.open(a, "/app/search?q="+word)
		b.waitJS(a, "the search to answer", `document.querySelector('#result-count')`)
		ok := eval[bool](b, a, fmt.Sprintf(`[...document.querySelectorAll('#results .hit[data-id=%q] mark')].some(m => m.textContent.toLowerCase() === %q)`, id, word))
		return ok
	})
	b.waitJS(a, "the status facet to count the signed document", `[...document.querySelectorAll('[data-facet=status]')].some(f => f.dataset.value === 'signed' && /\(\d+\)/.test(f.textContent))`)
	b.screenshot(a, "search")
	b.axe(a, "the search page")
	b.open(a, "/app/search?q=zanzibsrite") // one letter wrong
	b.waitJS(a, "a fuzzy match shown as one", fmt.Sprintf(`document.querySelector('#results .hit[data-id=%q] .fuzzy')`, id))

	// Titles and file names carrying XSS payloads render as text; an
	// uploaded HTML file's script never runs in the app's origin.
	payload := `<img src=x onerror="window.__xss=1;alert(1)"><script>window.__xss=2</script>`
	html := filepath.Join(dir, `<svg onload=alert(1)>.html`)
	if err := os.WriteFile(html, []byte(`<html><body><script>localStorage.setItem('pwned','1');alert('xss')</script>hi</body></html>`), 0o644); err != nil {
		t.Fatal(err)
	}
	b.open(a, "/")
	b.run(a, chromedp.SetUploadFiles(chromedp.CSS(`#upload-input`), []string{html}))
	b.waitJS(a, "the HTML upload to finish", `document.querySelectorAll('.upload[data-document-id]').length === 1`)
	htmlID := eval[string](b, a, `document.querySelector('.upload[data-document-id]').dataset.documentId`)
	xssID := uploadFile(t, base, payload, "text/plain", []byte("plain"))
	b.waitJS(other, "the payload titles to show as text in tab 2", fmt.Sprintf(`document.querySelector('#doc-rows tr[data-id=%q] a.title')?.textContent === %q &&
		document.querySelector('#doc-rows tr[data-id=%q] a.title')?.textContent === '<svg onload=alert(1)>.html'`, xssID, payload, htmlID))
	b.open(a, "/app/documents/"+htmlID)
	b.waitJS(a, "the HTML document to get no preview", `document.querySelector('#preview')?.dataset.previewless === 'true'`)
	b.open(a, "/app/documents/"+xssID)
	b.waitJS(a, "the payload title as the heading's text", fmt.Sprintf(`document.querySelector('#doc-title')?.textContent === %q`, payload))
	type leak struct {
		XSS    any  `json:"xss"`
		Pwned  any  `json:"pwned"`
		Images bool `json:"images"`
	}
	injected := eval[leak](b, a, `({xss: window.__xss || null, pwned: localStorage.getItem('pwned'), images: !!document.querySelector('main img[src=x], main svg, main script')})`)
	if injected.XSS != nil || injected.Pwned != nil || injected.Images {
		t.Fatalf("a payload ran or became markup: %+v", injected)
	}

	// Keyboard only: upload with the file input reached by Tab (the
	// picker itself is the operating system's; the test sets its files),
	// open the document with Enter, choose "Type", type a name, sign with
	// Enter.
	kbd := b.tab("keyboard")
	b.open(kbd, "/")
	b.waitJS(kbd, "the keyboard tab's feed", `document.querySelector('#live-state').dataset.state === 'live'`)
	b.tabTo(kbd, "#upload-input")
	note := filepath.Join(dir, "keyboard-note.txt")
	if err := os.WriteFile(note, []byte("typed by keyboard\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.run(kbd, chromedp.SetUploadFiles(chromedp.CSS(`#upload-input`), []string{note}))
	b.waitJS(kbd, "the keyboard upload to finish", `document.querySelector('.upload[data-document-id] a')`)
	kbdID := eval[string](b, kbd, `document.querySelector('.upload[data-document-id]').dataset.documentId`)
	b.tabTo(kbd, ".upload[data-document-id] a")
	b.run(kbd, chromedp.KeyEvent(kb.Enter))
	b.waitJS(kbd, "the document page", fmt.Sprintf(`location.pathname === '/app/documents/%s' && document.querySelector('#mode-draw')`, kbdID))
	b.tabTo(kbd, "#mode-draw")
	b.run(kbd, chromedp.KeyEvent(kb.ArrowRight))
	b.waitJS(kbd, "the Type mode", `document.querySelector('#mode-type').checked && !document.querySelector('.typed').hidden`)
	b.tabTo(kbd, "#typed-signature")
	b.run(kbd, chromedp.KeyEvent("Alice Keyboard"))
	b.tabTo(kbd, "#sign-submit")
	b.run(kbd, chromedp.KeyEvent(kb.Enter))
	b.waitJS(kbd, "the keyboard signature to be recorded and the status live", `document.querySelector('#sign-msg .ok') && document.querySelector('#doc-status [data-status=signed]')`)

	// Phone width: nothing scrolls sideways.
	if _, err := chromedp.Call(a, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 390, Height: 844, DeviceScaleFactor: 2, Mobile: true}); err != nil {
		t.Fatal(err)
	}
	b.open(a, "/")
	b.waitJS(a, "the list at phone width", fmt.Sprintf(`document.querySelector('#doc-rows tr[data-id=%q]')`, id))
	wide := eval[bool](b, a, `document.documentElement.scrollWidth > window.innerWidth + 1`)
	if wide {
		t.Errorf("the list scrolls sideways at 390 px")
	}
	b.screenshot(a, "phone")

	b.checkClean(a, "tab 1")
	b.checkClean(other, "tab 2")
	b.checkClean(kbd, "the keyboard tab")
}
