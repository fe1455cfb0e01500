package document

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/validate"
)

// Server is the REST API on port 8005.
type Server struct {
	docs *Service
	cfg  Config
	log  *slog.Logger
	mux  *http.ServeMux
}

// NewServer builds the handler with every route, health and metrics. cfg
// must be valid (Config.Validate).
func NewServer(docs *Service, cfg Config, log *slog.Logger) http.Handler {
	s := &Server{docs: docs, cfg: cfg, log: log, mux: http.NewServeMux()}
	s.routes()
	return httpx.Wrap("document", log, cfg.Auth.Middleware(withAuditClient(s.mux, cfg), AuditKeysPath))
}

func (s *Server) routes() {
	db, cache, blobs := s.docs.Ready()
	checks := []httpx.Check{
		{Name: "postgres", Probe: db},
		{Name: "blob", Probe: blobs},
		{Name: "redis", Probe: cache},
	}
	switch inv := s.docs.cache.invalidator; {
	case inv != nil:
		checks = append(checks, httpx.Check{Name: "cache-invalidator", Probe: inv.Health})
	case s.cfg.InvalidatorOff != "":
		off := httpx.Off(s.cfg.InvalidatorOff)
		checks = append(checks, httpx.Check{Name: "cache-invalidator", Probe: func(context.Context) error { return off }})
	}
	httpx.Routes(s.mux, checks...)
	httpx.Handle(s.mux, s.cfg.Admission, s, routeTable)
}

// routeTable is the REST API besides health and metrics.
var routeTable = map[string]httpx.Route[*Server]{
	"POST /documents":        {Class: httpx.Write, Handler: (*Server).handleCreate},
	"GET /documents":         {Class: httpx.Read, Handler: (*Server).handleList},
	"GET /documents/{id}":    {Class: httpx.Read, Handler: (*Server).handleGet},
	"PATCH /documents/{id}":  {Class: httpx.Write, Handler: (*Server).handleUpdate},
	"DELETE /documents/{id}": {Class: httpx.Write, Handler: (*Server).handleDelete},
	// A download's time goes to the client's network, not this process's
	// CPU; a slot held for it would starve the reads.
	"GET /documents/{id}/content": {Handler: (*Server).handleContent},
	"GET /documents/{id}/stats":   {Class: httpx.Read, Handler: (*Server).handleStats},
	// Sharing: the owner, a holder of own or an admin.
	"GET /documents/{id}/shares":              {Class: httpx.Read, Handler: (*Server).handleShares},
	"POST /documents/{id}/shares":             {Class: httpx.Write, Handler: (*Server).handleShare},
	"DELETE /documents/{id}/shares/{grantee}": {Class: httpx.Write, Handler: (*Server).handleUnshare},
	// The audit trail: the owner, a holder of own or an admin (audit.go).
	"GET /documents/{id}/audit":        {Class: httpx.Read, Handler: (*Server).handleAudit},
	"GET /documents/{id}/audit/verify": {Class: httpx.Read, Handler: (*Server).handleAuditVerify},
	"GET " + AuditKeysPath:             {Class: httpx.Read, Handler: (*Server).handleAuditKeys},
}

// Routes lists the REST API's routes (http.ServeMux patterns, besides
// health and metrics), for the public client's test that each has a method.
func Routes() []string { return httpx.Patterns(routeTable) }

func (s *Server) respondErr(w http.ResponseWriter, r *http.Request, err error) {
	httpx.RespondErr(w, r, s.log, err)
}

// createRequest is the reference's JSON body.
type createRequest struct {
	Title       *string `json:"title"`
	Content     *string `json:"content"`
	ContentType *string `json:"content_type"`
	CreatedBy   *string `json:"created_by"`
}

// maxCreateBody leaves room for JSON escaping of MaxJSONContent bytes.
const maxCreateBody = 2*MaxJSONContent + 64<<10

func (s *Server) handleCreate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		// Before the body: a bad key is refused without reading it.
		key, err := httpx.IdempotencyKey(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		var doc *Created
		if mt == "multipart/form-data" {
			doc, err = s.createMultipart(w, r, key)
		} else {
			doc, err = s.createJSON(w, r, key)
		}
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if doc.Replayed {
			w.Header().Set(api.IdempotentReplayedHeader, "true")
		}
		w.Header().Set("Location", "/documents/"+doc.ID)
		setVersionHeaders(w, doc)
		httpx.Respond(w, http.StatusCreated, doc.Document)
	})
}

