package gateway

import (
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
)

// RoundTrip sends req to an upstream of the pool. ReverseProxy calls it with
// the client's request rewritten (headers, X-Forwarded-*); choosing the
// upstream here, rather than in Rewrite, lets a failed attempt move on to
// another upstream.
//
// Retries: only idempotent methods, only after a transport error (no
// response), each on an upstream not yet tried. A request without a body is
// retried after any transport error; one with a body only when the
// connection was never made (a dial error), because only then is it certain
// that none of the body was consumed.
func (p *pool) RoundTrip(req *http.Request) (*http.Response, error) {
	idempotent := isIdempotent(req.Method)
	hasBody := req.Body != nil && req.Body != http.NoBody
	body := req.Body
	if hasBody && idempotent && p.svc.Retries > 0 {
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
			if req.Context().Err() != nil || isBodyTooLarge(err) {
				// The client went away or sent too much: not the upstream's fault.
				return nil, err
			}
			p.recordResult(u, true, err.Error())
			lastErr = err
			if attempt < p.svc.Retries && idempotent && (!hasBody || isDialError(err)) {
				continue
			}
			return nil, err
		}
		p.recordResult(u, slices.Contains(p.svc.Passive.Statuses, resp.StatusCode), "status "+strconv.Itoa(resp.StatusCode))
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
