package document

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
)

// insertRows writes n documents straight into the table, created over
// spread (several share one created_at, so that id must break ties), and
// returns their ids in list order: created_at DESC, id DESC.
func insertRows(t *testing.T, e *env, n int, base time.Time, spread time.Duration, statuses []Status, creators []string) []string {
	t.Helper()
	type row struct {
		id uuid.UUID
		at time.Time
	}
	rows := make([]row, n)
	for i := range rows {
		rows[i] = row{uuid.New(), base.Add(time.Duration(i/3) * spread).Truncate(time.Microsecond)}
		_, err := e.pool.Exec(context.Background(), `INSERT INTO documents.documents
			(id, title, status, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)`,
			rows[i].id, fmt.Sprintf("row %d", i), string(statuses[i%len(statuses)]), creators[i%len(creators)], rows[i].at)
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Slice(rows, func(a, b int) bool {
		if !rows[a].at.Equal(rows[b].at) {
			return rows[a].at.After(rows[b].at)
		}
		return strings.Compare(rows[a].id.String(), rows[b].id.String()) > 0
	})
	ids := make([]string, n)
	for i, r := range rows {
		ids[i] = r.id.String()
	}
	return ids
}

// walk follows the cursor from the first page of path and returns every id
// in the order served and the number of pages.
func (e *env) walk(t *testing.T, path string) (ids []string, pages int) {
	t.Helper()
	next := path
	for next != "" {
		var page []Document
		resp := e.do(t, "GET", next, nil, &page)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", next, resp.StatusCode)
		}
		pages++
		for _, d := range page {
			ids = append(ids, d.ID)
		}
		cursor, link := resp.Header.Get(NextCursorHeader), resp.Header.Get("Link")
		if (cursor == "") != (link == "") {
			t.Fatalf("X-Next-Cursor %q but Link %q", cursor, link)
		}
		if cursor == "" {
			break
		}
		if !strings.Contains(link, "cursor="+url.QueryEscape(cursor)) || !strings.HasSuffix(link, `>; rel="next"`) {
			t.Fatalf("Link %q does not lead to cursor %q", link, cursor)
		}
		next = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		if pages > 100 {
			t.Fatal("the cursor does not advance")
		}
	}
	return ids, pages
}

func TestListPagesByCursorThroughTiesAndConcurrentInserts(t *testing.T) {
	e := newEnv(t)
	base := time.Date(2025, 11, 20, 1, 46, 31, 657647000, time.UTC)
	want := insertRows(t, e, 10, base, time.Second, []Status{StatusCreated}, []string{"a@company.com"})

	got, pages := e.walk(t, "/documents?limit=3")
	if pages != 4 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%d pages:\n got %v\nwant %v", pages, got, want)
	}
	// An exact multiple of the page: the last full page has no next.
	if _, pages := e.walk(t, "/documents?limit=5"); pages != 2 {
		t.Fatalf("limit 5 over 10 rows: %d pages, want 2 (no empty third page)", pages)
	}

	// A row inserted above the cursor while paging does not shift the
	// pages after it (an offset would serve a row twice).
	var first []Document
	resp := e.do(t, "GET", "/documents?limit=4", nil, &first)
	e.create(t, "newer", "x")
	var second []Document
	e.do(t, "GET", "/documents?limit=4&cursor="+resp.Header.Get(NextCursorHeader), nil, &second)
	if len(second) != 4 || second[0].ID != want[4] {
		t.Fatalf("after a concurrent insert the second page starts at %v, want %s", second, want[4])
	}
}

