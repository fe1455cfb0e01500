package realtime

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/testenv"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/logging"
)

// testServer is a realtime server on a loopback port.
type testServer struct {
	url  string // http://127.0.0.1:port
	hub  *Hub
	auth *auth.Authenticator
}

type serverOpts struct {
	hub Options
	cfg ServerConfig
	// open runs the server in open mode (anonymous connections allowed);
	// the default is required.
	open bool
	// sendBuffer, if set, shrinks the kernel send buffer of accepted
	// connections so a client that stops reading fills it quickly.
	sendBuffer int
	// keys verifies API keys (nil: refused).
	keys auth.KeyVerifier
	// wrap, if set, wraps the server's handler.
	wrap func(http.Handler) http.Handler
}

func startServer(t testing.TB, o serverOpts) *testServer {
	t.Helper()
	ac := auth.DefaultConfig()
	ac.JWTSecret = string(testSecret)
	if o.open {
		ac.Mode = string(auth.ModeOpen)
	}
	authn, err := auth.New(context.Background(), ac, o.keys)
	if err != nil {
		t.Fatal(err)
	}
	if !o.open && o.cfg.Access == nil {
		// Required mode authorises subscriptions: every document exists
		// and the tests' own user (s.token's u1) may view it.
		o.cfg.Access = fakeAccess{def: []string{"user:u1"}}
	}
	o.hub = withDefaults(o.hub)
	o.hub.Log = logging.Discard()
	hub := NewHub(o.hub)
	o.cfg.Log = logging.Discard()
	srv := NewServer(hub, authn, o.cfg)
	ctx, cancel := context.WithCancel(context.Background())
	var ln net.Listener
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.sendBuffer > 0 {
		ln = smallBufferListener{ln, o.sendBuffer}
	}
	done := make(chan error, 1)
	scfg := httpx.DefaultServerConfig()
	scfg.ShutdownDrain = 0 // as the realtime module serves (see startRealtime)
	var h http.Handler = srv
	if o.wrap != nil {
		h = o.wrap(h)
	}
	go func() { done <- httpx.Serve(ctx, ln, h, logging.Discard(), scfg) }()
	go func() { _ = hub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		hub.Wait()
	})
	return &testServer{url: "http://" + ln.Addr().String(), hub: hub, auth: authn}
}

// withDefaults fills the options a test leaves zero from the defaults.
func withDefaults(o Options) Options {
	d := DefaultConfig().Hub
	o.QueueSize = cmp.Or(o.QueueSize, d.QueueSize)
	o.WriteTimeout = cmp.Or(o.WriteTimeout, d.WriteTimeout)
	o.PingInterval = cmp.Or(o.PingInterval, d.PingInterval)
	o.PongTimeout = cmp.Or(o.PongTimeout, d.PongTimeout)
	o.ReadLimit = cmp.Or(o.ReadLimit, d.ReadLimit)
	return o
}

type smallBufferListener struct {
	net.Listener
	size int
}

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(l.size)
	}
	return c, err
}

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func hsToken(t *testing.T, secret []byte, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"user_id": "u1", "email": "u1@example.com", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
}

func (s *testServer) token(t testing.TB) string {
	t.Helper()
	tok, _, err := s.auth.IssueToken(auth.TokenRequest{Subject: "u1", Email: "u1@example.com"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *testServer) wsURL(doc, query string) string {
	u := "ws" + strings.TrimPrefix(s.url, "http") + "/ws/" + doc
	if query != "" {
		u += "?" + query
	}
	return u
}

// dial connects with a token in the query; readBuffer > 0 shrinks the
// client's kernel receive buffer.
func (s *testServer) dial(t testing.TB, doc, query string, readBuffer int) *websocket.Conn {
	t.Helper()
	q := "token=" + s.token(t)
	if query != "" {
		q += "&" + query
	}
	opts := &websocket.DialOptions{}
	if readBuffer > 0 {
		opts.HTTPClient = smallReadClient(readBuffer)
	}
	c, _, err := websocket.Dial(context.Background(), s.wsURL(doc, q), opts)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// smallReadClient dials with the kernel receive buffer shrunk to size.
func smallReadClient(size int) *http.Client {
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
		c, err := d.DialContext(ctx, n, a)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(size)
		}
		return c, err
	}}}
}

