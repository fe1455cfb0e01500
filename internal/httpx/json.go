// Package httpx holds the HTTP plumbing every docstream service shares: JSON
// decode/encode with the one error shape, middleware (request ID, metrics,
// access log, panic recovery), health endpoints and a graceful server runner.
// It knows nothing about any one service.
package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docstream/docstream/apperr"
)

// Decode reads one JSON value of type T from r's body, at most limit bytes.
// Unknown fields are refused. Errors are *apperr.Error: Invalid for malformed
// JSON, Validation (field named) for wrong types or unknown fields, TooLarge
// over the limit. The body is read as JSON whatever the Content-Type says,
// so `curl -d '{…}'` without a header works; a body that is not JSON gets
// a hint when the header was not JSON either.
func Decode[T any](w http.ResponseWriter, r *http.Request, limit int64) (T, error) {
	var v T
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return v, decodeError(err, limit)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		err = decodeError(err, limit)
		if ct := r.Header.Get("Content-Type"); ct != "" && !strings.Contains(ct, "json") && apperr.CodeOf(err) == apperr.Invalid {
			e := apperr.As(err)
			return v, apperr.E(e.Code, "%s (the body must be JSON; Content-Type was %q)", e.Message, ct)
		}
		return v, err
	}
	if dec.More() {
		return v, apperr.E(apperr.Invalid, "malformed JSON: unexpected data after the JSON value")
	}
	if !utf8.Valid(body) {
		return v, invalidUTF8(body)
	}
	return v, nil
}

// invalidUTF8 names the top-level field holding bytes that are not UTF-8.
// encoding/json would quietly turn them into U+FFFD, storing something the
// client never sent; RFC 8259 requires UTF-8, so it is the client's mistake.
func invalidUTF8(body []byte) error {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) == nil {
		names := make([]string, 0, len(fields))
		for k := range fields {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if !utf8.Valid(fields[k]) {
				return apperr.Fields(apperr.FieldError{Field: k, Message: "must be valid UTF-8 text"})
			}
		}
	}
	return apperr.E(apperr.Invalid, "request body is not valid UTF-8")
}

func decodeError(err error, limit int64) error {
	var (
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooLarge):
		return apperr.E(apperr.TooLarge, "request body is larger than %d bytes", limit)
	case errors.Is(err, ErrBodyTooSlow):
		return apperr.Wrap(apperr.Invalid, err, "request body arrived too slowly")
	case errors.Is(err, io.EOF):
		return apperr.E(apperr.Invalid, "request body is empty; a JSON object is required")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.E(apperr.Invalid, "malformed JSON: %v", err)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return apperr.E(apperr.Invalid, "request body must be a JSON object")
		}
		return apperr.Fields(apperr.FieldError{Field: field, Message: fmt.Sprintf("must be a %s", jsonType(typ.Type.Kind().String()))})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apperr.Fields(apperr.FieldError{Field: field, Message: "unknown field"})
	default:
		return apperr.E(apperr.Invalid, "malformed JSON: %v", err)
	}
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "int", "int32", "int64", "uint", "uint32", "uint64", "float32", "float64":
		return "number"
	case "slice", "array":
		return "array"
	default:
		return "object"
	}
}

// Respond writes v as JSON with the given status.
func Respond(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// RetryAfterer is the cause of a 429 or 503 that knows when to retry (a
// rate limit's window): RespondErr sends it as Retry-After, in whole
// seconds rounded up (at least 1). Wrap it: apperr.Wrap(apperr.RateLimited,
// cause, …).
type RetryAfterer interface{ RetryAfter() time.Duration }

// WWWAuthenticate is the challenge of every 401 answer.
const WWWAuthenticate = `Bearer error="invalid_token"`

// RespondErr writes err in the one error shape. Internal errors are logged
// (to log, or slog's default when nil) with their cause and shown to the
// client only as "internal error". A 429 without Retry-After gets one.
func RespondErr(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := apperr.As(err)
	status := apperr.HTTPStatus(e.Code)
	// "Retry later" says when: a lost database, a dependency that is down,
	// a shed request. A client (and the gateway) tells this apart from a
	// failure by the header.
	if (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && w.Header().Get("Retry-After") == "" {
		after := 1
		var ra RetryAfterer
		if errors.As(err, &ra) {
			after = max(1, int(math.Ceil(ra.RetryAfter().Seconds())))
		}
		w.Header().Set("Retry-After", strconv.Itoa(after))
	}
	// RFC 6750 §3: a 401 names the scheme a client should retry with.
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", WWWAuthenticate)
	}
	// A shed request is not logged: under overload that would be a line per
	// request; docstream_admission_shed_total counts them.
	if status >= 500 && !errors.Is(err, errBusy) {
		if log == nil {
			log = slog.Default()
		}
		// A dependency that is down or slow is expected in operation; only
		// an internal error is a bug.
		level := slog.LevelWarn
		if e.Code == apperr.Internal {
			level = slog.LevelError
		}
		log.Log(r.Context(), level, "request failed", "method", r.Method, "path", LogPath(r.URL.Path), "code", e.Code, "err", err)
	}
	Respond(w, status, apperr.Body{Error: *e})
}