func TestListFiltersByStatusCreatorAndTimeWithTheCursor(t *testing.T) {
	e := newEnv(t)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	insertRows(t, e, 30, base, time.Hour, []Status{StatusCreated, StatusSigned, StatusSent}, []string{"a@company.com", "b@company.com"})

	check := func(query string, keep func(d Document) bool) {
		t.Helper()
		var all []Document
		e.do(t, "GET", "/documents?limit=1000", nil, &all)
		var want []string
		for _, d := range all {
			if keep(d) {
				want = append(want, d.ID)
			}
		}
		got, _ := e.walk(t, "/documents?limit=2&"+query)
		if len(want) == 0 || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s:\n got %v\nwant %v", query, got, want)
		}
	}
	after, before := base.Add(2*time.Hour), base.Add(7*time.Hour)
	check("status=signed", func(d Document) bool { return d.Status == StatusSigned })
	check("created_by=b@company.com", func(d Document) bool { return d.CreatedBy == "b@company.com" })
	check("created_after="+after.Format(time.RFC3339), func(d Document) bool { return d.CreatedAt.Time.After(after) })
	check("created_before="+url.QueryEscape(before.Format(time.RFC3339)), func(d Document) bool { return d.CreatedAt.Time.Before(before) })
	check("status=created&created_by=a@company.com&created_after="+after.Format(time.RFC3339)+"&created_before="+before.Format(time.RFC3339),
		func(d Document) bool {
			return d.Status == StatusCreated && d.CreatedBy == "a@company.com" && d.CreatedAt.Time.After(after) && d.CreatedAt.Time.Before(before)
		})
}

func TestListRefusesHostileParameters(t *testing.T) {
	e := newEnv(t)
	e.create(t, "one", "x")
	forged := make([]byte, 25)
	forged[0] = 2 // a version this service never issued
	cases := []struct{ query, field string }{
		{"skip=10001", "skip"},
		{"skip=99999999999999999999", "skip"},
		{"cursor=not-a-cursor", "cursor"},
		{"cursor=" + base64.RawURLEncoding.EncodeToString(forged), "cursor"},
		{"cursor=" + base64.RawURLEncoding.EncodeToString(make([]byte, 4096)), "cursor"},
		{"cursor=" + (Cursor{At: time.Now(), ID: uuid.New()}).String() + "&skip=5", "skip"},
		{"status=deleted", "status"},
		{"status='%20OR%201=1--", "status"},
		{"created_by=" + strings.Repeat("x", 256), "created_by"},
		{"created_after=yesterday", "created_after"},
		{"created_before=2025-13-01T00:00:00Z", "created_before"},
		{"limit=1001", "limit"},
	}
	for _, c := range cases {
		var er apperr.Body
		resp := e.do(t, "GET", "/documents?"+c.query, nil, &er)
		if resp.StatusCode != 422 || len(er.Error.Details) == 0 || er.Error.Details[0].Field != c.field {
			t.Errorf("%.60s: %d %+v, want 422 naming %s", c.query, resp.StatusCode, er.Error, c.field)
		}
	}
	// The bound itself is allowed, and a cursor far outside the table is
	// just an empty page.
	if resp := e.do(t, "GET", "/documents?skip=10000", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("skip=10000: %d", resp.StatusCode)
	}
	var page []Document
	old := Cursor{At: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), ID: uuid.UUID{}}
	if resp := e.do(t, "GET", "/documents?cursor="+old.String(), nil, &page); resp.StatusCode != 200 || len(page) != 0 {
		t.Fatalf("a cursor before every row: %d %v", resp.StatusCode, page)
	}
}