type wireMessage struct {
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	Timestamp string          `json:"timestamp"`
	LSN       uint64          `json:"lsn"`
}

func readMsg(t testing.TB, c *websocket.Conn) wireMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m wireMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("message %s: %v", b, err)
	}
	return m
}

// titleEvent is a document.updated event for doc at position/LSN n.
func titleEvent(t testing.TB, doc string, n uint64) Event {
	t.Helper()
	ev, err := Decode(envelopeMsg(bus.TopicDocuments, "u", docRow(doc, fmt.Sprint("title ", n-1), "created", int(n)),
		docRow(doc, fmt.Sprint("title ", n), "created", int(n)+1), n, n))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestHandshakeIsRefusedBeforeUpgrade(t *testing.T) {
	s := startServer(t, serverOpts{})
	doc := uuid.NewString()
	expired := hsToken(t, testSecret, jwt.MapClaims{"user_id": "u1", "exp": time.Now().Add(-time.Hour).Unix()})
	wrongKey := hsToken(t, []byte("not-the-secret-not-the-secret-xx"), validClaims())
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	cases := []struct {
		name   string
		doc    string
		query  string
		header http.Header
		status int
	}{
		{"no token", doc, "", nil, http.StatusUnauthorized},
		{"an expired token", doc, "token=" + expired, nil, http.StatusUnauthorized},
		{"a token signed with the wrong key", doc, "token=" + wrongKey, nil, http.StatusUnauthorized},
		{"an alg none token", doc, "token=" + none, nil, http.StatusUnauthorized},
		{"a bad bearer header", doc, "", http.Header{"Authorization": {"Bearer " + wrongKey}}, http.StatusUnauthorized},
		{"a document id that is not a UUID", "not-a-uuid", "token=" + s.token(t), nil, http.StatusBadRequest},
		{"a since that is not an LSN", doc, "token=" + s.token(t) + "&since=abc", nil, http.StatusUnprocessableEntity},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, s.wsURL(tc.doc, tc.query), &websocket.DialOptions{HTTPHeader: tc.header})
			if err == nil {
				_ = c.CloseNow()
				t.Fatal("upgraded")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("response %v, want %d (err %v)", resp, tc.status, err)
			}
			body, _ := io.ReadAll(resp.Body)
			if strings.Contains(string(body), doc) {
				t.Fatalf("refusal mentions the document: %s", body)
			}
			if !strings.Contains(string(body), `"error"`) {
				t.Fatalf("body %s", body)
			}
		})
	}
	if n := s.hub.Connections(); n != 0 {
		t.Fatalf("%d connections after refusals", n)
	}
}

// In open mode (the reference's, dev's default) a WebSocket without a token
// connects as anonymous; a token that is presented is still verified.
func TestOpenModeAllowsAnonymousButNotABadToken(t *testing.T) {
	s := startServer(t, serverOpts{open: true})
	doc := uuid.NewString()
	c, _, err := websocket.Dial(t.Context(), s.wsURL(doc, ""), nil)
	if err != nil {
		t.Fatalf("anonymous connection refused in open mode: %v", err)
	}
	defer c.CloseNow()
	testenv.WaitFor(t, "subscriber", func() bool { return s.hub.Connections() == 1 })
	wrongKey := hsToken(t, []byte("not-the-secret-not-the-secret-xx"), validClaims())
	c2, resp, err := websocket.Dial(t.Context(), s.wsURL(doc, "token="+wrongKey), nil)
	if err == nil {
		_ = c2.CloseNow()
		t.Fatal("a bad token was accepted in open mode")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
		t.Fatalf("response %v, want 401 with the challenge", resp)
	}
}

