package signature

import (
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"path"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/validate"
)

// Server is the signature service's HTTP API.
type Server struct {
	svc     *Service
	wf      *Workflow // nil: signing requests answer 503
	log     *slog.Logger
	trusted []netip.Prefix // proxies whose X-Forwarded-For is believed
	adm     *httpx.Admission
}

// NewServer returns the HTTP API over svc with its health checks and
// metrics. X-Forwarded-For is trusted only from cfg.TrustedProxies (the
// gateway); cfg.Admission bounds the requests in flight per route class.
func NewServer(svc *Service, cfg Config, log *slog.Logger) http.Handler {
	s := &Server{svc: svc, wf: cfg.Workflow, log: log, trusted: cfg.TrustedProxies, adm: cfg.Admission}
	// Invitation links carry their own credential (the token): a recipient
	// without an account follows them.
	return httpx.Wrap("signature", s.log, cfg.Auth.Middleware(s.routes(), "/invitations/"))
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	httpx.Handle(mux, s.adm, s, routeTable)
	httpx.Routes(mux,
		httpx.Check{Name: "postgres", Probe: s.svc.store.Ping},
		httpx.Check{Name: "blob", Probe: s.svc.blobs.Ping},
		// Signing works while the document service is down (the status
		// update waits in the outbox): reported, never a 503.
		httpx.Check{Name: "document-grpc", Probe: s.svc.PingDocuments},
	)
	return mux
}

// routeTable is the REST API besides health and metrics.
var routeTable = map[string]httpx.Route[*Server]{
	"POST /signatures":               {Class: httpx.Write, Handler: (*Server).handleCreate},
	"GET /signatures":                {Class: httpx.Read, Handler: (*Server).handleList},
	"GET /signatures/{id}":           {Class: httpx.Read, Handler: (*Server).handleGet},
	"GET /documents/{id}/signatures": {Class: httpx.Read, Handler: (*Server).handleListByDocument},

	// Signing requests (workflow.go).
	"POST /documents/{id}/signing-requests":   {Class: httpx.Write, Handler: (*Server).handleCreateRequest},
	"GET /documents/{id}/signing-requests":    {Class: httpx.Read, Handler: (*Server).handleListRequests},
	"GET /signing-requests/{rid}":             {Class: httpx.Read, Handler: (*Server).handleGetRequest},
	"POST /signing-requests/{rid}/send":       {Class: httpx.Write, Handler: (*Server).handleRequestOp},
	"POST /signing-requests/{rid}/cancel":     {Class: httpx.Write, Handler: (*Server).handleRequestOp},
	"POST /signing-requests/{rid}/resend":     {Class: httpx.Write, Handler: (*Server).handleRequestOp},
	"GET /signing-requests/{rid}/certificate": {Class: httpx.Read, Handler: (*Server).handleCertificate},
	// A signed-in recipient (verified email) views and acts without a token.
	"GET /signing-requests/{rid}/invitation": {Class: httpx.Read, Handler: (*Server).handleViewAsPrincipal},
	"POST /signing-requests/{rid}/{action}":  {Class: httpx.Write, Handler: (*Server).handleActAsPrincipal},
	// Invitation links: open routes, the token is the credential.
	"GET /invitations/{token}":           {Class: httpx.Read, Handler: (*Server).handleViewInvitation},
	"GET /invitations/{token}/content":   {Handler: (*Server).handleInvitationContent},
	"POST /invitations/{token}/{action}": {Class: httpx.Write, Handler: (*Server).handleAct},
}

// Routes lists the REST API's routes (http.ServeMux patterns, besides
// health and metrics), for the public client's test that each has a method.
func Routes() []string { return httpx.Patterns(routeTable) }

func (s *Server) handleCreate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Before the body: a bad key is refused without reading it.
		key, err := httpx.IdempotencyKey(r)
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		req, err := httpx.Decode[CreateRequest](w, r, maxBody)
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		// The signer is the caller: fill or refuse signer_email and
		// signer_name first.
		if req.SignerEmail, err = s.svc.Signer(r.Context(), req.SignerEmail); err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		if req.SignerName, err = s.svc.SignerName(r.Context(), req.SignerName); err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		in, err := req.Validate()
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		in.IPAddress = httpx.ClientIP(r, s.trusted)
		in.IdempotencyKey = key
		// The signature's audit entry records where it came from.
		sig, replayed, err := s.svc.Create(audit.WithClient(r.Context(), in.IPAddress, r.UserAgent()), in)
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		if replayed {
			w.Header().Set(api.IdempotentReplayedHeader, "true")
		}
		httpx.SetCommitLSN(w, postgres.WALPosition(r.Context(), s.svc.store.pool))
		httpx.Respond(w, http.StatusCreated, sig)
	})
}

