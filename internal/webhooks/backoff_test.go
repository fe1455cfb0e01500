package webhooks

import (
	"net/http"
	"testing"
	"time"
)

// The first retry waits at most --webhooks-retry-first, later ones double
// up to the cap, always with jitter below the nominal wait.
func TestBackoffStartsWithinTheFirstWaitAndIsCapped(t *testing.T) {
	first, limit := 5*time.Second, time.Minute
	for n := 1; n <= 10; n++ {
		nominal := min(first<<(n-1), limit)
		for range 50 {
			d := Backoff(n, first, limit)
			if d < nominal/2 || d > nominal {
				t.Fatalf("retry %d waits %v, want within [%v, %v]", n, d, nominal/2, nominal)
			}
		}
	}
}

// Retry-After is read as seconds or as an HTTP date; 408, 429 and 5xx are
// retried, other 4xx and 3xx are not.
func TestRetryAfterAndWhatIsRetried(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"120": 2 * time.Minute, "0": 0, "": 0, "soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", v, got, want)
		}
	}
	for code, want := range map[int]bool{408: true, 429: true, 500: true, 503: true, 400: false, 401: false, 404: false, 410: false, 301: false, 302: false} {
		if retriable(code) != want {
			t.Errorf("retriable(%d) = %v", code, !want)
		}
	}
}