// What websocket.Accept refuses comes in the one error shape too.
func TestAHandshakeTheWebSocketLibraryRefusesIsTheJSONError(t *testing.T) {
	s := startServer(t, serverOpts{cfg: ServerConfig{OriginPatterns: []string{"app.example.com"}}})
	url := s.url + "/ws/" + uuid.NewString() + "?token=" + s.token(t)
	cases := []struct {
		name   string
		header []string
		status int
		code   apperr.Code
	}{
		// (A query token counts on a handshake only, so the plain GET
		// carries its token in the header.)
		{"a plain GET without the upgrade", []string{"Authorization", "Bearer " + s.token(t)}, http.StatusUpgradeRequired, apperr.UpgradeRequired},
		{"an upgrade from a foreign origin", []string{"Connection", "Upgrade", "Upgrade", "websocket",
			"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Origin", "https://evil.example"},
			http.StatusForbidden, apperr.Forbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var er apperr.Body
			resp := testenv.Do(t, "GET", url, nil, &er, c.header...)
			if resp.StatusCode != c.status || er.Error.Code != c.code || er.Error.Message == "" ||
				resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, er.Error, c.status, c.code)
			}
		})
	}
}

func TestTokenInSubprotocolIsAcceptedAndBearerEchoed(t *testing.T) {
	s := startServer(t, serverOpts{})
	doc := uuid.NewString()
	c, _, err := websocket.Dial(t.Context(), s.wsURL(doc, ""), &websocket.DialOptions{Subprotocols: []string{"bearer", s.token(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != auth.SubprotocolBearer {
		t.Fatalf("selected subprotocol %q", c.Subprotocol())
	}
	// And the Authorization header works from non-browser clients.
	c2, _, err := websocket.Dial(t.Context(), s.wsURL(doc, ""), &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + s.token(t)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	testenv.WaitFor(t, "two subscribers", func() bool { return s.hub.Connections() == 2 })
	s.hub.Dispatch(titleEvent(t, doc, 5))
	for _, c := range []*websocket.Conn{c, c2} {
		if m := readMsg(t, c); m.Type != TypeDocumentUpdated || m.LSN != 5 {
			t.Fatalf("message %+v", m)
		}
	}
}

func TestEventsReachOnlyTheirDocument(t *testing.T) {
	s := startServer(t, serverOpts{})
	a, b := uuid.NewString(), uuid.NewString()
	ca := s.dial(t, a, "", 0)
	cb := s.dial(t, b, "", 0)
	testenv.WaitFor(t, "subscribers", func() bool { return s.hub.Connections() == 2 })
	s.hub.Dispatch(titleEvent(t, a, 1))
	s.hub.Dispatch(titleEvent(t, b, 2))
	if m := readMsg(t, ca); m.LSN != 1 {
		t.Fatalf("a got %+v", m)
	}
	if m := readMsg(t, cb); m.LSN != 2 {
		t.Fatalf("b got %+v", m)
	}
	st := s.hub.Stats(10)
	if st.TotalConnections != 2 || st.DocumentsWithSubscribers != 2 || st.Documents[a] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestClientPingGetsPong(t *testing.T) {
	s := startServer(t, serverOpts{})
	c := s.dial(t, uuid.NewString(), "", 0)
	if err := c.Write(t.Context(), websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	if m := readMsg(t, c); m.Type != "pong" {
		t.Fatalf("got %+v", m)
	}
}

// A client that never reads fills its socket, then its queue, and is cut
// off; a normal client of the same document gets every event meanwhile.
//
// The cut-off does not interrupt the write blocked in the slow client's full
// socket: its connection is closed when that write times out. So the write
// timeout is short, for the close to come well inside the slow client's
// 20 s read wait (with a minute it never did), and longer than the few
// round trips of the normal client between the slow one's socket filling
// and its queue overflowing, so the cut-off is the queue's.
// dispatchUntilCutOff dispatches title events to doc, reading each on
// normal, until one of doc's two subscribers (the one that never reads) is
// cut off, and returns the last event's LSN.
func dispatchUntilCutOff(t *testing.T, s *testServer, doc string, normal *websocket.Conn) uint64 {
	t.Helper()
	var n uint64
	for s.hub.Connections() == 2 {
		n++
		if n > 100000 {
			t.Fatal("the slow client was never cut off")
		}
		s.hub.Dispatch(titleEvent(t, doc, n))
		if m := readMsg(t, normal); m.LSN != n {
			t.Fatalf("normal client got lsn %d, want %d", m.LSN, n)
		}
	}
	return n
}

func TestSlowClientIsCutOffWhileOthersKeepReceiving(t *testing.T) {
	s := startServer(t, serverOpts{hub: Options{QueueSize: 8, WriteTimeout: 5 * time.Second}, sendBuffer: 4096})
	doc := uuid.NewString()
	slow := s.dial(t, doc, "", 4096)
	normal := s.dial(t, doc, "", 0)
	testenv.WaitFor(t, "subscribers", func() bool { return s.hub.Connections() == 2 })
	drops := testutil.ToFloat64(queueDrops)

	n := dispatchUntilCutOff(t, s, doc, normal)
	if got := testutil.ToFloat64(queueDrops) - drops; got != 1 {
		t.Fatalf("queue drops %v, want 1", got)
	}
	// The normal client keeps receiving after the cut.
	for range 20 {
		n++
		s.hub.Dispatch(titleEvent(t, doc, n))
		if m := readMsg(t, normal); m.LSN != n {
			t.Fatalf("normal client got lsn %d, want %d", m.LSN, n)
		}
	}
	// The slow client finds its connection closed once it reads what was
	// buffered for it; it got only a prefix of the events.
	var got uint64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, b, err := slow.Read(ctx)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("slow client's connection was not closed")
			}
			break
		}
		var m wireMessage
		_ = json.Unmarshal(b, &m)
		if m.LSN != got+1 {
			t.Fatalf("slow client got lsn %d after %d", m.LSN, got)
		}
		got = m.LSN
	}
	if got >= n {
		t.Fatalf("slow client got all %d events", got)
	}
}

// When the queue overflows while the socket still has room, the close
// frame gets through: the client sees 1013 after what was queued.
func TestQueueOverflowClosesWith1013(t *testing.T) {
	s := startServer(t, serverOpts{hub: Options{QueueSize: 2}})
	doc := uuid.NewString()
	c := s.dial(t, doc, "", 0)
	testenv.WaitFor(t, "subscriber", func() bool { return s.hub.Connections() == 1 })
	// A burst far larger than the queue, until the slow client is cut off
	// (a writer that keeps up with a few hundred events on an idle
	// machine cannot with thousands; bounded in count all the same).
	for n := uint64(1); n <= 200_000 && s.hub.Connections() == 1; n++ {
		s.hub.Dispatch(titleEvent(t, doc, n))
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, _, err := c.Read(ctx)
		cancel()
		if err != nil {
			if code := websocket.CloseStatus(err); code != websocket.StatusTryAgainLater {
				t.Fatalf("closed with %v (%v), want 1013", code, err)
			}
			return
		}
	}
}

func TestDeadConnectionIsReaped(t *testing.T) {
	s := startServer(t, serverOpts{hub: Options{PingInterval: 20 * time.Millisecond, PongTimeout: 50 * time.Millisecond}})
	// A client that never reads never answers pings.
	_ = s.dial(t, uuid.NewString(), "", 0)
	testenv.WaitFor(t, "subscriber", func() bool { return s.hub.Connections() == 1 })
	testenv.WaitFor(t, "the dead connection to be reaped", func() bool { return s.hub.Connections() == 0 })

	// One that reads answers them and stays.
	live := s.dial(t, uuid.NewString(), "", 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	readErr := make(chan error, 1)
	go func() { _, _, err := live.Read(ctx); readErr <- err }()
	before := testutil.ToFloat64(reaped)
	time.Sleep(300 * time.Millisecond) // many ping intervals
	if s.hub.Connections() != 1 || testutil.ToFloat64(reaped) != before {
		t.Fatal("a responsive connection was reaped")
	}
}

func TestConnectionClosesWith1008WhenTokenExpires(t *testing.T) {
	s := startServer(t, serverOpts{})
	tok := hsToken(t, testSecret, jwt.MapClaims{"user_id": "u1", "exp": time.Now().Add(1500 * time.Millisecond).Unix()})
	c, _, err := websocket.Dial(t.Context(), s.wsURL(uuid.NewString(), "token="+tok), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, err = c.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusPolicyViolation {
		t.Fatalf("closed with %v (%v), want 1008", code, err)
	}
}

func TestTokenEndpointOnlyInDevelopment(t *testing.T) {
	prod := startServer(t, serverOpts{})
	resp, err := http.Get(prod.url + "/auth/token?user_id=u1&email=u1@example.com")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("production: %d, want 404", resp.StatusCode)
	}

	dev := startServer(t, serverOpts{cfg: ServerConfig{Dev: true}})
	cases := []struct {
		name   string
		query  string
		status int
		field  string
	}{
		{"user and email get a token", "user_id=u1&email=u1@example.com", http.StatusOK, ""},
		{"a missing user_id is named", "email=u1@example.com", http.StatusUnprocessableEntity, "user_id"},
		{"a bad email is named", "user_id=u1&email=nope", http.StatusUnprocessableEntity, "email"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(dev.url + "/auth/token?" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if tc.field != "" {
				if !strings.Contains(string(body), `"field":"`+tc.field+`"`) {
					t.Fatalf("body %s does not name %s", body, tc.field)
				}
				return
			}
			var tr api.Token
			if err := json.Unmarshal(body, &tr); err != nil {
				t.Fatal(err)
			}
			if tr.TokenType != "bearer" || tr.UserID != "u1" || tr.Email != "u1@example.com" {
				t.Fatalf("response %+v", tr)
			}
			if d := time.Until(tr.ExpiresAt); d < 23*time.Hour || d > 25*time.Hour {
				t.Fatalf("expires in %v, want 24h", d)
			}
			// The token opens a WebSocket.
			c, _, err := websocket.Dial(t.Context(), dev.wsURL(uuid.NewString(), "token="+tr.AccessToken), nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.CloseNow()
		})
	}
}

func TestStatsEndpoint(t *testing.T) {
	s := startServer(t, serverOpts{})
	doc := uuid.NewString()
	_ = s.dial(t, doc, "", 0)
	testenv.WaitFor(t, "subscriber", func() bool { return s.hub.Connections() == 1 })
	resp, err := http.Get(s.url + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var st Stats
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	if st.TotalConnections != 1 || st.DocumentsWithSubscribers != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Issue 11 §9: unauthenticated, so counts only: which documents are
	// being watched is not anyone's business until an admin view exists.
	if strings.Contains(string(raw), doc) || st.Documents != nil {
		t.Fatalf("/stats lists watched document ids: %s", raw)
	}
	if c := st.Consumer; c.State != "idle" || len(c.Topics) != 4 || c.Topics[0] != bus.TopicDocuments || c.Topics[1] != bus.TopicSignatures ||
		c.Topics[2] != bus.TopicSigningRequests || c.Topics[3] != bus.TopicSigningRecipients {
		t.Fatalf("consumer state %+v, want idle (not started) over the four topics", c)
	}
}

// scriptedBus delivers msgs to the first broadcast once release is closed.
type scriptedBus struct {
	bus.Bus // nil: only Broadcast and Ping are used
	msgs    []bus.Message
	release chan struct{}
}

func (s *scriptedBus) Broadcast(ctx context.Context, _ string, _ bus.Start, h bus.Handler) error {
	select {
	case <-s.release:
		if err := h(ctx, s.msgs); err != nil {
			return err
		}
	case <-ctx.Done():
	}
	<-ctx.Done()
	return nil
}

func (s *scriptedBus) Ping(context.Context) error { return nil }

func TestAChangePublishedAgainReachesClientsOnce(t *testing.T) {
	const doc, other = "0691e72f-799b-7efd-8000-e5c4e1cb7813", "0691e72f-799b-7efd-8000-e5c4e1cb7814"
	ev := func(doc string, lsn, pos uint64) bus.Message {
		return envelopeMsg(bus.TopicDocuments, "u", docRow(doc, "old", "created", 1), docRow(doc, fmt.Sprint("title ", lsn), "created", 2), lsn, pos)
	}
	sb := &scriptedBus{release: make(chan struct{}), msgs: []bus.Message{
		ev(doc, 100, 1), ev(other, 200, 2),
		ev(doc, 100, 3), ev(other, 200, 4), // the CDC engine published both again
		ev(doc, 300, 5),
	}}
	s := startServer(t, serverOpts{hub: Options{Bus: sb}})
	c := s.dial(t, doc, "", 0)
	testenv.WaitFor(t, "client subscribed", func() bool { return s.hub.Connections() == 1 })
	close(sb.release)
	for _, want := range []uint64{100, 300} {
		if m := readMsg(t, c); m.LSN != want {
			t.Fatalf("got the message of lsn %d, want %d (a repeat reached the client)", m.LSN, want)
		}
	}
}

// The upgrade handler returns once the connection is subscribed, so that
// an idle subscriber holds no net/http state (goroutine, buffers, request):
// the connection then lives on and still gets events, pongs and a close.
func TestTheHandlerReturnsWhileTheConnectionLivesOn(t *testing.T) {
	var returned atomic.Int32
	s := startServer(t, serverOpts{wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r)
			if strings.HasPrefix(r.URL.Path, "/ws/") {
				returned.Add(1)
			}
		})
	}})
	doc := uuid.NewString()
	c := s.dial(t, doc, "", 0)
	testenv.WaitFor(t, "the upgrade handler to return", func() bool { return returned.Load() == 1 })
	s.hub.Dispatch(titleEvent(t, doc, 1))
	if m := readMsg(t, c); m.LSN != 1 {
		t.Fatalf("after the handler returned: got %+v", m)
	}
	if err := c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	if m := readMsg(t, c); m.Type != "pong" {
		t.Fatalf("ping answered with %+v", m)
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
	testenv.WaitFor(t, "the hub to forget the connection", func() bool { return s.hub.Connections() == 0 })
}

// An idle connection costs one goroutine, its reader: no writer waits for
// frames (one starts when there are some) and pings, expiry and shutdown
// are timers. Frames, pongs and the shutdown's 1001 still arrive.
func TestAnIdleConnectionHasOneGoroutine(t *testing.T) {
	// No pings during the test: these clients do not read, so pongs would
	// go unanswered and the server would reap them (and their goroutines).
	s := startServer(t, serverOpts{hub: Options{PingInterval: time.Hour}})
	doc := uuid.NewString()
	const n = 50
	before := runtime.NumGoroutine()
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = s.dial(t, doc, "", 0)
	}
	testenv.WaitFor(t, "the subscribers", func() bool { return s.hub.Connections() == n })
	var got int
	testenv.WaitFor(t, "one goroutine per connection", func() bool {
		got = runtime.NumGoroutine() - before
		return got <= n+5
	})
	s.hub.Dispatch(titleEvent(t, doc, 1))
	for _, c := range conns {
		if m := readMsg(t, c); m.LSN != 1 {
			t.Fatalf("got %+v", m)
		}
	}
	s.hub.Shutdown()
	for _, c := range conns {
		_, _, err := c.Read(t.Context())
		if websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Fatalf("after Shutdown: %v; want 1001", err)
		}
	}
}
