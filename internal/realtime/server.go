package realtime

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/validate"
)

// ServerConfig configures the HTTP side.
type ServerConfig struct {
	// Dev enables GET /auth/token (404 otherwise), the development issuer.
	Dev bool
	// OriginPatterns are the browser origins allowed to open a WebSocket
	// (coder/websocket's patterns). Empty: any origin — tokens travel in
	// the URL, a header or the subprotocol, never in cookies, so another
	// origin cannot ride on a user's session (no cross-site hijacking).
	OriginPatterns []string
	// Access is where a subscription is authorised in required mode
	// (access.go); nil there refuses every subscription with 503.
	Access DocumentAccess
	Log    *slog.Logger
}

// Server is the realtime HTTP service: WS /ws/{document_id}, WS /ws (the
// document list feed, list.go), GET /stats,
// GET /auth/token (development), health and metrics.
type Server struct {
	hub  *Hub
	auth *auth.Authenticator
	cfg  ServerConfig
	log  *slog.Logger
}

// NewServer returns the service over hub: its routes, health checks and
// metrics, behind a's middleware (the handshake's credential: header,
// "bearer" subprotocol or ?token=; nil a: every connection anonymous). Connections live until they end or the hub shuts
// down (Hub.Shutdown closes them with 1001 going away; Hub.Wait waits for
// them).
func NewServer(hub *Hub, a *auth.Authenticator, cfg ServerConfig) http.Handler {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{hub: hub, auth: a, cfg: cfg, log: cfg.Log}
	mux := http.NewServeMux()
	httpx.Handle(mux, nil, s, routeTable)
	var checks []httpx.Check
	if hub.opts.Bus != nil {
		checks = append(checks, httpx.Check{Name: "bus", Probe: hub.Ready, Critical: true})
	}
	httpx.Routes(mux, checks...)
	// /stats is counts only, open as before: operators' dashboards read it.
	return httpx.Wrap("realtime", s.log, a.Middleware(mux, "/stats"))
}

// routeTable is the API besides health and metrics. None is under
// admission control: a WebSocket holds its connection, not the CPU.
var routeTable = map[string]httpx.Route[*Server]{
	"GET /ws/{document_id}": {Handler: (*Server).handleWebSocket},
	"GET /ws":               {Handler: (*Server).handleListWebSocket},
	"GET /stats":            {Handler: (*Server).handleStats},
	"GET /auth/token":       {Handler: (*Server).handleToken},
}

// Routes lists the API's routes (http.ServeMux patterns, besides health
// and metrics), for the public client's test that each has a method.
func Routes() []string { return httpx.Patterns(routeTable) }

// handleWebSocket upgrades after checking the document id (400) and since
// (422); the middleware has checked the credential before (401 in required
// mode or for a bad one; anonymous in open mode), so a refused handshake
// says nothing about the document. In required mode the caller must then
// be allowed to view the document: 404 otherwise, as for one that does
// not exist (access.go).
func (s *Server) handleWebSocket() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		docID, err := validate.ID("document", r.PathValue("document_id"))
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		since, err := s.since(r)
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		v, err := s.authorize(r.Context(), auth.FromContext(r.Context()), docID)
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		s.serve(w, r, docID, since, v)
	})
}

// since reads ?since= (422 when it is not an LSN; 503 when there is no
// bus to replay from); nil when absent.
func (s *Server) since(r *http.Request) (*uint64, error) {
	var since *uint64
	q := httpx.NewQuery(r)
	if n, ok := q.LSN("since", q.Get("since")); ok {
		since = &n
	}
	if err := q.Err(); err != nil {
		return nil, err
	}
	if since != nil && s.hub.opts.Bus == nil {
		return nil, apperr.E(apperr.Unavailable, "replay (since) needs the event bus")
	}
	return since, nil
}