func TestCursorRoundTrips(t *testing.T) {
	at := time.Date(2025, 11, 20, 1, 46, 31, 657647000, time.UTC)
	for _, c := range []Cursor{
		{Sort: api.SortCreatedDesc, At: at, ID: uuid.New()},
		{Sort: api.SortUpdatedAsc, At: at, ID: uuid.New()},
		{Sort: api.SortTitleAsc, Title: "Überweisung – Q4 ✓", ID: uuid.New()},
		{Sort: api.SortTitleDesc, Title: "", ID: uuid.New()},
		{Sort: api.SortTitleDesc, Title: strings.Repeat("😀", 255), ID: uuid.New()},
	} {
		got, err := ParseCursor(c.String())
		if err != nil || got.Sort != c.Sort || !got.At.Equal(c.At) || got.Title != c.Title || got.ID != c.ID {
			t.Fatalf("%v %v, want %v", got, err, c)
		}
	}
	// A cursor issued before sort existed (version 1) still reads, as
	// newest first.
	id := uuid.New()
	b := []byte{1, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(b[1:], uint64(at.UnixMicro()))
	got, err := ParseCursor(base64.RawURLEncoding.EncodeToString(append(b, id[:]...)))
	if err != nil || got.Sort != api.SortCreatedDesc || !got.At.Equal(at) || got.ID != id {
		t.Fatalf("version 1: %v %v", got, err)
	}
}

// TestListIsIndexDriven checks the plan of every shape of the list query
// over a table large enough for the planner to choose freely: each is an
// index scan of migration 00008's indexes, never a sequential scan of the
// table; a single filter never sorts either (the index is in list order).
// Two filters at once may sort, but only the rows one index range
// selected (the planner's choice when that range is small).
func TestListIsIndexDriven(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.pool.Exec(ctx, `INSERT INTO documents.documents (id, title, status, created_by, created_at, updated_at, owner, readers)
		SELECT gen_random_uuid(), 'doc ' || i,
			(ARRAY['created','sent','viewed','pending','approved','signed','completed','cancelled','archived'])[1 + i % 9],
			'user' || (i % 100) || '@company.com',
			timestamptz '2025-01-01' + i * interval '1 minute', now(),
			'user:u' || (i % 100), ARRAY['user:u' || (i % 100), 'group:g' || (i % 7)]
		FROM generate_series(1, 30000) AS i`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, "ANALYZE documents.documents"); err != nil {
		t.Fatal(err)
	}
	cursor := &Cursor{At: time.Date(2025, 1, 15, 0, 0, 0, 0, time.UTC), ID: uuid.New()}
	after := time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC)
	shapes := map[string]ListQuery{
		"first page":             {Limit: 100},
		"cursor":                 {Limit: 100, After: cursor},
		"bounded skip":           {Limit: 100, Skip: MaxSkip},
		"status":                 {Limit: 100, Status: StatusSigned, After: cursor},
		"creator":                {Limit: 100, CreatedBy: "user7@company.com", After: cursor},
		"created range":          {Limit: 100, CreatedAfter: after, CreatedBefore: cursor.At},
		"status, creator, range": {Limit: 100, Status: StatusSigned, CreatedBy: "user7@company.com", CreatedAfter: after, After: cursor},
		"largest page":           {Limit: 1000, After: cursor},
		// Required mode: the caller's keys against the GIN index on
		// readers (a sort of the caller's rows is allowed: which is cheaper
		// depends on how many the caller may view).
		"readers, first page": {Limit: 100, readers: []string{"user:u7"}},
		"readers, cursor":     {Limit: 100, readers: []string{"user:u7", "email:u7@company.com"}, After: cursor},
	}
	for name, lq := range shapes {
		sql, args := listSQL(lq)
		var plan []byte
		if err := e.pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		nodes := planNodes(t, plan)
		sorts := strings.Contains(nodes, "Sort") && !strings.Contains(name, ",")
		if strings.Contains(nodes, "Seq Scan") || sorts || !strings.Contains(nodes, "idx_documents_") {
			t.Errorf("%s: plan %s\n%s", name, nodes, plan)
		}
	}
}

// planNodes flattens an EXPLAIN (FORMAT JSON) plan to "Node Type (index)"
// entries.
func planNodes(t *testing.T, raw []byte) string {
	t.Helper()
	type node struct {
		NodeType  string `json:"Node Type"`
		IndexName string `json:"Index Name"`
		Plans     []node `json:"Plans"`
	}
	var top []struct {
		Plan node `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &top); err != nil || len(top) != 1 {
		t.Fatalf("plan %s: %v", raw, err)
	}
	var out []string
	var walk func(n node)
	walk = func(n node) {
		out = append(out, n.NodeType+"("+n.IndexName+")")
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(top[0].Plan)
	return strings.Join(out, " > ")
}
