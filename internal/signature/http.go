package signature

import (
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/validate"
)

// Server is the signature service's HTTP API.
type Server struct {
	svc     *Service
	log     *slog.Logger
	trusted []netip.Prefix // proxies whose X-Forwarded-For is believed
	checks  []httpx.Check
	adm     *httpx.Admission
}

// NewServer returns the HTTP API over svc. X-Forwarded-For is trusted only
// from peers in trusted (the gateway); checks feed /health/ready.
func NewServer(svc *Service, log *slog.Logger, trusted []netip.Prefix, checks ...httpx.Check) *Server {
	return &Server{svc: svc, log: log, trusted: trusted, checks: checks}
}

// WithAdmission bounds the in-flight requests of each route class.
func (s *Server) WithAdmission(a *httpx.Admission) *Server {
	s.adm = a
	return s
}

// Handler returns the API with the shared middleware.
func (s *Server) Handler() http.Handler {
	return httpx.Wrap("signature", s.log, s.routes())
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	httpx.Handle(mux, s.adm, s, routeTable)
	httpx.Routes(mux, s.checks...)
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
		req, err := httpx.Decode[CreateRequest](w, r, maxBody)
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		in, err := req.Validate()
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		in.IPAddress = httpx.ClientIP(r, s.trusted)
		sig, err := s.svc.Create(r.Context(), in)
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
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
