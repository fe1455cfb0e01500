package document

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
)

// sortRow is one row inserted by insertSortRows, with what each order
// compares.
type sortRow struct {
	id               uuid.UUID
	title            string
	created, updated time.Time
	status           Status
	createdBy        string
}

// insertSortRows writes n documents whose created_at, updated_at and
// title each repeat (three rows share each value), so that id must break
// ties in every order, and whose updated_at order differs from their
// created_at order. Titles are lowercase ASCII words, which every
// collation orders as bytes.
func insertSortRows(t *testing.T, e *env, n int) []sortRow {
	t.Helper()
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"}
	rows := make([]sortRow, n)
	for i := range rows {
		rows[i] = sortRow{
			id:        uuid.New(),
			title:     words[(i/3)%len(words)],
			created:   base.Add(time.Duration(i/3) * time.Minute),
			updated:   base.Add(time.Duration((n-i)/3) * time.Hour),
			status:    []Status{StatusCreated, StatusSigned}[i%2],
			createdBy: []string{"a@company.com", "b@company.com"}[i%3%2],
		}
		r := rows[i]
		// updated_at is set by a trigger on UPDATE only, so an INSERT keeps it.
		if _, err := e.pool.Exec(context.Background(), `INSERT INTO documents.documents
			(id, title, status, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			r.id, r.title, string(r.status), r.createdBy, r.created, r.updated); err != nil {
			t.Fatal(err)
		}
	}
	return rows
}

// ordered is rows' ids in order st, computed here (not by the database).
func ordered(rows []sortRow, st api.ListSort, keep func(sortRow) bool) []string {
	var sel []sortRow
	for _, r := range rows {
		if keep == nil || keep(r) {
			sel = append(sel, r)
		}
	}
	k := sortKeys[st]
	sort.Slice(sel, func(a, b int) bool {
		x, y := sel[a], sel[b]
		var c int
		switch k.column {
		case "created_at":
			c = x.created.Compare(y.created)
		case "updated_at":
			c = x.updated.Compare(y.updated)
		default:
			c = strings.Compare(x.title, y.title)
		}
		if c == 0 {
			c = strings.Compare(x.id.String(), y.id.String())
		}
		if k.desc {
			return c > 0
		}
		return c < 0
	})
	ids := make([]string, len(sel))
	for i, r := range sel {
		ids[i] = r.id.String()
	}
	return ids
}

func TestListSortsPageByCursorInEveryOrder(t *testing.T) {
	e := newEnv(t)
	rows := insertSortRows(t, e, 20)
	for _, st := range api.ListSorts {
		t.Run(string(st), func(t *testing.T) {
			want := ordered(rows, st, nil)
			got, pages := e.walk(t, "/documents?limit=3&sort="+string(st))
			if pages != 7 || strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("%d pages:\n got %v\nwant %v", pages, got, want)
			}
			// With a filter the order and the paging hold as well.
			signed := func(r sortRow) bool { return r.status == StatusSigned }
			want = ordered(rows, st, signed)
			got, _ = e.walk(t, "/documents?limit=4&status=signed&sort="+string(st))
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("status=signed:\n got %v\nwant %v", got, want)
			}
			// The reference's skip follows the sort too.
			var page []Document
			e.do(t, "GET", "/documents?skip=5&limit=2&sort="+string(st), nil, &page)
			if len(page) != 2 || page[0].ID != ordered(rows, st, nil)[5] || page[1].ID != ordered(rows, st, nil)[6] {
				t.Fatalf("skip=5: %v", page)
			}
		})
	}
	// No sort is newest first, as before sort existed.
	if got, _ := e.walk(t, "/documents?limit=6"); strings.Join(got, ",") != strings.Join(ordered(rows, api.SortCreatedDesc, nil), ",") {
		t.Fatalf("the default order is not -created_at: %v", got)
	}
}

// A document changed while a client pages by updated_at moves to the end
// of the ascending order: the pages after the cursor show it there (again,
// if the client had seen it before), and no other row is skipped or
// repeated.
func TestListSortByUpdatedAtSeesAChangeWhilePaging(t *testing.T) {
	e := newEnv(t)
	rows := insertSortRows(t, e, 9)
	want := ordered(rows, api.SortUpdatedAsc, nil)
	var first []Document
	resp := e.do(t, "GET", "/documents?limit=3&sort=updated_at", nil, &first)
	// Change a row of the first page, then one not yet seen; each PATCH
	// is its own transaction, so the second has the later updated_at.
	for _, id := range []string{want[0], want[5]} {
		if r := e.do(t, "PATCH", "/documents/"+id, map[string]any{"title": "changed"}, nil); r.StatusCode != 200 {
			t.Fatalf("patch: %d", r.StatusCode)
		}
	}
	rest, _ := e.walk(t, "/documents?limit=3&sort=updated_at&cursor="+resp.Header.Get(NextCursorHeader))
	wantRest := []string{want[3], want[4], want[6], want[7], want[8], want[0], want[5]}
	if len(first) != 3 || first[0].ID != want[0] || strings.Join(rest, ",") != strings.Join(wantRest, ",") {
		t.Fatalf("after changes:\n got %v\nwant %v", rest, wantRest)
	}
}

func TestListRefusesABadSortOrACursorOfAnotherSort(t *testing.T) {
	e := newEnv(t)
	insertSortRows(t, e, 4)
	resp := e.do(t, "GET", "/documents?limit=2&sort=title", nil, nil)
	titleCursor := resp.Header.Get(NextCursorHeader)
	if titleCursor == "" {
		t.Fatal("no cursor on the first page of 4 rows by 2")
	}
	if !strings.Contains(resp.Header.Get("Link"), "sort=title") {
		t.Fatalf("Link %q loses the sort", resp.Header.Get("Link"))
	}
	cases := []struct{ query, field string }{
		{"sort=bogus", "sort"},
		{"sort=created", "sort"},
		{"sort=--title", "sort"},
		{"sort=title%3BDROP%20TABLE%20x", "sort"},
		{"sort=id", "sort"},
		{"sort=-created_at&cursor=" + titleCursor, "cursor"},
		{"cursor=" + titleCursor, "cursor"}, // no sort is -created_at
		{"sort=title&min_lsn=abc", "min_lsn"},
	}
	for _, c := range cases {
		var er apperr.Body
		resp := e.do(t, "GET", "/documents?"+c.query, nil, &er)
		if resp.StatusCode != 422 || len(er.Error.Details) == 0 || er.Error.Details[0].Field != c.field {
			t.Errorf("%s: %d %+v, want 422 naming %s", c.query, resp.StatusCode, er.Error, c.field)
		}
	}
	// The same cursor with its own sort reads on.
	var page []Document
	if resp := e.do(t, "GET", "/documents?limit=2&sort=title&min_lsn=1&cursor="+titleCursor, nil, &page); resp.StatusCode != 200 || len(page) != 2 {
		t.Fatalf("title cursor with sort=title: %d %v", resp.StatusCode, page)
	}
}

// The 422 for a bad sort is the API's golden error shape
// (api/testdata/error_list_sort.json), byte for byte once indented.
func TestListBadSortMatchesTheGoldenError(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.srv.URL + "/documents?sort=bogus")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var got bytes.Buffer
	if err := json.Indent(&got, bytes.TrimSpace(raw), "", "  "); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	got.WriteByte('\n')
	want, err := os.ReadFile("../../api/testdata/error_list_sort.json")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 422 || got.String() != string(want) {
		t.Fatalf("%d\n got %s\nwant %s", resp.StatusCode, got.String(), want)
	}
}

// TestListSortsAreIndexDriven checks, over 30,000 rows, that every sort
// reads its own index in its direction, first page and after a cursor:
// never a sequential scan, never a sort. With a filter the order's index
// still drives (the filter drops rows as it reads). Required mode's
// readers filter is checked at 100,000 rows (TestListAt100kDocuments): at
// 30,000 the planner rightly finds a sequential scan of so small a table
// cheaper than the caller's GIN bitmap for orders uncorrelated with the
// heap.
func TestListSortsAreIndexDriven(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.pool.Exec(ctx, `INSERT INTO documents.documents (id, title, status, created_by, created_at, updated_at, owner, readers)
		SELECT gen_random_uuid(), 'doc ' || md5(i::text),
			(ARRAY['created','sent','viewed','pending','approved','signed','completed','cancelled','archived'])[1 + i % 9],
			'user' || (i % 100) || '@company.com',
			timestamptz '2025-01-01' + i * interval '1 minute', timestamptz '2025-06-01' + ((i * 7919) % 30000) * interval '1 second',
			'user:u' || (i % 100), ARRAY['user:u' || (i % 100), 'group:g' || (i % 7)]
		FROM generate_series(1, 30000) AS i`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, "ANALYZE documents.documents"); err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	at := time.Date(2025, 6, 1, 4, 0, 0, 0, time.UTC)
	for _, st := range api.ListSorts {
		cursor := &Cursor{Sort: st, At: at, Title: "doc 8", ID: id}
		if sortKeys[st].column == "created_at" {
			cursor.At = time.Date(2025, 1, 15, 0, 0, 0, 0, time.UTC)
		}
		index := map[string]string{"created_at": "idx_documents_created_id", "updated_at": "idx_documents_updated_id", "title": "idx_documents_title_id"}[sortKeys[st].column]
		shapes := map[string]ListQuery{
			"first page":   {Limit: 100, Sort: st},
			"cursor":       {Limit: 100, Sort: st, After: cursor},
			"largest page": {Limit: 1000, Sort: st, After: cursor},
			"bounded skip": {Limit: 100, Sort: st, Skip: MaxSkip},
			"status":       {Limit: 100, Sort: st, Status: StatusSigned, After: cursor},
		}
		for name, lq := range shapes {
			sql, args := listSQL(lq)
			var plan []byte
			if err := e.pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
				t.Fatalf("%s %s: %v", st, name, err)
			}
			nodes := planNodes(t, plan)
			// The status filter may instead use its own (status,
			// created_at, id) index when that is in the order.
			ok := strings.Contains(nodes, index) || (name == "status" && sortKeys[st].column == "created_at" && strings.Contains(nodes, "idx_documents_status_created_id"))
			if strings.Contains(nodes, "Seq Scan") || strings.Contains(nodes, "Sort") || !ok {
				t.Errorf("sort=%s, %s: plan %s, want a scan of %s without a sort", st, name, nodes, index)
			}
		}
	}
}

// listPageTimes is how long GET path took, n times, fastest first.
func listPageTimes(t *testing.T, url string, n int) []time.Duration {
	t.Helper()
	var ds []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		var page []Document
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(page) != 100 {
			t.Fatalf("GET %s: %d, %d rows, %v", url, resp.StatusCode, len(page), err)
		}
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
	return ds
}

// TestListAt100kDocuments seeds 100,000 documents with one statement and
// reads the list through the HTTP API in every order: a first page, a
// page reached by walking the cursor 50 pages deep, and a page at the far
// end by a cursor from the last rows. It checks the pages are full and in
// order and logs their latencies (docs/benchmarks.md records a run); no
// time is asserted, the machine it runs on is shared.
func TestListAt100kDocuments(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	start := time.Now()
	_, err := e.pool.Exec(ctx, `INSERT INTO documents.documents (id, title, status, created_by, created_at, updated_at, owner, readers)
		SELECT gen_random_uuid(), 'doc ' || md5(i::text),
			(ARRAY['created','sent','viewed','pending','approved','signed','completed','cancelled','archived'])[1 + i % 9],
			'user' || (i % 100) || '@company.com',
			timestamptz '2025-01-01' + i * interval '1 minute', timestamptz '2025-06-01' + ((i * 7919) % 100000) * interval '1 second',
			'user:u' || (i % 100), ARRAY['user:u' || (i % 100)]
		FROM generate_series(1, 100000) AS i`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, "ANALYZE documents.documents"); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded 100,000 rows in %v", time.Since(start).Round(time.Millisecond))
	for _, st := range api.ListSorts {
		// Required mode, one caller's 1 % of the documents: the GIN index
		// on readers or the order's index, never a sequential scan.
		sql, args := listSQL(ListQuery{Limit: 100, Sort: st, readers: []string{"user:u7"}})
		var plan []byte
		if err := e.pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
			t.Fatal(err)
		}
		if nodes := planNodes(t, plan); strings.Contains(nodes, "Seq Scan") {
			t.Errorf("sort=%s, readers: plan %s", st, nodes)
		}
		base := e.srv.URL + "/documents?limit=100&sort=" + string(st)
		first := listPageTimes(t, base, 5)
		// 50 pages deep by the cursor, as a client pages.
		next := base
		for i := 0; i < 50; i++ {
			resp, err := http.Get(next)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c := resp.Header.Get(NextCursorHeader)
			if resp.StatusCode != 200 || c == "" {
				t.Fatalf("page %d of %s: %d, cursor %q", i, st, resp.StatusCode, c)
			}
			next = base + "&cursor=" + c
		}
		deep := listPageTimes(t, next, 5)
		// The far end: a cursor just inside the last 1,000 rows.
		var edge struct {
			ID    uuid.UUID
			Title string
			C, U  time.Time
		}
		k := sortKeys[st]
		dir := "DESC"
		if k.desc {
			dir = "ASC"
		}
		q := fmt.Sprintf(`SELECT id, title, created_at, updated_at FROM documents.documents ORDER BY %s %s, id %s OFFSET 1000 LIMIT 1`, k.column, dir, dir)
		if err := e.pool.QueryRow(ctx, q).Scan(&edge.ID, &edge.Title, &edge.C, &edge.U); err != nil {
			t.Fatal(err)
		}
		c := Cursor{Sort: st, ID: edge.ID, Title: edge.Title, At: edge.C}
		if k.column == "updated_at" {
			c.At = edge.U
		}
		far := listPageTimes(t, base+"&cursor="+c.String(), 5)
		t.Logf("sort=%-12s first page p50 %6.1f ms (min %5.1f)  page 51 p50 %6.1f ms (min %5.1f)  page ~990 p50 %6.1f ms (min %5.1f)",
			st, ms(first[2]), ms(first[0]), ms(deep[2]), ms(deep[0]), ms(far[2]), ms(far[0]))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