func (s *Server) handleList() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := httpx.NewQuery(r)
		skip, limit := q.Page()
		if err := q.Err(); err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		sigs, err := s.svc.List(r.Context(), skip, limit)
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		httpx.Respond(w, http.StatusOK, sigs)
	})
}

func (s *Server) handleGet() http.Handler {
	return s.withID("id", "signature", func(w http.ResponseWriter, r *http.Request, id string) error {
		sig, err := s.svc.Get(r.Context(), id)
		return reply(w, http.StatusOK, sig, err)
	})
}

func (s *Server) handleListByDocument() http.Handler {
	return s.withID("id", "document", func(w http.ResponseWriter, r *http.Request, id string) error {
		sigs, err := s.svc.ListByDocument(r.Context(), id)
		return reply(w, http.StatusOK, sigs, err)
	})
}

// idHandler serves a route once its path value is read; an error it
// returns is answered in the one error shape.
type idHandler func(w http.ResponseWriter, r *http.Request, id string) error

// withID is the prelude every route of one resource shares: the path value
// param, checked as the id of noun (taken as it is when noun is "": an
// invitation token, which resolve checks), then h; h's error is answered.
func (s *Server) withID(param, noun string, h idHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue(param)
		if noun != "" {
			var err error
			if id, err = validate.ID(noun, id); err != nil {
				httpx.RespondErr(w, r, s.log, err)
				return
			}
		}
		if err := h(w, r, id); err != nil {
			httpx.RespondErr(w, r, s.log, err)
		}
	})
}

