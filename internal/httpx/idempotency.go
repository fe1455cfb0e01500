package httpx

import (
	"net/http"
	"strings"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
)

// MaxIdempotencyKey is the longest Idempotency-Key accepted.
const MaxIdempotencyKey = 255

// IdempotencyKey reads the request's Idempotency-Key header: a quoted
// structured-field string, as the draft writes it, or the bare value many
// clients send. "" is no key. A key that is too long or holds anything
// but visible ASCII is invalid, naming the header.
func IdempotencyKey(r *http.Request) (string, error) {
	h := strings.TrimSpace(r.Header.Get(api.IdempotencyKeyHeader))
	if len(h) >= 2 && h[0] == '"' && h[len(h)-1] == '"' {
		h = h[1 : len(h)-1]
	}
	bad := func(msg string) error {
		return apperr.E(apperr.Invalid, "Idempotency-Key header %s", msg)
	}
	switch {
	case h == "":
		return "", nil
	case len(h) > MaxIdempotencyKey:
		return "", bad("is longer than 255 characters")
	}
	for i := 0; i < len(h); i++ {
		if h[i] < 0x21 || h[i] > 0x7e || h[i] == '"' || h[i] == '\\' {
			return "", bad("may hold only visible ASCII characters, without quotes or backslashes")
		}
	}
	return h, nil
}
