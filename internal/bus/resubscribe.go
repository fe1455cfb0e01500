package bus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Subscriber is one backend's way of running a watched subscription (a
// NATS consumer, a Kafka client) for Resubscribe. C is what Open makes.
type Subscriber[C any] struct {
	// Name, Topic and Group identify the subscription in the log.
	Name, Topic, Group string
	// StallAfter is the bus's stall timeout: a subscription that ran longer
	// had worked, and the next one starts without a growing pause.
	StallAfter time.Duration
	Log        *slog.Logger

	// Open makes the next subscription.
	Open func(ctx context.Context) (C, error)
	// Run consumes it until ctx is done or it fails.
	Run func(ctx context.Context, c C) error
	// Watch checks it beside Run until ctx is done, and calls cancel with
	// the reason when it is lost or stalled: that ends Run, and the reason
	// is what is logged.
	Watch func(ctx context.Context, c C, cancel context.CancelCauseFunc)
	// Close, when set, releases a subscription that ended. It may take
	// long (a Kafka group member's leave waits for a join in progress, up
	// to the session timeout), so it runs beside the next subscription;
	// Resubscribe returns once every Close has.
	Close func(c C)
	// Resubscribed counts a replacement and keeps its reason (the
	// ConsumerState); it is called after the replacement is logged, so
	// whoever sees the count finds the line.
	Resubscribed func(reason error)
}

// Resubscribe runs one subscription after another until ctx is done
// (nil): Open makes it, Run consumes it under Watch. Whatever ends one
// other than ctx (an error, a lost consumer, a closed client, a stall) is
// logged and counted, and the next one starts after RetryWait(failures in
// a row, 5 s).
func Resubscribe[C any](ctx context.Context, s Subscriber[C]) error {
	var closing sync.WaitGroup
	defer closing.Wait()
	for fails := 0; ; {
		c, err := s.Open(ctx)
		if err == nil {
			sub, cancel := context.WithCancelCause(ctx)
			var wg sync.WaitGroup
			wg.Go(func() { s.Watch(sub, c, cancel) })
			began := time.Now()
			err = s.Run(sub, c)
			cause := context.Cause(sub)
			cancel(nil)
			wg.Wait()
			if s.Close != nil {
				closing.Go(func() { s.Close(c) })
			}
			if ctx.Err() != nil {
				return nil
			}
			if cause != nil && !errors.Is(cause, context.Canceled) {
				err = cause
			}
			if err == nil {
				err = errors.New("subscription ended")
			}
			if time.Since(began) > s.StallAfter {
				fails = 0 // it had worked: retry at once
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := RetryWait(fails, 5*time.Second)
		fails++
		s.Log.Warn("bus subscription lost; subscribing again", "consumer", s.Name, "topic", s.Topic, "group", s.Group,
			"reason", err, "in", wait)
		s.Resubscribed(err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// RetryWait is the pause before attempt n+1 (n from 0) of something
// retried until it works: 100 ms doubling up to max.
func RetryWait(n int, max time.Duration) time.Duration {
	d := 100 * time.Millisecond
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
