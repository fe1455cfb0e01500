package document

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

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

// ListQuery selects one page of GET /documents, newest first.
type ListQuery struct {
	Limit int
	// Skip is rows to skip (the reference's paging), at most MaxSkip.
	Skip int
	// After resumes after the last row of the previous page (keyset
	// paging); nil: from the newest.
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

// Cursor is a position in the list: the (created_at, id) of the last row
// a client saw. The list is ordered by exactly that pair, so the next page
// is "every row below it", one index range whatever the page number.
type Cursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// cursorVersion is the first byte of an encoded cursor, so that the format
// can change without a client's saved cursor being misread.
const cursorVersion = 1

// String encodes c opaquely: version, microseconds since the epoch (the
// precision of timestamptz), the id's 16 bytes, base64url.
func (c Cursor) String() string {
	var b [1 + 8 + 16]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(c.CreatedAt.UnixMicro()))
	copy(b[9:], c.ID[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseCursor decodes a cursor String made.
func ParseCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 25 || b[0] != cursorVersion {
		return Cursor{}, fmt.Errorf("is not a cursor this service issued (pass the %s of the previous page unchanged)", NextCursorHeader)
	}
	var c Cursor
	c.CreatedAt = time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:9]))).UTC()
	copy(c.ID[:], b[9:])
	return c, nil
}

// cursorOf is the position of d, the last row of a page.
func cursorOf(d *Document) *Cursor {
	id, err := uuid.Parse(d.ID)
	if err != nil {
		return nil
	}
	return &Cursor{CreatedAt: d.CreatedAt.Time, ID: id}
}

// parseListQuery reads GET /documents' parameters, collecting every bad one.
func parseListQuery(q *httpx.Query) ListQuery {
	var lq ListQuery
	lq.Skip, lq.Limit = q.Page()
	if lq.Skip > MaxSkip {
		q.Fail("skip", fmt.Sprintf("must be at most %d; page further with cursor (the %s header of the previous page)", MaxSkip, NextCursorHeader))
	}
	if raw := q.Get("cursor"); raw != "" {
		c, err := ParseCursor(raw)
		switch {
		case err != nil:
			q.Fail("cursor", err.Error())
		case lq.Skip != 0:
			q.Fail("skip", "cannot be combined with cursor")
		default:
			lq.After = &c
		}
	}
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

// listSQL builds the page's query. Every shape it produces is one backward
// range scan of an index ending in (created_at, id) (migration 00008),
// TestListIsIndexDriven checks the plans.
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
	if lq.After != nil {
		where = append(where, "(created_at, id) < ("+arg(lq.After.CreatedAt)+", "+arg(lq.After.ID)+")")
	}
	sql := `SELECT ` + columns + ` FROM documents.documents`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY created_at DESC, id DESC"
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
	return nil
}
