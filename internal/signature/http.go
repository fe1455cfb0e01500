package signature

import (
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/validate"
)

// Server is the signature service's HTTP API.
type Server struct {
	svc     *Service
	log     *slog.Logger
	trusted []netip.Prefix // proxies whose X-Forwarded-For is believed
	adm     *httpx.Admission
}

// NewServer returns the HTTP API over svc with its health checks and
// metrics. X-Forwarded-For is trusted only from cfg.TrustedProxies (the
// gateway); cfg.Admission bounds the requests in flight per route class.
func NewServer(svc *Service, cfg Config, log *slog.Logger) http.Handler {
	s := &Server{svc: svc, log: log, trusted: cfg.TrustedProxies, adm: cfg.Admission}
	return httpx.Wrap("signature", s.log, cfg.Auth.Middleware(s.routes()))
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := validate.ID("signature", r.PathValue("id"))
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		sig, err := s.svc.Get(r.Context(), id)
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		httpx.Respond(w, http.StatusOK, sig)
	})
}

func (s *Server) handleListByDocument() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := validate.ID("document", r.PathValue("id"))
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		sigs, err := s.svc.ListByDocument(r.Context(), id)
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		httpx.Respond(w, http.StatusOK, sigs)
	})
}