// withWorkflow is withID for the signing-request and invitation routes:
// they answer 503 before anything else when the instance has no workflow.
func (s *Server) withWorkflow(param, noun string, h func(w http.ResponseWriter, r *http.Request, wf *Workflow, id string) error) http.Handler {
	next := s.withID(param, noun, func(w http.ResponseWriter, r *http.Request, id string) error { return h(w, r, s.wf, id) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.wf == nil {
			httpx.RespondErr(w, r, s.log, apperr.E(apperr.Unavailable, "signing requests are not configured on this instance"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// reply answers v with status, or returns err for the caller to answer.
func reply(w http.ResponseWriter, status int, v any, err error) error {
	if err != nil {
		return err
	}
	httpx.Respond(w, status, v)
	return nil
}

// replyWritten is reply for a route that changed state: it also sends
// X-Commit-LSN (as the document routes do), read after the change
// committed, so a search with it as min_lsn sees what the change did to
// the index (a recipient's share, the readers the request rewrote, the
// document status the POST /signatures shortcut applied inline). The
// document status a signing request moves the document to is a job that
// runs after the answer, so this position does not cover it.
func (s *Server) replyWritten(w http.ResponseWriter, r *http.Request, status int, v any, err error) error {
	if err != nil {
		return err
	}
	httpx.SetCommitLSN(w, postgres.WALPosition(r.Context(), s.svc.store.pool))
	httpx.Respond(w, status, v)
	return nil
}

// meta is who is asking, as this request shows it.
func (s *Server) meta(r *http.Request) Meta {
	ua := r.UserAgent()
	if len(ua) > 1000 {
		ua = ua[:1000]
	}
	return Meta{IP: httpx.ClientIP(r, s.trusted), UserAgent: ua}
}

// action reads the {action} path value and the action's body.
func action(w http.ResponseWriter, r *http.Request, valid string) (Action, api.InvitationAction, error) {
	a, ok := ParseAction(r.PathValue("action"))
	if !ok {
		return "", api.InvitationAction{}, apperr.E(apperr.NotFound, "no such action %q: %s", r.PathValue("action"), valid)
	}
	body, err := httpx.Decode[api.InvitationAction](w, r, maxActionBody)
	return a, body, err
}

func (s *Server) handleCreateRequest() http.Handler {
	return s.withWorkflow("id", "document", func(w http.ResponseWriter, r *http.Request, wf *Workflow, id string) error {
		body, err := httpx.Decode[api.CreateSigningRequest](w, r, maxRequestBody)
		if err != nil {
			return err
		}
		out, err := wf.Create(r.Context(), id, body, s.meta(r))
		return s.replyWritten(w, r, http.StatusCreated, out, err)
	})
}

func (s *Server) handleListRequests() http.Handler {
	return s.withWorkflow("id", "document", func(w http.ResponseWriter, r *http.Request, wf *Workflow, id string) error {
		out, err := wf.ListByDocument(r.Context(), id)
		return reply(w, http.StatusOK, out, err)
	})
}

func (s *Server) handleGetRequest() http.Handler {
	return s.withWorkflow("rid", "signing request", func(w http.ResponseWriter, r *http.Request, wf *Workflow, id string) error {
		out, err := wf.Get(r.Context(), id)
		return reply(w, http.StatusOK, out, err)
	})
}

// handleRequestOp is send, cancel and resend: the last path segment.
func (s *Server) handleRequestOp() http.Handler {
	return s.withWorkflow("rid", "signing request", func(w http.ResponseWriter, r *http.Request, wf *Workflow, id string) error {
		op := wf.Send
		switch path.Base(r.URL.Path) {
		case "cancel":
			op = wf.Cancel
		case "resend":
			op = wf.Resend
		}
		out, err := op(r.Context(), id, s.meta(r))
		return s.replyWritten(w, r, http.StatusOK, out, err)
	})
}

func (s *Server) handleCertificate() http.Handler {
	return s.withWorkflow("rid", "signing request", func(w http.ResponseWriter, r *http.Request, wf *Workflow, id string) error {
		rd, err := wf.Certificate(r.Context(), id)
		if err != nil {
			return err
		}
		defer rd.Close()
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Content-Disposition", `attachment; filename="certificate-`+id+`.pdf"`)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = io.Copy(w, rd)
		return nil
	})
}

func (s *Server) handleViewAsPrincipal() http.Handler {
	return s.withWorkflow("rid", "signing request", func(w http.ResponseWriter, r *http.Request, wf *Workflow, id string) error {
		out, err := wf.ViewAsPrincipal(r.Context(), id, s.meta(r))
		return s.replyWritten(w, r, http.StatusOK, out, err)
	})
}

func (s *Server) handleActAsPrincipal() http.Handler {
	return s.withWorkflow("rid", "signing request", func(w http.ResponseWriter, r *http.Request, wf *Workflow, id string) error {
		a, body, err := action(w, r, "sign, approve, decline, send, cancel or resend")
		if err != nil {
			return err
		}
		out, err := wf.ActAsPrincipal(r.Context(), id, a, body, s.meta(r))
		return s.replyWritten(w, r, http.StatusOK, out, err)
	})
}

func (s *Server) handleViewInvitation() http.Handler {
	return s.withWorkflow("token", "", func(w http.ResponseWriter, r *http.Request, wf *Workflow, tok string) error {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		out, err := wf.View(r.Context(), tok, s.meta(r))
		return s.replyWritten(w, r, http.StatusOK, out, err)
	})
}

func (s *Server) handleInvitationContent() http.Handler {
	return s.withWorkflow("token", "", func(w http.ResponseWriter, r *http.Request, wf *Workflow, tok string) error {
		rd, ct, err := wf.Content(r.Context(), tok, s.meta(r))
		if err != nil {
			return err
		}
		defer rd.Close()
		if ct == "" {
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "sandbox")
		w.Header().Set("Content-Disposition", "attachment")
		_, _ = io.Copy(w, rd)
		return nil
	})
}

func (s *Server) handleAct() http.Handler {
	return s.withWorkflow("token", "", func(w http.ResponseWriter, r *http.Request, wf *Workflow, tok string) error {
		a, body, err := action(w, r, "sign, approve or decline")
		if err != nil {
			return err
		}
		out, err := wf.Act(r.Context(), tok, a, body, s.meta(r))
		return s.replyWritten(w, r, http.StatusOK, out, err)
	})
}
