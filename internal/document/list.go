package document

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/httpx"
)

// MaxSkip bounds GET /documents?skip: an offset makes PostgreSQL walk and
// throw away every row before the page, so its cost grows with the offset.
// Beyond it a client pages with the cursor, whose cost does not grow.
// Elasticsearch stops from+size at 10,000 for the same reason.
const MaxSkip = api.MaxListSkip

// NextCursorHeader carries the cursor of the page after this one; absent
// on the last page. The list's body is the reference's bare JSON array,
// which has no room for another field, so the cursor travels beside it (as
// does the RFC 8288 Link header with rel="next").
const NextCursorHeader = api.NextCursorHeader

// ListQuery selects one page of GET /documents, in Sort order.
type ListQuery struct {
	Limit int
	// Skip is rows to skip (the reference's paging), at most MaxSkip.
	Skip int
	// Sort is the order; "" is newest first (api.SortCreatedDesc).
	Sort api.ListSort
	// After resumes after the last row of the previous page (keyset
	// paging), which was served in the same Sort; nil: from the start.
	After *Cursor
	// Filters; zero values select everything.
	Status        Status
	CreatedBy     string
	CreatedAfter  time.Time // created_at > CreatedAfter
	CreatedBefore time.Time // created_at < CreatedBefore
	// readers, set by the service in required mode, keeps the documents
	// whose readers hold one of these keys (nil: no filter).
	readers []string
}

// sortKey is how one api.ListSort reads in SQL: the column ordered by
// (then id, in the same direction) and the direction.
type sortKey struct {
	column string
	desc   bool
}

var sortKeys = map[api.ListSort]sortKey{
	api.SortCreatedDesc: {"created_at", true},
	api.SortCreatedAsc:  {"created_at", false},
	api.SortUpdatedDesc: {"updated_at", true},
	api.SortUpdatedAsc:  {"updated_at", false},
	api.SortTitleAsc:    {"title", false},
	api.SortTitleDesc:   {"title", true},
}

func (k sortKey) isTime() bool { return k.column != "title" }

// sortOf is lq's order with the default filled in.
func sortOf(s api.ListSort) api.ListSort {
	if s == "" {
		return api.SortCreatedDesc
	}
	return s
}

// Cursor is a position in the list: the sort key and id of the last row a
// client saw, and the order it was seen in. The list is ordered by exactly
// (key, id), so the next page is "every row past it", one index range
// whatever the page number.
type Cursor struct {
	Sort  api.ListSort // "": api.SortCreatedDesc
	At    time.Time    // created_at or updated_at, for those sorts
	Title string       // for the title sorts
	ID    uuid.UUID
}

// Cursor formats: the first byte is the version, so that the format can
// change without a client's saved cursor being misread. Version 1 (before
// sort existed) is newest first: microseconds, the id. Version 2 adds the
// sort (its index in api.ListSorts), then the id, then the key:
// microseconds for a time, the UTF-8 title otherwise.
const (
	cursorV1 = 1
	cursorV2 = 2
)

// String encodes c opaquely (base64url). Microseconds are the precision
// of timestamptz.
func (c Cursor) String() string {
	st := sortOf(c.Sort)
	b := []byte{cursorV2, byte(slices.Index(api.ListSorts, st))}
	b = append(b, c.ID[:]...)
	if sortKeys[st].isTime() {
		b = binary.BigEndian.AppendUint64(b, uint64(c.At.UnixMicro()))
	} else {
		b = append(b, c.Title...)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// maxTitleBytes is the longest title's UTF-8 (varchar(255) of up to four
// bytes each), which bounds a title cursor.
const maxTitleBytes = 255 * 4

// ParseCursor decodes a cursor String made.
func ParseCursor(s string) (Cursor, error) {
	bad := fmt.Errorf("is not a cursor this service issued (pass the %s of the previous page unchanged)", NextCursorHeader)
	if len(s) > base64.RawURLEncoding.EncodedLen(18+maxTitleBytes) {
		return Cursor{}, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return Cursor{}, bad
	}
	var c Cursor
	switch {
	case b[0] == cursorV1 && len(b) == 25:
		c.Sort = api.SortCreatedDesc
		c.At = time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:9]))).UTC()
		copy(c.ID[:], b[9:])
		return c, nil
	case b[0] == cursorV2 && len(b) >= 18 && int(b[1]) < len(api.ListSorts):
		c.Sort = api.ListSorts[b[1]]
		copy(c.ID[:], b[2:18])
		key := b[18:]
		if sortKeys[c.Sort].isTime() {
			if len(key) != 8 {
				return Cursor{}, bad
			}
			c.At = time.UnixMicro(int64(binary.BigEndian.Uint64(key))).UTC()
			return c, nil
		}
		if !utf8.Valid(key) || strings.ContainsRune(string(key), 0) {
			return Cursor{}, bad
		}
		c.Title = string(key)
		return c, nil
	}
	return Cursor{}, bad
}

// cursorOf is the position of d, the last row of a page in order st.
func cursorOf(st api.ListSort, d *Document) *Cursor {
	id, err := uuid.Parse(d.ID)
	if err != nil {
		return nil
	}
	c := &Cursor{Sort: sortOf(st), ID: id, Title: d.Title}
	switch sortKeys[c.Sort].column {
	case "created_at":
		c.At = d.CreatedAt.Time
	case "updated_at":
		c.At = d.UpdatedAt.Time
	}
	return c
}

