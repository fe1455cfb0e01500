package nats

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Streams are shared with the operator: docstream creates the stream of a
// topic family when it is missing, but an existing stream may have been
// tuned by hand (scaled to 3 replicas, placed, given byte limits). So on
// its first use in a process the bus reads the stream and changes only what
// docstream owns, and only when it differs:
//
//   - subjects: the family's wildcard must be among them (added);
//   - max age (--bus-max-age) and allow-direct (the seek by LSN and the CDC
//     resume read through direct gets, also served by followers);
//   - the duplicate window: raised to Options.Duplicates when shorter (it
//     is what drops a change re-published after a crash), never lowered;
//   - replicas: raised to Options.Replicas (--bus-replicas), never lowered:
//     a stream an operator scaled up stays scaled up.
//
// Every other setting is the operator's and is kept; a difference with what
// docstream would have created (storage, retention) is logged as a warning.
// Nothing here runs on the publish path once the stream is known to the
// process (see Prepare).

// wantStream is the stream docstream creates for family name.
func (b *Bus) wantStream(name, subjects string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Subjects:    []string{subjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      b.opts.MaxAge,
		Duplicates:  b.opts.Duplicates,
		Replicas:    b.opts.Replicas,
		AllowDirect: true, // cheap GetMsg for StartAfterLSN's search
	}
}

// reconcile returns have with docstream's owned settings applied (changed
// lists them) and the settings docstream would have chosen otherwise but
// leaves to the operator (kept).
func reconcile(have, want jetstream.StreamConfig) (cfg jetstream.StreamConfig, changed, kept []string) {
	cfg = have
	if !slices.Contains(cfg.Subjects, want.Subjects[0]) {
		cfg.Subjects = append(slices.Clone(cfg.Subjects), want.Subjects[0])
		changed = append(changed, fmt.Sprintf("subjects %v -> %v", have.Subjects, cfg.Subjects))
	}
	if cfg.MaxAge != want.MaxAge {
		cfg.MaxAge = want.MaxAge
		changed = append(changed, fmt.Sprintf("max_age %v -> %v", have.MaxAge, want.MaxAge))
	}
	if !cfg.AllowDirect {
		cfg.AllowDirect = true
		changed = append(changed, "allow_direct false -> true")
	}
	switch {
	case cfg.Duplicates < want.Duplicates:
		cfg.Duplicates = want.Duplicates
		changed = append(changed, fmt.Sprintf("duplicate_window %v -> %v", have.Duplicates, want.Duplicates))
	case cfg.Duplicates > want.Duplicates:
		kept = append(kept, fmt.Sprintf("duplicate_window %v (docstream's: %v)", have.Duplicates, want.Duplicates))
	}
	switch {
	case cfg.Replicas < want.Replicas:
		cfg.Replicas = want.Replicas
		changed = append(changed, fmt.Sprintf("replicas %d -> %d", have.Replicas, want.Replicas))
	case cfg.Replicas > want.Replicas:
		kept = append(kept, fmt.Sprintf("replicas %d (--bus-replicas: %d)", have.Replicas, want.Replicas))
	}
	if cfg.Storage != want.Storage {
		kept = append(kept, fmt.Sprintf("storage %v (docstream's: %v)", have.Storage, want.Storage))
	}
	if cfg.Retention != want.Retention {
		kept = append(kept, fmt.Sprintf("retention %v (docstream's: %v)", have.Retention, want.Retention))
	}
	return cfg, changed, kept
}

// ensureStream returns the stream name, creating it when missing and
// reconciling it otherwise (see above). Each request has its own deadline
// (Options.RequestTimeout), so a cluster electing a leader costs one
// bounded attempt, not the caller's whole deadline.
func (b *Bus) ensureStream(ctx context.Context, name, subjects string) (jetstream.Stream, error) {
	want := b.wantStream(name, subjects)
	s, err := b.attempt(ctx, func(ctx context.Context) (jetstream.Stream, error) { return b.js.Stream(ctx, name) })
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = b.attempt(ctx, func(ctx context.Context) (jetstream.Stream, error) { return b.js.CreateStream(ctx, want) })
		if err == nil {
			b.opts.Log.Info("bus stream created", "stream", name, "replicas", want.Replicas, "max_age", want.MaxAge)
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, err
		}
		// Another process created it meanwhile: reconcile with that one.
		s, err = b.attempt(ctx, func(ctx context.Context) (jetstream.Stream, error) { return b.js.Stream(ctx, name) })
	}
	if err != nil {
		return nil, err
	}
	have := s.CachedInfo().Config
	cfg, changed, kept := reconcile(have, want)
	if len(kept) > 0 {
		b.opts.Log.Warn("bus stream differs from what docstream would create; keeping the stream's settings", "stream", name, "kept", kept)
	}
	if len(changed) == 0 {
		return s, nil
	}
	s, err = b.attempt(ctx, func(ctx context.Context) (jetstream.Stream, error) { return b.js.UpdateStream(ctx, cfg) })
	if err != nil {
		return nil, fmt.Errorf("update (%v): %w", changed, err)
	}
	b.opts.Log.Info("bus stream updated", "stream", name, "changed", changed)
	return s, nil
}

// attempt runs one JetStream API request under the per-request deadline.
func (b *Bus) attempt(ctx context.Context, f func(ctx context.Context) (jetstream.Stream, error)) (jetstream.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.RequestTimeout)
	defer cancel()
	return f(ctx)
}

// Prepare makes sure the streams of topics exist and are reconciled, and
// keeps them known to this process, so that later publishes and
// subscriptions make no stream API call. The CDC engine calls it before
// waiting for its lock: a standby that takes over then publishes at once,
// without asking a cluster that may be electing a leader (the failover
// moment) for the stream first.
func (b *Bus) Prepare(ctx context.Context, topics ...string) error {
	var errs []error
	for _, t := range topics {
		if _, err := b.stream(ctx, t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
