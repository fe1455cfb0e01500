package bus_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/bus"
)

// TestResubscribeReplacesWhatEndsAndClosesEverything runs a subscriber
// whose first subscription fails, whose second is cancelled by its
// watchdog, and whose third runs until the context ends: each replacement
// is logged with its reason and then counted, every subscription is
// closed, and Resubscribe returns nil only after the last Close.
func TestResubscribeReplacesWhatEndsAndClosesEverything(t *testing.T) {
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	opened, closed := 0, 0
	var reasons []string
	stalled := errors.New("stalled")
	closing := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- bus.Resubscribe(ctx, bus.Subscriber[int]{
			Name: "indexer", Topic: "cdc.documents", StallAfter: time.Minute, Log: slog.New(slog.NewTextHandler(&logs, nil)),
			Open: func(context.Context) (int, error) {
				mu.Lock()
				defer mu.Unlock()
				opened++
				return opened, nil
			},
			Run: func(ctx context.Context, n int) error {
				switch n {
				case 1:
					return errors.New("fetch failed")
				case 3:
					cancel() // the third runs until the subscriber stops
				}
				<-ctx.Done()
				return nil
			},
			Watch: func(ctx context.Context, n int, cancel context.CancelCauseFunc) {
				if n == 2 {
					cancel(stalled)
				}
			},
			Close: func(n int) {
				if n == 3 {
					<-closing // a slow close: Resubscribe waits for it
				}
				mu.Lock()
				closed++
				mu.Unlock()
			},
			Resubscribed: func(reason error) {
				if !strings.Contains(logs.String(), reason.Error()) {
					t.Errorf("%v counted before it was logged", reason)
				}
				reasons = append(reasons, reason.Error())
			},
		})
	}()
	select {
	case err := <-done:
		t.Fatalf("Resubscribe returned %v before the last Close", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(closing)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if opened != 3 || closed != 3 {
		t.Fatalf("opened %d, closed %d: want 3 and 3", opened, closed)
	}
	if want := []string{"fetch failed", "stalled"}; strings.Join(reasons, ",") != strings.Join(want, ",") {
		t.Fatalf("reasons %v, want %v", reasons, want)
	}
	if n := strings.Count(logs.String(), "bus subscription lost"); n != 2 {
		t.Fatalf("%d replacements logged, want 2:\n%s", n, logs.String())
	}
}

func TestRetryWaitDoublesUpToItsCap(t *testing.T) {
	for n, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second} {
		if got := bus.RetryWait(n, time.Second); got != want {
			t.Errorf("RetryWait(%d, 1s) = %v, want %v", n, got, want)
		}
	}
}
