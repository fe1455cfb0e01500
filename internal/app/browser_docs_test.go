package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/docstream/docstream/internal/logging"
)

// startDevSystemWith is startDevSystem with a change to the configuration
// before it starts.
func startDevSystemWith(t *testing.T, change func(*Config)) (string, *Config) {
	t.Helper()
	c := testConfig(t)
	c.Shared.Dev = true
	change(c)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, logging.Discard(), func(*System) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return "http://" + c.Gateway.Addr, c
}

// socketSpy wraps the page's WebSocket so that the test can drop the
// connection (close the latest socket) and hold reconnections off (while
// __holdWS is set, a new socket goes to a path that does not exist on this
// origin, so it fails as a dropped network would, without a CSP
// violation). __sockets lists every URL opened.
const socketSpy = `window.__sockets = []; window.__holdWS = false;
(() => { const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      const u = window.__holdWS ? String(url).replace(/\/ws(\/|\?|$)/, '/ws-held$1') : String(url);
      super(u, protocols);
      window.__sockets.push(u);
      window.__lastSocket = this;
    }
  };
})();`

// rowTitles is the list's titles, top to bottom.
const rowTitles = `[...document.querySelectorAll('#doc-rows tr a.title')].map(a => a.textContent)`

// click clicks the element as a user's click would reach it (a click
// event on it), without depending on where the layout has put it.
func click(selector string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).click()`, selector))
}

// ledger is the title of seeded row i.
func ledger(i int) string { return fmt.Sprintf("Ledger %02d", i) }

// TestBrowserDocuments drives the document list and the document page in
// headless Chromium: the filters, every sort, paging past the first page,
// a title edit and its If-Match conflict shown to the user, sharing with a
// user and revoking it, uploading by drag and drop (a synthetic drop of
// two Files), read-your-writes after an upload (list and search), the
// list's live feed resuming after its WebSocket dropped with nothing
// missed, the operations page and the audit trail with its verification.
// Each step asserts what the user sees.
func TestBrowserDocuments(t *testing.T) {
	base, c := startDevSystemWith(t, func(c *Config) {
		// A search with min_lsn waits this long for the indexer (bounded:
		// only a broken test waits it out) instead of answering stale on a
		// loaded machine.
		c.Search.MaxWait = browserWait
	})
	ctx := context.Background()

	// 40 documents by one creator, one a day at noon UTC from 2 Jan 2024,
	// odd ones created and even ones signed; updated_at runs the other
	// way. One statement, before any tab is open.
	conn, err := pgx.Connect(ctx, c.Shared.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `INSERT INTO documents.documents (id, title, status, created_by, created_at, updated_at, content_type, content_size)
		SELECT gen_random_uuid(), 'Ledger ' || lpad(i::text, 2, '0'), CASE WHEN i % 2 = 0 THEN 'signed' ELSE 'created' END,
			'pager@example.com', timestamptz '2024-01-01 12:00Z' + i * interval '1 day',
			timestamptz '2024-06-01 12:00Z' - i * interval '1 hour', 'text/plain', 0
		FROM generate_series(1, 40) AS i`)
	if err == nil {
		// Four more, by another creator, on both edges of 10 January:
		// the date filter takes whole days, to the microsecond.
		_, err = conn.Exec(ctx, `INSERT INTO documents.documents (id, title, status, created_by, created_at, updated_at, content_type, content_size)
			SELECT gen_random_uuid(), t, 'created', 'midnight@example.com', at, at, 'text/plain', 0
			FROM (VALUES ('Aaa before midnight', timestamptz '2024-01-09 23:59:59.999999Z'), ('Aaa at midnight', timestamptz '2024-01-10 00:00Z'),
				('Aaa last microsecond', timestamptz '2024-01-10 23:59:59.999999Z'), ('Aaa next midnight', timestamptz '2024-01-11 00:00Z')) AS v(t, at)`)
	}
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, base)
	a := b.first
	if _, err := chromedp.Call(a, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "UTC"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(a, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: socketSpy}); err != nil {
		t.Fatal(err)
	}
	b.open(a, "/app/signin")
	b.run(a, click(`button[data-user="alice"]`))
	b.waitJS(a, "alice signed in on the list", `location.pathname === '/' && document.querySelector('[data-testid=signed-in-as]')`)

	// applyFilters fills the filter form as a user would and presses Apply.
	applyFilters := func(status, creator, from, to, sort string) {
		t.Helper()
		v, _ := json.Marshal(map[string]string{"#f-status": status, "#f-creator": creator, "#f-from": from, "#f-to": to, "#f-sort": sort})
		b.run(a, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`for (const [sel, v] of Object.entries(%s)) document.querySelector(sel).value = v`, v)),
			click(`.filters button[type=submit]`))
	}
	waitRows := func(what string, want []string) {
		t.Helper()
		wantJSON, _ := json.Marshal(want)
		b.waitJS(a, what, fmt.Sprintf(`JSON.stringify(%s) === %q`, rowTitles, wantJSON))
	}
	ledgers := func(from, to, step int) []string {
		var out []string
		for i := from; (step > 0 && i <= to) || (step < 0 && i >= to); i += step {
			out = append(out, ledger(i))
		}
		return out
	}

	// Steps, in order, on one system and one tab (b fails the whole test).
	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		t.Log("step: " + name)
		f(t)
	}

	step("filters by status, creator and created date range", func(t *testing.T) {
		// Created 10–20 Jan (days 9..19 after 1 Jan), signed: the even ones.
		applyFilters("signed", "pager@example.com", "2024-01-10", "2024-01-20", "-created_at")
		waitRows("the signed ledgers created 10–20 January, newest first", []string{ledger(18), ledger(16), ledger(14), ledger(12), ledger(10)})
		if got := eval[string](b, a, `location.search`); !strings.Contains(got, "status=signed") || !strings.Contains(got, "from=2024-01-10") {
			t.Errorf("the address does not keep the filters: %q", got)
		}
		if eval[bool](b, a, `!document.querySelector('#more').hidden`) {
			t.Errorf("'More documents' offered on a list of 5")
		}
	})

	step("a created date range holds its first and last microsecond, and nothing beside", func(t *testing.T) {
		applyFilters("", "midnight@example.com", "2024-01-10", "2024-01-10", "-created_at")
		waitRows("the documents of 10 January only", []string{"Aaa last microsecond", "Aaa at midnight"})
	})

	step("sorts by title and by creation, both ways", func(t *testing.T) {
		applyFilters("", "pager@example.com", "", "", "-title")
		waitRows("the ledgers Z–A, first page of 25", ledgers(40, 16, -1))
		applyFilters("", "pager@example.com", "", "", "created_at")
		waitRows("the ledgers oldest first", ledgers(1, 25, 1))
		applyFilters("", "pager@example.com", "", "", "-updated_at")
		// updated_at runs against created_at: the most recently updated is Ledger 01.
		waitRows("the ledgers most recently updated first", ledgers(1, 25, 1))
		applyFilters("", "pager@example.com", "2024-01-05", "2024-01-08", "updated_at")
		waitRows("a created range sorted by least recently updated", []string{ledger(7), ledger(6), ledger(5), ledger(4)})
	})

	step("pages past the first page with More documents", func(t *testing.T) {
		applyFilters("", "pager@example.com", "", "", "-created_at")
		waitRows("the first page, newest first", ledgers(40, 16, -1))
		if eval[bool](b, a, `document.querySelector('#more').hidden`) {
			t.Fatal("no 'More documents' under a full first page")
		}
		b.run(a, click(`#more`))
		waitRows("both pages, in order, nothing twice", ledgers(40, 1, -1))
		b.waitJS(a, "no more pages offered", `document.querySelector('#more').hidden`)
		b.screenshot(a, "documents-paged")
	})

	var docID string
	step("drag and drop uploads two files, each with its progress", func(t *testing.T) {
		b.open(a, "/?sort=-title")
		b.waitJS(a, "the list feed live", `document.querySelector('#live-state').dataset.state === 'live'`)
		b.run(a, chromedp.Evaluate[chromedp.Void](`(() => {
			const dt = new DataTransfer();
			dt.items.add(new File(['dropped words: quokkadrop\n'], 'zz-dropped-one.txt', { type: 'text/plain' }));
			dt.items.add(new File(['second file\n'], 'zz-dropped-two.txt', { type: 'text/plain' }));
			const drop = document.querySelector('#drop');
			drop.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
			drop.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
		})()`))
		b.waitJS(a, "both uploads finished with a link", `document.querySelectorAll('.upload[data-document-id]').length === 2`)
		names := eval[[]string](b, a, `[...document.querySelectorAll('.upload .name')].map(n => n.textContent).sort()`)
		if !slices.Equal(names, []string{"zz-dropped-one.txt", "zz-dropped-two.txt"}) {
			t.Errorf("uploads listed: %v", names)
		}
		if bars := eval[[]float64](b, a, `[...document.querySelectorAll('.upload progress')].map(p => p.value)`); len(bars) != 2 || bars[0] != 100 || bars[1] != 100 {
			t.Errorf("progress bars at %v, want both at 100", bars)
		}
		docID = eval[string](b, a, `[...document.querySelectorAll('.upload')].find(li => li.querySelector('.name').textContent === 'zz-dropped-one.txt').dataset.documentId`)
	})

	step("read-your-writes: the upload shows in the list and in search at once", func(t *testing.T) {
		// Sorted by title, Z–A: the list feed does not place new documents
		// in this order (it only prepends in newest-first orders), so the
		// rows come from the first page read again at the upload's LSN.
		waitRows("the dropped files on top of the Z–A list", append([]string{"zz-dropped-two.txt", "zz-dropped-one.txt"}, ledgers(40, 16, -1)...))
		if !eval[bool](b, a, `performance.getEntriesByType('resource').some(e => /\/documents\?.*min_lsn=\d+/.test(e.name) && e.name.includes('sort=-title'))`) {
			t.Errorf("no list request carried min_lsn after the upload")
		}
		// The upload's "find in search" link searches at the same LSN: the
		// first answer has the document (not stale), no retry.
		b.run(a, chromedp.Click(chromedp.CSS(`.upload[data-document-id="`+docID+`"] a.find`)))
		b.waitJS(a, "the search's first answer", `location.pathname === '/app/search' && document.querySelector('#result-count')`)
		count := eval[string](b, a, `document.querySelector('#result-count').textContent`)
		if strings.Contains(count, "not be searchable yet") || !eval[bool](b, a, fmt.Sprintf(`!!document.querySelector('#results .hit[data-id=%q]')`, docID)) {
			t.Errorf("search right after the upload: %q, hit shown: false", count)
		}
		if !strings.Contains(eval[string](b, a, `location.search`), "min_lsn=") {
			t.Errorf("the search page lost min_lsn")
		}
	})

	step("a feed dropped before its first event reads the list again, missing nothing", func(t *testing.T) {
		b.open(a, "/")
		b.waitJS(a, "the list feed live", `document.querySelector('#live-state').dataset.state === 'live'`)
		// No event has reached this page: the feed has no position.
		b.run(a, chromedp.Evaluate[chromedp.Void](`window.__holdWS = true; window.__lastSocket.close()`))
		b.waitJS(a, "the page to say it is reconnecting", `document.querySelector('#live-state').dataset.state === 'reconnecting'`)
		early := uploadFile(t, base, "early-gap.txt", "text/plain", []byte("while disconnected, before any event"))
		b.waitJS(a, "a reconnection to fail while held", `window.__sockets.some(u => u.includes('/ws-held'))`)
		b.run(a, chromedp.Evaluate[chromedp.Void](`window.__holdWS = false`))
		b.waitJS(a, "the feed live again", `document.querySelector('#live-state').dataset.state === 'live'`)
		b.waitJS(a, "the document created meanwhile in the list", fmt.Sprintf(`document.querySelector('#doc-rows tr[data-id=%q] a.title')?.textContent === 'early-gap.txt'`, early))
		if last := eval[string](b, a, `window.__sockets[window.__sockets.length - 1]`); strings.Contains(last, "since=") {
			t.Errorf("the reconnection had a position after all (%s): this step tests the one without", last)
		}
	})

	step("the list feed resumes after its WebSocket dropped, missing nothing", func(t *testing.T) {
		b.open(a, "/")
		b.waitJS(a, "the list feed live", `document.querySelector('#live-state').dataset.state === 'live'`)
		// One event first, so that the feed holds a position to resume from.
		first := uploadFile(t, base, "gap-0.txt", "text/plain", []byte("before the drop"))
		b.waitJS(a, "gap-0 live", fmt.Sprintf(`document.querySelector('#doc-rows tr[data-id=%q]')`, first))
		b.run(a, chromedp.Evaluate[chromedp.Void](`window.__holdWS = true; window.__lastSocket.close()`))
		b.waitJS(a, "the page to say it is reconnecting", `document.querySelector('#live-state').dataset.state === 'reconnecting' && /reconnecting/i.test(document.querySelector('#live-state').textContent)`)
		var missed []string
		for i := 1; i <= 3; i++ {
			missed = append(missed, uploadFile(t, base, fmt.Sprintf("gap-%d.txt", i), "text/plain", []byte("while disconnected")))
		}
		b.waitJS(a, "a reconnection to fail while held", `window.__sockets.some(u => u.includes('/ws-held'))`)
		if eval[bool](b, a, fmt.Sprintf(`!!document.querySelector('#doc-rows tr[data-id=%q]')`, missed[0])) {
			t.Fatal("a document created while disconnected showed before the reconnection")
		}
		b.run(a, chromedp.Evaluate[chromedp.Void](`window.__holdWS = false`))
		b.waitJS(a, "the feed live again", `document.querySelector('#live-state').dataset.state === 'live'`)
		for i, id := range missed {
			b.waitJS(a, fmt.Sprintf("gap-%d replayed into the list", i+1), fmt.Sprintf(`document.querySelector('#doc-rows tr[data-id=%q] a.title')?.textContent === 'gap-%d.txt'`, id, i+1))
		}
		top := eval[[]string](b, a, rowTitles+`.slice(0, 5)`)
		if !slices.Equal(top, []string{"gap-3.txt", "gap-2.txt", "gap-1.txt", "gap-0.txt", "early-gap.txt"}) {
			t.Errorf("top of the list after the resume: %v", top)
		}
		if last := eval[string](b, a, `window.__sockets[window.__sockets.length - 1]`); !strings.Contains(last, "since=") {
			t.Errorf("the reconnection did not resume (?since=): %s", last)
		}
	})

	step("title edit, and a conflicting edit shown to the user", func(t *testing.T) {
		b.open(a, "/app/documents/"+docID)
		b.waitJS(a, "the document page", `document.querySelector('#edit-title') && document.querySelector('#doc-live')?.dataset.state === 'live'`)
		b.run(a, chromedp.Evaluate[chromedp.Void](`document.querySelector('#edit-title').value = 'Renamed in the browser'; document.querySelector('#edit-title ~ button[type=submit]').click()`))
		b.waitJS(a, "the title saved and shown", `document.querySelector('#doc-title').textContent === 'Renamed in the browser' && /Title saved/.test(document.querySelector('#edit-title').form.textContent)`)
		// Another writer changes the title (no If-Match), and at once the
		// user saves theirs with the version the page holds: 412, shown.
		b.run(a, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(async () => {
			const s = JSON.parse(localStorage.getItem('docstream.session') || '{}');
			const h = { 'Content-Type': 'application/json' };
			if (s.token) h.Authorization = 'Bearer ' + s.token;
			const r = await fetch('/documents/%s', { method: 'PATCH', headers: h, body: JSON.stringify({ title: 'Changed elsewhere' }) });
			if (!r.ok) throw new Error('the other writer got ' + r.status);
			document.querySelector('#edit-title').value = 'My later edit';
			document.querySelector('#edit-title').form.requestSubmit();
		})()`, docID), chromedp.EvalAwaitPromise))
		b.waitJS(a, "the conflict shown as an alert", `[...document.querySelectorAll('[role=alert]')].some(e => /Someone changed this document meanwhile/.test(e.textContent))`)
		if got := eval[string](b, a, `document.querySelector('#doc-title').textContent`); got == "My later edit" {
			t.Fatalf("the refused edit shows as the title")
		}
		b.screenshot(a, "title-conflict")
		b.run(a, click(`#edit-title ~ div button`))
		b.waitJS(a, "the other writer's title after Reload", `document.querySelector('#doc-title').textContent === 'Changed elsewhere' && document.querySelector('#edit-title').value === 'Changed elsewhere'`)
		// Both changes reached the page's feed (each refreshes the page),
		// then the user edits again: typed and saved in one go, so no
		// refresh lands between them.
		b.waitJS(a, "both title changes in the live events", `[...document.querySelectorAll('#events li code')].filter(c => c.textContent === 'document.updated').length >= 2`)
		b.run(a, chromedp.Evaluate[chromedp.Void](`document.querySelector('#edit-title').value = 'My later edit'; document.querySelector('#edit-title ~ button[type=submit]').click()`))
		b.waitJS(a, "the edit saved on the current version", `document.querySelector('#doc-title').textContent === 'My later edit' && /Title saved/.test(document.querySelector('#edit-title').form.textContent)`)
	})

	step("shares: share with a user, then revoke", func(t *testing.T) {
		b.waitJS(a, "the shares list", `document.querySelector('#shares li')`)
		b.run(a, chromedp.SetValue(chromedp.CSS(`#share-grantee`), "user:bob"), chromedp.SetValue(chromedp.CSS(`#share-level`), "edit"),
			click(`#share-level ~ button[type=submit]`))
		b.waitJS(a, "bob's share listed", `[...document.querySelectorAll('#shares li')].some(li => li.textContent.startsWith('user:bob: edit'))`)
		b.screenshot(a, "shares")
		resp, err := http.Get(base + "/documents/" + docID + "/shares")
		if err != nil {
			t.Fatal(err)
		}
		var shares []struct{ Grantee, Level string }
		json.NewDecoder(resp.Body).Decode(&shares)
		resp.Body.Close()
		if len(shares) != 1 || shares[0].Grantee != "user:bob" || shares[0].Level != "edit" {
			t.Errorf("the API holds %+v after sharing", shares)
		}
		b.run(a, chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll('#shares button')].find(x => x.textContent === 'Remove user:bob').click()`))
		b.waitJS(a, "bob's share gone and 'Not shared.' shown", `!/user:bob/.test(document.querySelector('#shares').textContent) && /Not shared/.test(document.querySelector('#shares').textContent)`)
	})

	step("the audit trail and its verification", func(t *testing.T) {
		b.open(a, "/app/documents/"+docID)
		b.waitJS(a, "the audit section verified", `/Chain verified/.test(document.querySelector('#audit-verify')?.textContent || '')`)
		types := eval[[]string](b, a, `[...document.querySelectorAll('section[aria-labelledby=audit-h] li code')].map(c => c.textContent)`)
		for _, want := range []string{"document.created", "document.updated", "document.shared", "document.unshared"} {
			if !slices.Contains(types, want) {
				t.Errorf("audit entries shown: %v, want %s among them", types, want)
			}
		}
		b.screenshot(a, "audit")
	})

	step("the operations page shows CDC, bus and indexer positions and lag", func(t *testing.T) {
		b.open(a, "/app/ops")
		num := func(section, key string) string {
			return fmt.Sprintf(`/^[\d,.]+$/.test(document.querySelector('[data-section=%s] tr[data-key=%s] td')?.textContent || '')`, section, key)
		}
		b.waitJS(a, "the ops tables with figures", num("cdc", "slot_lag_bytes")+" && "+num("cdc", "confirmed_lsn")+" && "+num("bus", "position")+" && "+num("indexer", "applied_lsn")+" && "+num("indexer", "lag_bytes"))
		b.waitJS(a, "the refresh stamp", `/Updated/.test(document.querySelector('#ops-updated').textContent)`)
		b.screenshot(a, "ops")
		b.axe(a, "the operations page")
	})

	b.checkClean(a, "tab 1")
}
