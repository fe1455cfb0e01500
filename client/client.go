// Package client is the typed Go client of docstream's public API: every
// REST endpoint of the document, signature, search and realtime services
// and the realtime WebSocket, usually through the gateway (port 8000), and
// the gateway's read-only admin API (port 8001, its own Client).
//
// Answers are decoded into the types of package api, the same types the
// services encode, so a field renamed on the server breaks this package at
// compile time. A non-2xx answer is returned as *apperr.Error (package
// apperr), decoded from the API's error body; its Code says what went
// wrong and StatusCode tells the HTTP status. Failures to reach the server
// at all are returned as they come from net/http.
//
//	c, err := client.New("http://localhost:8000")
//	doc, err := c.CreateDocument(ctx, api.CreateDocumentRequest{Title: "Q4", Content: "…", CreatedBy: "a@example.com"})
//	if apperr.CodeOf(err) == apperr.Validation { … }
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
)

// Client calls one docstream endpoint: the gateway, or one service's own
// port. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	http  *http.Client
	token string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests through hc instead of http.DefaultClient.
// Uploads, downloads and watches can last long: prefer transport timeouts
// (dial, response header) to http.Client.Timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.http = hc }
}

// WithToken sends token (a JWT or an API key) as the bearer credential of
// every request and watch. A watch's WatchOptions.Token, when set, wins.
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// New returns a client of the API at baseURL (http or https, e.g.
// http://localhost:8000; a path prefix is kept).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http(s)://host[:port]", baseURL)
	}
	c := &Client{base: u, http: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// HTTPError is the cause (apperr.Error.Err) of an error answer: which
// request got which HTTP status.
type HTTPError struct {
	Method     string
	URL        string
	StatusCode int
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
}

// StatusCode returns the HTTP status of the answer err was decoded from,
// or 0 if err is not an error answer of the API.
func StatusCode(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	return 0
}

// url builds the URL of path (already escaped) under the base URL.
func (c *Client) url(path string, q url.Values) *url.URL {
	u := *c.base
	escaped := strings.TrimRight(u.EscapedPath(), "/") + path
	u.Path, _ = url.PathUnescape(escaped)
	u.RawPath = escaped
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return &u
}

// request describes one call.
type request struct {
	method      string
	path        string // escaped
	query       url.Values
	body        io.Reader
	contentType string
	header      http.Header
}

// send performs req and returns the response when its status is 2xx (or
// one of also); any other status becomes an *apperr.Error.
func (c *Client) send(ctx context.Context, req request, also ...int) (*http.Response, error) {
	u := c.url(req.path, req.query)
	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), req.body)
	if err != nil {
		return nil, err
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	if req.contentType != "" {
		hr.Header.Set("Content-Type", req.contentType)
	}
	if hr.Header.Get("Accept") == "" {
		hr.Header.Set("Accept", "application/json")
	}
	if c.token != "" && hr.Header.Get("Authorization") == "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	for _, s := range also {
		if resp.StatusCode == s {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	return nil, responseError(req.method, u, resp)
}

// responseError decodes an error answer. A body in the API's error shape
// gives code, message and details; anything else (a proxy's page, a
// plain-text 404) gives the code of the status and the text as message.
func responseError(method string, u *url.URL, resp *http.Response) *apperr.Error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	cause := &HTTPError{Method: method, URL: redact(u), StatusCode: resp.StatusCode}
	var body apperr.Body
	if json.Unmarshal(raw, &body) == nil && body.Error.Message != "" {
		e := body.Error
		if e.Code == "" {
			e.Code = apperr.FromHTTP(resp.StatusCode)
		}
		e.Err = cause
		return &e
	}
	msg := strings.TrimSpace(string(raw))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &apperr.Error{Code: apperr.FromHTTP(resp.StatusCode), Message: msg, Err: cause}
}

// redact drops the query's token (a WebSocket credential) from u.
func redact(u *url.URL) string {
	q := u.Query()
	if !q.Has("token") {
		return u.String()
	}
	q.Set("token", "REDACTED")
	v := *u
	v.RawQuery = q.Encode()
	return v.String()
}

// call sends in as JSON (when not nil) and decodes a JSON answer into out
// (when not nil). It returns the answer's headers.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, in, out any) (http.Header, error) {
	req := request{method: method, path: path, query: q}
	if in != nil {
		body, err := jsonBody(in)
		if err != nil {
			return nil, err
		}
		req.body, req.contentType = body, "application/json"
	}
	resp, err := c.send(ctx, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return resp.Header, decode(resp, out)
}

func jsonBody(in any) (io.Reader, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}

// decode reads resp's JSON body into out (the body is drained either way).
func decode(resp *http.Response, out any) error {
	if out == nil {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: unexpected answer from %s %s: %w", resp.Request.Method, redact(resp.Request.URL), err)
	}
	return nil
}

// written calls a route that changes something, decodes its answer into
// out and returns the answer's X-Commit-LSN.
func (c *Client) written(ctx context.Context, method, path string, body, out any) (uint64, error) {
	h, err := c.call(ctx, method, path, nil, body, out)
	if err != nil {
		return 0, err
	}
	return commitLSN(h, api.CommitLSNHeader), nil
}

// commitLSN reads X-Commit-LSN (0 when absent or malformed).
func commitLSN(h http.Header, name string) uint64 {
	v, _ := strconv.ParseUint(h.Get(name), 10, 64)
	return v
}

// setInt sets q[name] when v is not zero.
func setInt(q url.Values, name string, v int) {
	if v != 0 {
		q.Set(name, strconv.Itoa(v))
	}
}

// setString sets q[name] when v is not empty.
func setString(q url.Values, name, v string) {
	if v != "" {
		q.Set(name, v)
	}
}

func setLSN(q url.Values, v uint64) {
	if v != 0 {
		q.Set("min_lsn", strconv.FormatUint(v, 10))
	}
}

// idPath is "/<collection>/<id>[/<sub>]" with id escaped.
func idPath(collection, id string, sub ...string) string {
	p := "/" + collection + "/" + url.PathEscape(id)
	for _, s := range sub {
		p += "/" + s
	}
	return p
}
