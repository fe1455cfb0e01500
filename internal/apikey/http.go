package apikey

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/httpx"
)

// Server is the REST API of API keys, served on the document service's
// port (it owns PostgreSQL) beside the documents: see Mount.
type Server struct {
	keys *Service
	log  *slog.Logger
}

// NewServer builds the handler of /apikeys, behind cfg.Auth's middleware.
func NewServer(keys *Service, cfg Config, log *slog.Logger) http.Handler {
	s := &Server{keys: keys, log: log}
	mux := http.NewServeMux()
	mux.Handle("/", httpx.Unmatched(mux))
	httpx.Handle(mux, cfg.Admission, s, routeTable)
	return httpx.Wrap("apikey", log, cfg.Auth.Middleware(mux))
}

// routeTable is the REST API of API keys.
var routeTable = map[string]httpx.Route[*Server]{
	"POST /apikeys":        {Class: httpx.Write, Handler: (*Server).handleCreate},
	"GET /apikeys":         {Class: httpx.Read, Handler: (*Server).handleList},
	"DELETE /apikeys/{id}": {Class: httpx.Write, Handler: (*Server).handleRevoke},
}

// Routes lists the REST API's routes, for the public client's test that
// each has a method.
func Routes() []string { return httpx.Patterns(routeTable) }

// Mount serves /apikeys and everything under it with keys, every other
// path with other (the document service's handler). A prefix test rather
// than a ServeMux, which would answer a path with dot segments with a
// redirect before either handler could refuse it.
func Mount(keys, other http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/apikeys" || strings.HasPrefix(r.URL.Path, "/apikeys/") {
			keys.ServeHTTP(w, r)
			return
		}
		other.ServeHTTP(w, r)
	})
}

// maxCreateBody is far above any valid body (a name, four scopes, a
// duration).
const maxCreateBody = 8 << 10

// createRequest tells an absent field from an empty one where it matters.
type createRequest struct {
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	ExpiresIn string   `json:"expires_in"`
}

func (s *Server) respondErr(w http.ResponseWriter, r *http.Request, err error) {
	if apperr.CodeOf(err) == apperr.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="docstream"`)
	}
	httpx.RespondErr(w, r, s.log, err)
}

func (s *Server) handleCreate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := httpx.Decode[createRequest](w, r, maxCreateBody)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		k, raw, err := s.keys.Create(r.Context(), CreateInput(req))
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		w.Header().Set("Location", "/apikeys/"+k.ID)
		// The key is in this answer only: no cache may keep it.
		w.Header().Set("Cache-Control", "no-store")
		httpx.Respond(w, http.StatusCreated, api.CreatedAPIKey{APIKey: wire(k), Key: raw})
	})
}

func (s *Server) handleList() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys, err := s.keys.List(r.Context())
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		out := api.APIKeys{Keys: make([]api.APIKey, 0, len(keys))}
		for _, k := range keys {
			out.Keys = append(out.Keys, wire(k))
		}
		httpx.Respond(w, http.StatusOK, out)
	})
}

func (s *Server) handleRevoke() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.keys.Revoke(r.Context(), r.PathValue("id")); err != nil {
			s.respondErr(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// wire is a key as the API shows it: never its hash.
func wire(k Key) api.APIKey {
	scopes := make([]string, len(k.Scopes))
	for i, sc := range k.Scopes {
		scopes[i] = string(sc)
	}
	return api.APIKey{ID: k.ID, Name: k.Name, Scopes: scopes, CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt.UTC(),
		ExpiresAt: utc(k.ExpiresAt), LastUsedAt: utc(k.LastUsedAt), RevokedAt: utc(k.RevokedAt)}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