func (s *Server) createJSON(w http.ResponseWriter, r *http.Request, key string) (*Created, error) {
	// Reading the body is not CPU: give the write slot back meanwhile.
	var req createRequest
	var err error
	if busy := httpx.Outside(r.Context(), w, func() { req, err = httpx.Decode[createRequest](w, r, maxCreateBody) }); busy != nil {
		return nil, busy
	}
	if err != nil {
		return nil, err
	}
	in := s.docs.asCaller(r.Context(), CreateInput{Title: deref(req.Title), CreatedBy: deref(req.CreatedBy), ContentType: normalizeContentType(deref(req.ContentType)),
		IdempotencyKey: key})
	var fields []apperr.FieldError
	if req.Content == nil {
		fields = append(fields, apperr.FieldError{Field: "content", Message: "is required"})
	} else if len(*req.Content) > MaxJSONContent {
		return nil, apperr.E(apperr.TooLarge, "content is %d bytes; at most %d bytes may be sent inline (upload larger files as multipart/form-data)", len(*req.Content), MaxJSONContent)
	}
	if err := in.Validate(); err != nil {
		fields = append(apperr.As(err).Details, fields...)
	}
	if err := apperr.Fields(fields...); err != nil {
		return nil, err
	}
	if in.ContentType == "" {
		in.ContentType = "text/plain" // the reference's default for inline content
	}
	return s.docs.Create(r.Context(), in, strings.NewReader(*req.Content), MaxJSONContent)
}

// createMultipart streams the "file" part straight to object storage, never
// holding the whole file in memory. Form fields may come before or after the
// file: the row is inserted, and the fields validated, once the form ends;
// if that fails the stored content is removed again.
func (s *Server) createMultipart(w http.ResponseWriter, r *http.Request, key string) (*Created, error) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, apperr.E(apperr.Invalid, "malformed multipart body: %v", err)
	}
	in := CreateInput{IdempotencyKey: key}
	var up *Upload
	discard := func() {
		if up != nil {
			s.docs.Discard(r.Context(), up)
		}
	}
	// The body may take minutes to arrive (a large file over a slow link):
	// that is not CPU, so the request gives its write slot back while it
	// reads, and takes one again (or is shed) before the insert.
	readForm := func() error {
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				discard()
				return multipartError(err, s.cfg.MaxUpload)
			}
			switch name := part.FormName(); name {
			case "title", "created_by", "content_type":
				v, err := io.ReadAll(io.LimitReader(part, 4<<10))
				if err != nil {
					discard()
					return multipartError(err, s.cfg.MaxUpload)
				}
				set(&in, name, string(v))
			case "file":
				if up != nil {
					discard()
					return apperr.Fields(apperr.FieldError{Field: "file", Message: "only one file may be uploaded"})
				}
				ct := in.ContentType
				if pct := part.Header.Get("Content-Type"); ct == "" && pct != "" && pct != "application/octet-stream" {
					if _, problem := ParseContentType(normalizeContentType(pct)); problem != "" {
						discard()
						return apperr.Fields(apperr.FieldError{Field: "file", Message: "the part's Content-Type " + problem})
					}
					ct = normalizeContentType(pct)
				}
				if up, err = s.docs.Upload(r.Context(), ct, part, s.cfg.MaxUpload); err != nil {
					return multipartError(err, s.cfg.MaxUpload)
				}
			default:
				if _, err := io.Copy(io.Discard, part); err != nil {
					discard()
					return multipartError(err, s.cfg.MaxUpload)
				}
			}
		}
		return nil
	}
	var formErr error
	if err := httpx.Outside(r.Context(), w, func() { formErr = readForm() }); err != nil {
		discard()
		return nil, err
	}
	if formErr != nil {
		return nil, formErr
	}
	in = s.docs.asCaller(r.Context(), in)
	if up == nil {
		in.ContentType = "" // checked against the upload only
		fields := []apperr.FieldError{{Field: "file", Message: "is required"}}
		if err := in.Validate(); err != nil {
			fields = append(apperr.As(err).Details, fields...)
		}
		return nil, apperr.Fields(fields...)
	}
	// A content_type field after the file came too late to type the stored
	// bytes, so the upload's type stands; a bad one is still refused.
	if err := in.Validate(); err != nil {
		discard()
		return nil, err
	}
	in.ContentType = up.ContentType
	return s.docs.Commit(r.Context(), up, in)
}

func set(in *CreateInput, field, v string) {
	switch field {
	case "title":
		in.Title = v
	case "created_by":
		in.CreatedBy = v
	case "content_type":
		in.ContentType = normalizeContentType(v)
	}
}

func multipartError(err error, limit int64) error {
	var mbe *http.MaxBytesError
	var ae *apperr.Error
	switch {
	case errors.As(err, &ae):
		return err
	case errors.As(err, &mbe):
		return apperr.E(apperr.TooLarge, "upload is larger than %d bytes", limit)
	default:
		return apperr.Wrap(apperr.Invalid, err, "malformed multipart body: %v", err)
	}
}

func (s *Server) handleList() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := httpx.NewQuery(r)
		lq := parseListQuery(q)
		if err := q.Err(); err != nil {
			s.respondErr(w, r, err)
			return
		}
		page, err := s.docs.List(r.Context(), lq)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if page.Next != nil {
			next := page.Next.String()
			w.Header().Set(NextCursorHeader, next)
			w.Header().Set("Link", "<"+nextLink(r, next)+`>; rel="next"`)
		}
		httpx.Respond(w, http.StatusOK, page.Documents)
	})
}

// nextLink is this request's path and query with cursor set to next (and
// skip dropped: the cursor already says where the page starts).
func nextLink(r *http.Request, next string) string {
	v := r.URL.Query()
	v.Del("skip")
	v.Set("cursor", next)
	return r.URL.Path + "?" + v.Encode()
}

