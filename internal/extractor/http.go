package extractor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/gcerrors"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/validate"
)

// maxThumb bounds the thumbnail read into memory to serve it (ours are a
// few kilobytes at 256 px).
const maxThumb = 8 << 20

// Server is the extractor's HTTP edge.
type Server struct {
	x    *Extractor
	mux  *http.ServeMux
	docs *document.Store // the access decision's record
}

// routeTable is the extractor's API besides health and metrics.
var routeTable = map[string]httpx.Route[*Server]{
	"GET /documents/{id}/thumbnail":  {Class: httpx.Read, Handler: (*Server).handleThumbnail},
	"GET /documents/{id}/extraction": {Class: httpx.Read, Handler: (*Server).handleGet},
	"POST /documents/{id}/extract":   {Class: httpx.Write, Handler: (*Server).handleExtract},
	"POST /extractions/rerun":        {Class: httpx.Write, Handler: (*Server).handleRerun},
	"GET /extractions/queue":         {Class: httpx.Read, Handler: (*Server).handleQueue},
}

// Routes lists the extractor's routes (http.ServeMux patterns, besides
// health and metrics), for the public client's route test.
func Routes() []string { return httpx.Patterns(routeTable) }

// Handler serves the routes, /health/live, /health/ready (database, bus,
// object storage, the sandbox, and each missing tool as "off") and
// /metrics.
func (x *Extractor) Handler(adm *httpx.Admission) http.Handler {
	s := &Server{x: x, mux: http.NewServeMux(), docs: document.NewStore(x.store.pool)}
	checks := []httpx.Check{
		{Name: "db", Probe: x.store.Ping},
		{Name: "bus", Probe: x.bus.Ping},
		// Degraded, not unready: a stalled subscription queues nothing new,
		// but the routes still serve.
		{Name: "consumers", Probe: func(context.Context) error { return bus.CheckConsumers(x.bus, ConsumerName) }},
		{Name: "blob", Probe: x.blobs.Ping},
		{Name: "extraction", Probe: x.Health},
	}
	for what, why := range x.off {
		off := httpx.Off(why)
		checks = append(checks, httpx.Check{Name: "tool-" + what, Probe: func(context.Context) error { return off }})
	}
	httpx.Routes(s.mux, checks...)
	httpx.Handle(s.mux, adm, s, routeTable)
	return httpx.Wrap("extractor", x.log, x.cfg.Auth.Middleware(s.mux))
}

// authorize is the document service's decision for the caller doing need
// to document id (required mode only): not_found for a document it may not
// view, as the content route answers.
func (s *Server) authorize(ctx context.Context, id string, need auth.Level) error {
	return authorize(ctx, s.docs, s.x.cfg.Auth.Mode(), id, need)
}

func authorize(ctx context.Context, docs *document.Store, mode auth.Mode, id string, need auth.Level) error {
	if mode != auth.ModeRequired {
		return nil
	}
	p := auth.FromContext(ctx)
	r, err := docs.Record(ctx, id, p.ReaderKeys())
	if err != nil {
		return err
	}
	return document.Decide(p, r, need)
}

// Waiter answers the search service's wait for extraction
// (GET /search?wait_for=extraction&document_id=…; it implements
// search.Extractions).
type Waiter struct {
	store *Store
	docs  *document.Store
	mode  auth.Mode
}

// NewWaiter returns a Waiter over pool; in auth.ModeRequired it applies
// the document service's view decision to the principal on the context.
func NewWaiter(pool *pgxpool.Pool, mode auth.Mode) *Waiter {
	return &Waiter{store: NewStore(pool), docs: document.NewStore(pool), mode: mode}
}

// Settled is Store.Settled for a caller who may view the document: a
// document it may not view is NotFound, as a missing one is, so a wait
// tells nothing about documents the caller cannot see.
func (w *Waiter) Settled(ctx context.Context, id string) (bool, uint64, error) {
	if err := authorize(ctx, w.docs, w.mode, id, auth.LevelView); err != nil {
		return false, 0, err
	}
	return w.store.Settled(ctx, id)
}