// sortNames is the accepted sorts for an error message.
func sortNames() string {
	names := make([]string, len(api.ListSorts))
	for i, s := range api.ListSorts {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// parseListQuery reads GET /documents' parameters, collecting every bad one.
func parseListQuery(q *httpx.Query) ListQuery {
	var lq ListQuery
	lq.Skip, lq.Limit = q.Page()
	if lq.Skip > MaxSkip {
		q.Fail("skip", fmt.Sprintf("must be at most %d; page further with cursor (the %s header of the previous page)", MaxSkip, NextCursorHeader))
	}
	lq.Sort = api.SortCreatedDesc
	badSort := false
	if raw := q.Get("sort"); raw != "" {
		if _, ok := sortKeys[api.ListSort(raw)]; ok {
			lq.Sort = api.ListSort(raw)
		} else {
			badSort = true
			q.Fail("sort", "must be one of "+sortNames()+" (\"-\" first: descending)")
		}
	}
	if raw := q.Get("cursor"); raw != "" {
		c, err := ParseCursor(raw)
		switch {
		case err != nil:
			q.Fail("cursor", err.Error())
		case lq.Skip != 0:
			q.Fail("skip", "cannot be combined with cursor")
		case c.Sort != lq.Sort && !badSort:
			q.Fail("cursor", fmt.Sprintf("was issued for sort=%s, not sort=%s: pass it with the sort of the page it came from, or start again without it", c.Sort, lq.Sort))
		default:
			lq.After = &c
		}
	}
	// min_lsn: read-your-writes, as on search. The list reads the primary,
	// where every write whose X-Commit-LSN a client holds is already
	// committed, so a valid one is met on arrival; it is accepted (and
	// checked) so that a client passes its last write's LSN to the list
	// and to search alike.
	q.LSN("min_lsn", q.Get("min_lsn"))
	if raw := q.Get("status"); raw != "" {
		st, ok := ParseStatus(raw)
		if !ok {
			q.Fail("status", "must be one of "+Statuses())
		}
		lq.Status = st
	}
	if raw := q.Get("created_by"); raw != "" {
		if len(raw) > 255 {
			q.Fail("created_by", "must be at most 255 characters")
		}
		lq.CreatedBy = raw
	}
	lq.CreatedAfter = timeParam(q, "created_after")
	lq.CreatedBefore = timeParam(q, "created_before")
	return lq
}

// timeParam reads an RFC 3339 time (as the API writes created_at).
func timeParam(q *httpx.Query, name string) time.Time {
	raw := q.Get(name)
	if raw == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil || t.Year() < 1 || t.Year() > 9999 {
		q.Fail(name, "must be an RFC 3339 time such as 2025-11-20T01:46:31Z")
		return time.Time{}
	}
	return t
}

// listSQL builds the page's query. Every shape it produces is one range
// scan of an index ending in (key, id) in the sort's direction
// (migrations 00008 and 00020); TestListIsIndexDriven and
// TestListSortsAreIndexDriven check the plans.
func listSQL(lq ListQuery) (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if lq.Status != "" {
		where = append(where, "status = "+arg(string(lq.Status)))
	}
	if lq.CreatedBy != "" {
		where = append(where, "created_by = "+arg(lq.CreatedBy))
	}
	if !lq.CreatedAfter.IsZero() {
		where = append(where, "created_at > "+arg(lq.CreatedAfter))
	}
	if !lq.CreatedBefore.IsZero() {
		where = append(where, "created_at < "+arg(lq.CreatedBefore))
	}
	if lq.readers != nil {
		where = append(where, "readers && "+arg(lq.readers)+"::text[]")
	}
	key := sortKeys[sortOf(lq.Sort)]
	op, dir := ">", "ASC"
	if key.desc {
		op, dir = "<", "DESC"
	}
	if lq.After != nil {
		var at any = lq.After.At
		if !key.isTime() {
			at = lq.After.Title
		}
		where = append(where, "("+key.column+", id) "+op+" ("+arg(at)+", "+arg(lq.After.ID)+")")
	}
	sql := `SELECT ` + columns + ` FROM documents.documents`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY " + key.column + " " + dir + ", id " + dir
	if lq.Skip > 0 {
		sql += " OFFSET " + arg(lq.Skip)
	}
	// One row beyond the page tells whether there is a next one.
	sql += " LIMIT " + arg(lq.Limit+1)
	return sql, args
}

// Page is one page of the list and the cursor of the next (nil on the
// last page).
type Page struct {
	Documents []*Document
	Next      *Cursor
}

func validateListQuery(lq ListQuery) error {
	if lq.Limit < 1 || lq.Limit > httpx.MaxLimit {
		return apperr.Fields(apperr.FieldError{Field: "limit", Message: fmt.Sprintf("must be an integer from 1 to %d", httpx.MaxLimit)})
	}
	if lq.Skip < 0 || lq.Skip > MaxSkip {
		return apperr.Fields(apperr.FieldError{Field: "skip", Message: fmt.Sprintf("must be an integer from 0 to %d", MaxSkip)})
	}
	if _, ok := sortKeys[sortOf(lq.Sort)]; !ok {
		return apperr.Fields(apperr.FieldError{Field: "sort", Message: "must be one of " + sortNames()})
	}
	if lq.After != nil && sortOf(lq.After.Sort) != sortOf(lq.Sort) {
		return apperr.Fields(apperr.FieldError{Field: "cursor", Message: fmt.Sprintf("was issued for sort=%s", sortOf(lq.After.Sort))})
	}
	return nil
}
