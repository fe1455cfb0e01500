package signature

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/docstream/docstream/apperr"
)

// mailLimiter charges the mails a caller causes (creating, sending or
// resending a request) against --signing-mail-per-minute. The count is
// kept in Redis, so every instance of the signature service charges the
// same count per principal and a restart does not hand out a fresh
// allowance. redis_rate's GCRA allows a burst of the whole minute's mails,
// then one more every minute/limit.
//
// When Redis cannot be reached the limiter fails closed: the call answers
// 503 and nothing is sent. The limit protects people outside docstream
// (the recipients' inboxes, and the reputation of the sending domain);
// failing open would turn a Redis outage into an unlimited mail relay for
// every account, while failing closed only delays the owners of new
// requests, who can retry. Signing, viewing and everything else do not
// touch the limiter.
type mailLimiter struct {
	rl     *redis_rate.Limiter
	limit  redis_rate.Limit
	prefix string // key prefix: instances sharing one Redis share it
	log    *slog.Logger
}

// mailKeyPrefix is where the counts live in Redis ("rate:" is
// redis_rate's own prefix before it).
const mailKeyPrefix = "docstream:signing-mail:"

func newMailLimiter(rdb redis.UniversalClient, perMinute int, prefix string, log *slog.Logger) *mailLimiter {
	return &mailLimiter{rl: redis_rate.NewLimiter(rdb), limit: redis_rate.PerMinute(perMinute), prefix: prefix, log: log}
}

// charge takes n mails from key's allowance, or refuses them (422 naming
// recipients when n exceeds the whole minute's allowance, checked before
// Redis is asked; 429 with the wait in Retry-After; 503 when Redis is
// unreachable). refund gives
// them back when the change that would have sent them did not commit.
func (l *mailLimiter) charge(ctx context.Context, key string, n int) (refund func(), err error) {
	noop := func() {}
	if n <= 0 {
		return noop, nil
	}
	if n > l.limit.Burst {
		// Never allowed at once, however long the caller waits: the
		// request is invalid, not early, whatever Redis holds or whether
		// it answers, and asking it would charge nothing anyway.
		return noop, apperr.Fields(apperr.FieldError{Field: "recipients",
			Message: fmt.Sprintf("%d recipients, more than the %d mails --signing-mail-per-minute allows at once: such a request could never be sent", n, l.limit.Burst)})
	}
	k := l.prefix + key
	res, err := l.rl.AllowN(ctx, k, l.limit, n)
	if err != nil {
		return noop, apperr.Wrap(apperr.Unavailable, err, "the mail rate limiter (Redis) is unavailable: no signing mail can be sent now; retry later")
	}
	if res.Allowed == 0 {
		return noop, apperr.Wrap(apperr.RateLimited, retryAfter(res.RetryAfter),
			"too many signing mails: at most %d a minute; retry after the time in Retry-After", l.limit.Rate)
	}
	return func() {
		// Detached: the refund runs after the caller's request failed,
		// often because its context ended.
		ctx := context.WithoutCancel(ctx)
		res, err := l.rl.AllowN(ctx, k, l.limit, -n)
		if err != nil {
			l.log.WarnContext(ctx, "refund signing mails: the rate limiter is unavailable", "mails", n, "err", err)
			return
		}
		if res.ResetAfter <= 0 {
			// redis_rate stores the count only while it is above zero, so
			// a refund that empties it would leave the old count behind:
			// the key is removed instead (a charge by another instance in
			// the instant between the two calls is forgotten with it).
			if err := l.rl.Reset(ctx, k); err != nil {
				l.log.WarnContext(ctx, "refund signing mails: the rate limiter is unavailable", "mails", n, "err", err)
			}
		}
	}, nil
}

// retryAfter is the cause of a 429: httpx.RespondErr sends it as the
// Retry-After header.
type retryAfter time.Duration

func (r retryAfter) Error() string             { return "retry after " + time.Duration(r).String() }
func (r retryAfter) RetryAfter() time.Duration { return time.Duration(r) }
