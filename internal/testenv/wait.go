package testenv

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing the test if it still does not
// after a minute. The bound only decides how long a broken test hangs; it
// is no performance limit.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitForWithin(t, time.Minute, what, cond)
}

// WaitForWithin is WaitFor with its own bound.
func WaitForWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
