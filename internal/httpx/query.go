package httpx

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
)

// Paging of every list: skip ≥ 0 (default 0), limit 1–MaxLimit (default
// DefaultLimit), the reference's parameter names.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Query reads query parameters, collecting a field error for each bad one
// so that one answer (422 validation) names them all.
type Query struct {
	values url.Values
	errs   []apperr.FieldError
}

// NewQuery reads r's query string.
func NewQuery(r *http.Request) *Query { return &Query{values: r.URL.Query()} }

// Get returns the raw value of name ("" when absent).
func (q *Query) Get(name string) string { return q.values.Get(name) }

// Fail records that field is wrong.
func (q *Query) Fail(field, msg string) {
	q.errs = append(q.errs, apperr.FieldError{Field: field, Message: msg})
}

// Int reads an optional integer in [lo, hi]; def when absent or wrong.
func (q *Query) Int(name string, def, lo, hi int) int {
	raw := q.values.Get(name)
	if raw == "" {
		return def
	}
	v, err := strconv.Atoi(raw)
	if err != nil || v < lo || v > hi {
		if hi == maxInt {
			q.Fail(name, fmt.Sprintf("must be an integer ≥ %d", lo))
		} else {
			q.Fail(name, fmt.Sprintf("must be an integer from %d to %d", lo, hi))
		}
		return def
	}
	return v
}

const maxInt = int(^uint(0) >> 1)

// LSN reads raw, the value of field, as a WAL position written the way
// X-Commit-LSN carries it (a decimal integer). ok is false when raw is
// empty or wrong (then field is failed).
func (q *Query) LSN(field, raw string) (lsn uint64, ok bool) {
	if raw == "" {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(raw), 10, 64)
	if err != nil {
		q.Fail(field, "must be a non-negative integer LSN (as in X-Commit-LSN)")
		return 0, false
	}
	return v, true
}

// MinLSN reads a read's min_lsn parameter, or the X-Min-LSN header when
// the parameter is absent: the X-Commit-LSN of a write the client made,
// possibly through another instance, that the answer must reflect. 0 when
// both are absent (or wrong: then the field is failed).
func (q *Query) MinLSN(r *http.Request) uint64 {
	field, raw := "min_lsn", q.values.Get("min_lsn")
	if raw == "" {
		// The header map is read directly: Header.Get canonicalizes the
		// key on every call, and document reads are the hottest route.
		if v := r.Header[minLSNKey]; len(v) > 0 {
			field, raw = api.MinLSNHeader, v[0]
		}
	}
	lsn, _ := q.LSN(field, raw)
	return lsn
}

var minLSNKey = http.CanonicalHeaderKey(api.MinLSNHeader)

// MinLSN is Query.MinLSN for a route that reads no other parameter; the
// query string is parsed only when there is one (the common read has
// neither).
func MinLSN(r *http.Request) (uint64, error) {
	var q Query
	if r.URL.RawQuery != "" {
		q.values = r.URL.Query()
	}
	lsn := q.MinLSN(r)
	return lsn, q.Err()
}

// SetCommitLSN sends a write's WAL position as X-Commit-LSN (none when 0,
// the position could not be read): a read or search given it as min_lsn
// reflects the write.
func SetCommitLSN(w http.ResponseWriter, lsn uint64) {
	if lsn != 0 {
		w.Header().Set(api.CommitLSNHeader, strconv.FormatUint(lsn, 10))
	}
}

// Page reads skip and limit.
func (q *Query) Page() (skip, limit int) {
	return q.Int("skip", 0, 0, maxInt), q.Int("limit", DefaultLimit, 1, MaxLimit)
}

// Err is the validation error naming every bad parameter, nil when none.
func (q *Query) Err() error { return apperr.Fields(q.errs...) }