func (s *Server) handleGet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := validate.ID("document", r.PathValue("id"))
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		minLSN, err := httpx.MinLSN(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		d, body, err := s.docs.Get(r.Context(), id, httpx.ClientIP(r, s.cfg.TrustedProxies), minLSN)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		// The header map is written directly: Set canonicalizes the key
		// on every call, and this is the hottest answer.
		h := w.Header()
		h["Etag"] = []string{etag(d.Version)}
		h["Content-Type"] = jsonContentType
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}

type updateRequest struct {
	Title  *string `json:"title"`
	Status *string `json:"status"`
}

func (s *Server) handleUpdate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := validate.ID("document", r.PathValue("id"))
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		req, err := httpx.Decode[updateRequest](w, r, 64<<10)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		in := UpdateInput{Title: req.Title, Status: req.Status}
		if in.IfMatch, err = parseIfMatch(r.Header.Get("If-Match")); err != nil {
			s.respondErr(w, r, err)
			return
		}
		d, err := s.docs.Update(r.Context(), id, in)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		setVersionHeaders(w, d)
		httpx.Respond(w, http.StatusOK, d.Document)
	})
}

func (s *Server) handleDelete() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := validate.ID("document", r.PathValue("id"))
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if err := s.docs.Delete(r.Context(), id); err != nil {
			s.respondErr(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) handleContent() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := validate.ID("document", r.PathValue("id"))
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		d, body, err := s.docs.Content(r.Context(), id)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		defer body.Close()
		etag := ""
		if d.ContentSHA256 != "" {
			etag = `"` + d.ContentSHA256 + `"`
		}
		// A full download is evidence (who took the bytes); a range or a
		// revalidation is not. Unrecorded, it is not served.
		if fullDownload(r, etag) {
			if err := s.docs.RecordDownload(r.Context(), d); err != nil {
				s.respondErr(w, r, err)
				return
			}
		}
		w.Header().Set("Content-Type", d.ContentType)
		// The type and bytes are the uploader's: never rendered as
		// active content in the app's origin (httpx/untrusted.go).
		httpx.UntrustedContent(w.Header(), d.ContentType)
		if etag != "" {
			w.Header().Set("ETag", etag)
		}
		// ServeContent handles Range, If-Range, If-None-Match and Content-Length.
		httpx.ServeContent(w, r, d.UpdatedAt.Time, body)
	})
}

func (s *Server) handleStats() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := validate.ID("document", r.PathValue("id"))
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		st, err := s.docs.Stats(r.Context(), id)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		httpx.Respond(w, http.StatusOK, st)
	})
}

func (s *Server) handleShares() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := validate.ID("document", r.PathValue("id"))
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		shares, err := s.docs.Shares(r.Context(), id)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		httpx.Respond(w, http.StatusOK, shares)
	})
}

func (s *Server) handleShare() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := validate.ID("document", r.PathValue("id"))
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		req, err := httpx.Decode[api.ShareRequest](w, r, 4<<10)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		sh, err := s.docs.Share(r.Context(), id, req)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		httpx.SetCommitLSN(w, sh.LSN)
		httpx.Respond(w, http.StatusOK, sh.Share)
	})
}

func (s *Server) handleUnshare() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := validate.ID("document", r.PathValue("id"))
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		lsn, err := s.docs.Unshare(r.Context(), id, r.PathValue("grantee"))
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		httpx.SetCommitLSN(w, lsn)
		w.WriteHeader(http.StatusNoContent)
	})
}

// CommitLSNHeader carries the WAL position after a write's commit; search
// accepts it as min_lsn for read-your-writes.
const CommitLSNHeader = api.CommitLSNHeader

func setVersionHeaders(w http.ResponseWriter, d *Created) {
	w.Header().Set("ETag", etag(d.Version))
	httpx.SetCommitLSN(w, d.LSN)
}

func etag(v int32) string { return `"` + strconv.FormatInt(int64(v), 10) + `"` }

var jsonContentType = []string{"application/json"}

// parseIfMatch reads If-Match (RFC 9110 §13.1.1): absent or "*" (any
// current version) is no condition; otherwise the version the client holds.
// If-Match uses the strong comparison, which a weak validator never
// satisfies, so W/"3" always fails the precondition.
func parseIfMatch(h string) (*int32, error) {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return nil, nil
	}
	if strings.HasPrefix(h, "W/") {
		return nil, apperr.E(apperr.PreconditionFailed, "If-Match %q is a weak validator; If-Match needs the strong ETag of the current version, such as \"3\"", h)
	}
	// A bare number is accepted as well: it was before, and curl users type it.
	tag := h
	if len(tag) >= 2 && tag[0] == '"' && tag[len(tag)-1] == '"' {
		tag = tag[1 : len(tag)-1]
	}
	v, err := strconv.ParseInt(tag, 10, 32)
	if err != nil {
		return nil, apperr.E(apperr.Invalid, "If-Match must be a document version ETag such as \"3\", or *; got %q", h)
	}
	version := int32(v)
	return &version, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