// adminOnly refuses the bulk routes (they touch every document) to anyone
// but an admin outside `docstream dev`: the rule of every administrative
// operation (auth.Authenticator.AuthorizeAdmin), which for an API key
// needs the admin scope.
func (s *Server) adminOnly(ctx context.Context) error {
	return s.x.cfg.Auth.AuthorizeAdmin(ctx, "re-running or counting every extraction")
}

func (s *Server) respondErr(w http.ResponseWriter, r *http.Request, err error) {
	httpx.RespondErr(w, r, s.x.log, err)
}

// handleThumbnail serves {id}/thumb.png with an ETag (the SHA-256 of the
// image) and a private cache lifetime: a replaced content makes a new
// thumbnail, which a client revalidating with If-None-Match gets.
func (s *Server) handleThumbnail() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.document(r, auth.LevelView)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		rd, err := s.x.blobs.NewReader(r.Context(), ThumbKey(id), nil)
		if gcerrors.Code(err) == gcerrors.NotFound {
			s.respondErr(w, r, apperr.E(apperr.NotFound, "document %s has no thumbnail", id))
			return
		}
		if err != nil {
			s.respondErr(w, r, apperr.Wrap(apperr.Unavailable, err, "object storage"))
			return
		}
		defer rd.Close()
		b, err := io.ReadAll(io.LimitReader(rd, maxThumb))
		if err != nil {
			s.respondErr(w, r, apperr.Wrap(apperr.Unavailable, err, "object storage"))
			return
		}
		sum := sha256.Sum256(b)
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
		w.Header().Set("Cache-Control", "private, max-age=300")
		httpx.ServeContent(w, r, rd.ModTime(), bytes.NewReader(b))
	})
}

// document is the route's document id, checked, once the caller is known
// to hold need on it (NotFound when it may not see it).
func (s *Server) document(r *http.Request, need auth.Level) (string, error) {
	id, err := validate.ID("document", r.PathValue("id"))
	if err != nil {
		return "", err
	}
	return id, s.authorize(r.Context(), id, need)
}

// handleGet answers the document's extraction, with X-Commit-LSN: a search
// with that min_lsn reflects what was read (once it says done, the words
// are searchable).
func (s *Server) handleGet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.document(r, auth.LevelView)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		e, lsn, err := s.x.store.Get(r.Context(), id)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		httpx.SetCommitLSN(w, lsn)
		httpx.Respond(w, http.StatusOK, e)
	})
}

// handleExtract queues the document's extraction again (202): a failed
// one after a tool was installed or a limit raised, or any other.
func (s *Server) handleExtract() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.document(r, auth.LevelEdit)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		d, err := s.x.store.Document(r.Context(), id)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		format, status := s.x.formatOf(d.ContentType)
		if status != api.ExtractionPending {
			// Plain text and unsupported types would only be recorded
			// again; queue them anyway so the caller sees a fresh row.
			format = ""
		}
		e, lsn, err := s.x.store.Rerun(r.Context(), id, format)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		s.x.Wake()
		httpx.SetCommitLSN(w, lsn)
		httpx.Respond(w, http.StatusAccepted, e)
	})
}

// handleRerun queues many: every document (all) or the failed ones.
func (s *Server) handleRerun() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.adminOnly(r.Context()); err != nil {
			s.respondErr(w, r, err)
			return
		}
		req, err := httpx.Decode[api.ExtractRequest](w, r, 4<<10)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if !req.All && !req.Failed {
			s.respondErr(w, r, apperr.Fields(apperr.FieldError{Field: "all", Message: "say which extractions to run again: all, failed, or both"}))
			return
		}
		n, err := s.x.store.RerunMany(r.Context(), req.All, req.Failed, func(ct string) (string, string) {
			format, status := s.x.formatOf(ct)
			if status == api.ExtractionUnsupported {
				status = api.ExtractionPending // perhaps a tool was installed since: the worker decides
			}
			return format, status
		})
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		s.x.Wake()
		q, err := s.x.store.Queue(r.Context())
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		httpx.Respond(w, http.StatusOK, api.ExtractResponse{Queued: n, Pending: q.Pending + q.Running})
	})
}

func (s *Server) handleQueue() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.adminOnly(r.Context()); err != nil {
			s.respondErr(w, r, err)
			return
		}
		q, err := s.x.store.Queue(r.Context())
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		httpx.Respond(w, http.StatusOK, q)
	})
}
