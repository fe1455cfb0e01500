package app

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/testenv"
)

// In open mode (the reference's behaviour, `docstream dev`'s default)
// nobody signs in: on a phone-sized touch screen an anonymous visitor
// uploads a PNG, sees it appear in the live list, opens it and sees the
// image preview, draws a signature with a finger and sees the document
// signed, live.
func TestBrowserAnonymousOnATouchPhoneUploadsPreviewsAndSignsAnImage(t *testing.T) {
	base, _ := startDevSystem(t)
	b := newBrowser(t, base)
	a := b.first
	if _, err := chromedp.Call(a, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 390, Height: 844, DeviceScaleFactor: 2, Mobile: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(a, emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{Enabled: true, MaxTouchPoints: 5}); err != nil {
		t.Fatal(err)
	}

	b.open(a, "/")
	if who := eval[string](b, a, `document.querySelector('#who').textContent`); !strings.Contains(who, "Anonymous") {
		t.Fatalf("the header says %q, want Anonymous", who)
	}
	if eval[bool](b, a, `location.pathname !== '/'`) {
		t.Fatalf("open mode sent an anonymous visitor to %s", eval[string](b, a, `location.pathname`))
	}
	b.waitJS(a, "the list feed live", `document.querySelector('#live-state').dataset.state === 'live'`)

	// A 40×30 PNG, blue, uploaded with the picker.
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for y := 0; y < 30; y++ {
		for x := 0; x < 40; x++ {
			img.Set(x, y, color.RGBA{B: 200, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "receipt.png")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// The API records an email as the creator: without one the page asks
	// for it and sends nothing.
	b.run(a, chromedp.SetUploadFiles(chromedp.CSS(`#upload-input`), []string{file}))
	b.waitJS(a, "the page to ask for an email", `/Enter your email above first/.test(document.querySelector('.uploads').textContent)`)
	b.run(a, chromedp.SetValue(chromedp.CSS(`#upload-email`), "walkin@example.com"))
	b.run(a, chromedp.SetUploadFiles(chromedp.CSS(`#upload-input`), []string{file}))
	b.waitJS(a, "the upload to finish with a link", `document.querySelector('.upload[data-document-id] a')`)
	id := eval[string](b, a, `document.querySelector('.upload[data-document-id]').dataset.documentId`)
	b.waitJS(a, "the PNG live in the list", fmt.Sprintf(`document.querySelector('#doc-rows tr[data-id=%q] a.title')?.textContent === 'receipt.png'`, id))

	var d api.Document
	if resp := testenv.Do(t, http.MethodGet, base+"/documents/"+id, nil, &d); resp.StatusCode != http.StatusOK || d.ContentType != "image/png" || d.CreatedBy != "walkin@example.com" || d.Owner != "" {
		t.Fatalf("the uploaded document: %d, type %q, created_by %q, owner %q (want image/png by the email typed, no owner)", resp.StatusCode, d.ContentType, d.CreatedBy, d.Owner)
	}

	// The document page previews the image itself.
	b.open(a, "/app/documents/"+id)
	b.waitJS(a, "the image preview decoded", `document.querySelector('#preview-img')?.complete && document.querySelector('#preview-img').naturalWidth === 40 && document.querySelector('#preview-img').naturalHeight === 30`)
	if hint := eval[string](b, a, `document.querySelector('main').innerText`); !strings.Contains(hint, "Anonymous (open mode)") {
		t.Errorf("the document page does not say the visitor is anonymous")
	}

	// A finger draws on the signature pad.
	b.run(a, chromedp.Evaluate[chromedp.Void](`window.__pointerTypes = []; document.querySelector('#sign-canvas').addEventListener('pointerdown', e => window.__pointerTypes.push(e.pointerType))`))
	box := eval[struct{ X, Y, W, H float64 }](b, a, `(() => { const el = document.querySelector('#sign-canvas'); el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect(); return {X: r.x, Y: r.y, W: r.width, H: r.height}; })()`)
	touch := func(typ input.DispatchTouchEventType, fx, fy float64) {
		t.Helper()
		var points []*input.TouchPoint
		if typ != input.DispatchTouchEventTypeTouchEnd {
			points = []*input.TouchPoint{{X: box.X + fx*box.W, Y: box.Y + fy*box.H}}
		}
		if _, err := chromedp.Call(a, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: typ, TouchPoints: points}); err != nil {
			t.Fatal(err)
		}
	}
	touch(input.DispatchTouchEventTypeTouchStart, 0.15, 0.5)
	for i := 1; i <= 10; i++ {
		f := float64(i) / 10
		touch(input.DispatchTouchEventTypeTouchMove, 0.15+0.7*f, 0.5-0.2*f)
	}
	touch(input.DispatchTouchEventTypeTouchEnd, 0, 0)
	if types := eval[[]string](b, a, `window.__pointerTypes`); len(types) == 0 || types[0] != "touch" {
		t.Fatalf("the pad saw pointers %v, want a touch", types)
	}
	inked := eval[int](b, a, `(() => { const c = document.querySelector('#sign-canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128 && d[i+3] > 0) n++; return n; })()`)
	if inked < 50 {
		t.Fatalf("the finger's stroke left %d dark pixels on the pad", inked)
	}
	b.axe(a, "the document page on a phone")
	b.run(a, chromedp.SetValue(chromedp.CSS(`#signer-name`), "Walk-in Visitor"), chromedp.SetValue(chromedp.CSS(`#signer-email`), "walkin@example.com"),
		click(`#sign-submit`))
	b.waitJS(a, "the signature recorded", `document.querySelector('#sign-msg .ok')`)
	b.waitJS(a, "the page showing signed, live", `document.querySelector('#doc-status [data-status=signed]')`)

	var sigs []api.Signature
	if resp := testenv.Do(t, http.MethodGet, base+"/signatures?document_id="+id, nil, &sigs); resp.StatusCode != http.StatusOK || len(sigs) != 1 {
		t.Fatalf("signatures: %d, %d of them", resp.StatusCode, len(sigs))
	}
	if sigs[0].SignerEmail != "walkin@example.com" || (sigs[0].SignatureData == nil || !strings.HasPrefix(*sigs[0].SignatureData, "data:image/png;base64,")) {
		t.Errorf("the stored signature: %s, data present %v", sigs[0].SignerEmail, sigs[0].SignatureData != nil)
	}
	// Nothing wider than the phone's screen (the header's menu was: a
	// finger then landed beside where it aimed, the page being squeezed).
	if w := eval[float64](b, a, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the document page is %v px wide on a 390 px screen", w)
	}
	b.checkClean(a, "anonymous on a phone")
	b.screenshot(a, "phone-image-signed")
}
