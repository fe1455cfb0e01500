package httpx

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

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

// Page reads skip and limit.
func (q *Query) Page() (skip, limit int) {
	return q.Int("skip", 0, 0, maxInt), q.Int("limit", DefaultLimit, 1, MaxLimit)
}

// Err is the validation error naming every bad parameter, nil when none.
func (q *Query) Err() error { return apperr.Fields(q.errs...) }
