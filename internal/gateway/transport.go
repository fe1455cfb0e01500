package gateway

import (
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"

	"github.com/docstream/docstream/internal/httpx"
)

// RoundTrip sends req to an upstream of the pool. ReverseProxy calls it with
// the client's request rewritten (headers, X-Forwarded-*); choosing the
// upstream here, rather than in Rewrite, lets a failed attempt move on to
// another upstream.
//
// Retries, each on an upstream not yet tried: any request, whatever its
// method, when the connection was never made (a dial error: connection
// refused by an instance that has just stopped, no route): nothing reached
// an upstream, so nothing can have been done twice, and none of the body
// was consumed. An idempotent request without a body is also retried after
// any other transport error, and after a busy answer (503/429 with
// Retry-After: the upstream shed it unprocessed). The last busy answer is
// passed to the client as it is.
func (p *pool) RoundTrip(req *http.Request) (*http.Response, error) {
	idempotent := isIdempotent(req.Method)
	hasBody := req.Body != nil && req.Body != http.NoBody
	body := req.Body
	if hasBody && p.svc.Retries > 0 {
		// http.Transport closes the body on failure; keep it open so a
		// retry can still send it. The server closes the real body.
		body = io.NopCloser(req.Body)
	}
	var tried []*upstream
	var lastErr error
	for attempt := 0; ; attempt++ {
		u := p.pick(tried)
		if u == nil {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, errNoUpstream
		}
		tried = append(tried, u)
		out := req.WithContext(req.Context())
		target := *req.URL
		target.Scheme, target.Host = u.url.Scheme, u.url.Host
		out.URL = &target
		out.Host = ""
		out.Body = body
		if attempt > 0 {
			retriesTotal.WithLabelValues(p.svc.Name).Inc()
		}

		u.inflight.Add(1)
		resp, err := p.transport.RoundTrip(out)
		if err != nil {
			u.inflight.Add(-1)
			if req.Context().Err() != nil || isBodyTooLarge(err) || errors.Is(err, httpx.ErrBodyTooSlow) {
				// The client went away, sent too much or too slowly: not the upstream's fault.
				return nil, err
			}
			p.recordResult(u, outcomeFailed, err.Error())
			lastErr = err
			if attempt < p.svc.Retries && (isDialError(err) || idempotent && !hasBody) {
				continue
			}
			return nil, err
		}
		outcome := outcomeOK
		switch {
		case isBusy(resp):
			outcome = outcomeBusy
		case slices.Contains(p.svc.Passive.Statuses, resp.StatusCode):
			outcome = outcomeFailed
		}
		p.recordResult(u, outcome, "status "+strconv.Itoa(resp.StatusCode))
		if outcome == outcomeBusy && idempotent && !hasBody && attempt < p.svc.Retries && p.pick(tried) != nil {
			u.inflight.Add(-1)
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			continue
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			// The body is the upgraded connection and must stay an
			// io.ReadWriteCloser for ReverseProxy; it is not a request in flight.
			u.inflight.Add(-1)
			return resp, nil
		}
		resp.Body = &inflightBody{ReadCloser: resp.Body, u: u}
		return resp, nil
	}
}

// inflightBody counts the request as in flight until its response body is
// closed, which is what least_requests balances on.
type inflightBody struct {
	io.ReadCloser
	u    *upstream
	done bool
}

func (b *inflightBody) Close() error {
	if !b.done {
		b.done = true
		b.u.inflight.Add(-1)
	}
	return b.ReadCloser.Close()
}

// isBusy: the upstream shed the request (503 or 429 with Retry-After)
// rather than failed it.
func isBusy(resp *http.Response) bool {
	return (resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests) &&
		resp.Header.Get("Retry-After") != ""
}

func isIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func isBodyTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
