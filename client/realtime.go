package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
)

// DevToken asks the development endpoint GET /auth/token for a WebSocket
// token (only `docstream dev` serves it; elsewhere it is not found).
func (c *Client) DevToken(ctx context.Context, userID, email string) (*api.Token, error) {
	return c.DevTokenWith(ctx, userID, email, DevTokenOptions{})
}

// DevTokenOptions are the rest of what a development token may say.
type DevTokenOptions struct {
	Name   string
	Groups []string
	Admin  bool
}

// DevTokenWith is DevToken with a name, groups and the admin role.
func (c *Client) DevTokenWith(ctx context.Context, userID, email string, o DevTokenOptions) (*api.Token, error) {
	q := url.Values{"user_id": {userID}}
	setString(q, "email", email)
	setString(q, "name", o.Name)
	setString(q, "groups", strings.Join(o.Groups, ","))
	if o.Admin {
		q.Set("admin", "true")
	}
	var t api.Token
	if _, err := c.call(ctx, http.MethodGet, "/auth/token", q, nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// RealtimeStats returns the realtime service's connection and consumer
// state (GET /stats). The gateway does not route /stats: call it with a
// client of the realtime service's own address (port 8004).
func (c *Client) RealtimeStats(ctx context.Context) (*api.RealtimeStats, error) {
	var s api.RealtimeStats
	if _, err := c.call(ctx, http.MethodGet, "/stats", nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// WatchOptions configure Watch.
type WatchOptions struct {
	// Token is the JWT the connection is opened with (see DevToken),
	// sent as ?token=; empty: the client's WithToken, as a header.
	Token string
	// Since resumes after a message already handled: the server first
	// replays every change committed after this LSN (a Message's LSN),
	// then streams live ones. 0: live changes only.
	Since uint64
	// Resume reconnects when the connection is lost or the server goes
	// away or sheds the connection (close codes 1001, 1013), asking for
	// the changes after the last message returned, so none is missed or
	// repeated. Without it, Next returns the end of the stream.
	Resume bool
	// Reconnecting, if set, is told each time Resume reconnects: the
	// cursor it asks from and why the connection ended (a CLI says so).
	Reconnecting func(since uint64, cause error)
}

// Watch is a live stream of one document's change messages
// (WS /ws/{document_id}). It is not safe for concurrent use.
type Watch struct {
	c     *Client
	docID string
	opts  WatchOptions
	conn  *websocket.Conn
	lsn   uint64 // cursor of the last message returned
	frame []byte
}

// maxFrame bounds one message; the server's are far smaller.
const maxFrame = 1 << 20

// Watch opens the WebSocket of one document ("": the list feed, see
// WatchList). The handshake's refusals are
// *apperr.Error like any answer (401 without a valid token).
func (c *Client) Watch(ctx context.Context, documentID string, opts WatchOptions) (*Watch, error) {
	w := &Watch{c: c, docID: documentID, opts: opts, lsn: opts.Since}
	if err := w.dial(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// WatchList opens the document list feed (WS /ws): the change messages of
// every document the caller may view — created, status changes, edits,
// deleted; a signature's own signature.added stays on the document's
// stream — with the same shape, cursor and options as Watch (Since,
// Resume). In required mode each event is filtered by the caller's access
// when it happens (a share takes effect with the document's next event).
func (c *Client) WatchList(ctx context.Context, opts WatchOptions) (*Watch, error) {
	return c.Watch(ctx, "", opts)
}

func (w *Watch) dial(ctx context.Context) error {
	q := url.Values{}
	setString(q, "token", w.opts.Token)
	if w.lsn != 0 {
		q.Set("since", strconv.FormatUint(w.lsn, 10))
	}
	path := "/ws" // the list feed
	if w.docID != "" {
		path = idPath("ws", w.docID)
	}
	u := w.c.url(path, q)
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1) // http→ws, https→wss
	opts := &websocket.DialOptions{HTTPClient: w.c.http}
	if w.opts.Token == "" && w.c.token != "" {
		// The client's own credential goes in the header, where no
		// access log records it.
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + w.c.token}}
	}
	conn, resp, err := websocket.Dial(ctx, u.String(), opts)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			if resp.Body == nil {
				resp.Body = http.NoBody
			}
			return responseError(http.MethodGet, u, resp)
		}
		return &dialError{msg: fmt.Sprintf("client: watch %s: %s", w.docID, scrubToken(scrubToken(err.Error(), w.opts.Token), w.c.token)), err: err}
	}
	conn.SetReadLimit(maxFrame)
	w.conn = conn
	return nil
}

// Next returns the next message. It returns io.EOF when the server ended
// the stream normally (or went away, without Resume), and ctx's error when
// ctx is done (the connection is then closed).
func (w *Watch) Next(ctx context.Context) (api.Message, error) {
	for {
		_, frame, err := w.conn.Read(ctx)
		if err == nil {
			var m api.Message
			if err := json.Unmarshal(frame, &m); err != nil {
				return api.Message{}, fmt.Errorf("client: watch %s: a message is not JSON: %w", w.docID, err)
			}
			w.frame = frame
			if m.LSN != 0 {
				w.lsn = m.LSN
			}
			return m, nil
		}
		if ctx.Err() != nil {
			w.conn.Close(websocket.StatusNormalClosure, "bye")
			return api.Message{}, ctx.Err()
		}
		code := websocket.CloseStatus(err)
		switch {
		case code == websocket.StatusNormalClosure:
			return api.Message{}, io.EOF
		case w.opts.Resume && (code == -1 || code == websocket.StatusGoingAway || code == websocket.StatusTryAgainLater):
			if w.opts.Reconnecting != nil {
				w.opts.Reconnecting(w.lsn, err)
			}
			if err := w.redial(ctx); err != nil {
				return api.Message{}, err
			}
		case code == websocket.StatusGoingAway:
			return api.Message{}, io.EOF
		default:
			return api.Message{}, fmt.Errorf("client: watch %s: stream ended: %w", w.docID, err)
		}
	}
}

// redial reconnects after the last message returned, retrying with
// backoff until it connects, the server refuses for good (a 4xx answer)
// or ctx is done.
func (w *Watch) redial(ctx context.Context) error {
	w.conn.CloseNow()
	wait := 100 * time.Millisecond
	for {
		err := w.dial(ctx)
		if err == nil {
			return nil
		}
		var ae *apperr.Error
		if errors.As(err, &ae) && StatusCode(err) >= 400 && StatusCode(err) < 500 && ae.Code != apperr.RateLimited {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// Frame returns the JSON text of the message Next last returned, exactly
// as the server sent it.
func (w *Watch) Frame() []byte { return w.frame }

// LSN is the cursor to resume after the messages returned so far (give it
// as WatchOptions.Since to a later Watch).
func (w *Watch) LSN() uint64 { return w.lsn }

// Close ends the stream.
func (w *Watch) Close() error {
	return w.conn.Close(websocket.StatusNormalClosure, "bye")
}

// dialError is a failed WebSocket dial. The transport's message quotes the
// URL, token included; Error shows it with the token removed, so printing
// or logging the error never leaks it.
type dialError struct {
	msg string
	err error
}

func (e *dialError) Error() string { return e.msg }
func (e *dialError) Unwrap() error { return e.err }

// scrubToken replaces token, raw and query-escaped, in s.
func scrubToken(s, token string) string {
	if token == "" {
		return s
	}
	s = strings.ReplaceAll(s, url.QueryEscape(token), "REDACTED")
	return strings.ReplaceAll(s, token, "REDACTED")
}