// serve upgrades an authorised handshake and runs the connection: docID
// names the document subscribed to, or "" for the list feed (list.go).
func (s *Server) serve(w http.ResponseWriter, r *http.Request, docID string, since *uint64, v viewer) {
	p := auth.FromContext(r.Context())
	cred, _ := auth.CredentialFrom(r.Context())
	opts := &websocket.AcceptOptions{
		OriginPatterns:     s.cfg.OriginPatterns,
		InsecureSkipVerify: len(s.cfg.OriginPatterns) == 0,
	}
	if cred.Subprotocol != "" {
		opts.Subprotocols = []string{cred.Subprotocol}
	}
	var ws *websocket.Conn
	var err error
	httpx.JSONErrors(w, r, func(w http.ResponseWriter) { ws, err = websocket.Accept(smallBuffers{w}, r, opts) })
	if err != nil {
		// Accept has answered (400 bad handshake, 403 origin, 426 not
		// an upgrade), in the one error shape through JSONErrors.
		s.log.DebugContext(r.Context(), "websocket accept failed", "err", err)
		return
	}
	s.hub.clients.Add(1) // Done when run returns, on its own goroutine
	c := newClient(s.hub, ws, docID, cred.Expires)
	c.viewer = v
	c.recheck = s.recheck(p, cred)
	if !s.hub.subscribe(c, since) {
		since = nil // nothing to replay
	}
	if v.restricted && docID != "" {
		// Again, now that the hub shows this client every event: a
		// revocation committed since the first check is either seen
		// here or dispatched to the client from now on. (The list feed
		// judges each event by the readers it carries: nothing to
		// re-check.)
		if _, err := s.authorize(r.Context(), p, docID); err != nil {
			why := closeRevoked
			if apperr.CodeOf(err) == apperr.Unavailable {
				why = closeCode{code: websocket.StatusTryAgainLater, reason: "access cannot be checked"}
			}
			c.kick(why)
		}
	}
	s.log.DebugContext(r.Context(), "websocket connected", "document_id", c.doc, "principal", p.Key(), "since", since)
	// The connection runs on its own goroutine and the handler returns:
	// net/http then lets go of everything it kept for the request (its
	// goroutine and stack, its connection state and 4 KiB read and write
	// buffers, which smallBuffers replaced), which an idle subscriber
	// would otherwise hold for hours. The request's context ends when the
	// handler returns, so the connection keeps its values only; the hub's
	// shutdown (and Wait, through clients) governs its end.
	go func() {
		defer s.hub.clients.Done()
		c.run(context.WithoutCancel(r.Context()), since)
	}()
}

// Buffer sizes of a WebSocket connection. Events are written as one frame
// each, most smaller than wsWriteBuffer (a larger one is written through);
// a client only ever sends pings, so reads are small.
const (
	wsReadBuffer  = 512
	wsWriteBuffer = 1024
)

// smallBuffers hands websocket.Accept the hijacked connection with buffers
// of its own sizes instead of net/http's 4 KiB pair, the largest share of
// an idle connection's memory.
type smallBuffers struct{ http.ResponseWriter }

func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Bytes the client sent right after its handshake (a ping) may already
	// be in net/http's reader. They must be in the new reader's buffer, not
	// behind it: Accept takes what is buffered and reads the rest from
	// conn itself.
	early, _ := brw.Reader.Peek(brw.Reader.Buffered()) // no more than buffered: cannot fail
	early = bytes.Clone(early)
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(early), conn), max(wsReadBuffer, len(early)))
	if _, err := br.Peek(len(early)); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, wsWriteBuffer)), nil
}

// recheck is how a connection of p's verifies its credential again while
// it is open: an API key can be revoked (a JWT cannot: its connection ends
// when it expires), so a key's connection asks the authenticator again
// (client.recheck). Nil for everyone else.
func (s *Server) recheck(p auth.Principal, cred auth.Credential) func(context.Context) error {
	if p.Kind != auth.KindAPIKey || s.auth == nil || cred.Raw == "" {
		return nil
	}
	raw := cred.Raw
	return func(ctx context.Context) error {
		_, err := s.auth.Authenticate(ctx, raw)
		return err
	}
}

func (s *Server) handleStats() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Counts only: /stats is unauthenticated, and the ids of watched
		// documents would tell anyone what others are working on.
		httpx.Respond(w, http.StatusOK, s.hub.Stats(0))
	})
}

// handleToken issues a token for anyone who asks: development only.
func (s *Server) handleToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.Dev {
			httpx.RespondErr(w, r, s.log, apperr.E(apperr.NotFound, "not found"))
			return
		}
		q := r.URL.Query()
		// sub is the subject; user_id is the reference's name for it.
		sub := q.Get("sub")
		if sub == "" {
			sub = q.Get("user_id")
		}
		email, name := q.Get("email"), q.Get("name")
		var fields []apperr.FieldError
		if sub == "" {
			fields = append(fields, apperr.FieldError{Field: "user_id", Message: "is required (or sub)"})
		} else if len(sub) > 255 {
			fields = append(fields, apperr.FieldError{Field: "user_id", Message: "must be at most 255 characters"})
		}
		if email != "" {
			if msg := validate.Email(email); msg != "" {
				fields = append(fields, apperr.FieldError{Field: "email", Message: msg})
			}
		}
		if len(name) > 255 {
			fields = append(fields, apperr.FieldError{Field: "name", Message: "must be at most 255 characters"})
		}
		var groups []string
		for _, g := range strings.Split(q.Get("groups"), ",") {
			if g = strings.TrimSpace(g); g != "" {
				groups = append(groups, g)
			}
		}
		admin := false
		switch v := q.Get("admin"); v {
		case "", "false":
		case "true":
			admin = true
		default:
			fields = append(fields, apperr.FieldError{Field: "admin", Message: "must be true or false"})
		}
		if err := apperr.Fields(fields...); err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		tok, exp, err := s.auth.IssueToken(auth.TokenRequest{Subject: sub, Email: email, EmailVerified: email != "",
			Name: name, Groups: groups, Admin: admin}, time.Now())
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		httpx.Respond(w, http.StatusOK, api.Token{
			AccessToken: tok, TokenType: "bearer", UserID: sub, Email: email, ExpiresAt: exp,
			Name: name, Groups: groups, Admin: admin,
		})
	})
}
