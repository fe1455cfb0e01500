package search

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/validate"
)

// Limits of the query parameters.
const (
	DefaultSize        = 10
	MaxSize            = 100
	DefaultSuggestSize = 5
	MaxSuggestSize     = 20
	MinSuggestLen      = 2
	DefaultTermsSize   = 20
	// MaxWindow is from+size's ceiling: Elasticsearch refuses deeper pages
	// (index.max_result_window), so both backends answer the same.
	MaxWindow   = 10000
	MaxQueryLen = 1000
)

// MinLSNHeader is the header form of the min_lsn parameter; a client copies
// the document service's X-Commit-LSN into either.
const MinLSNHeader = api.MinLSNHeader

// Server is the search HTTP service (port 8003). It only reads the index.
type Server struct {
	idx   Index
	log   *slog.Logger
	opts  Config
	cache *resultCache // nil: no cache
}

// NewServer returns the service over idx: its routes, health checks and
// metrics in the shared middleware. cfg must be valid (Config.Validate).
func NewServer(idx Index, cfg Config, log *slog.Logger) http.Handler {
	s := &Server{idx: idx, log: log, opts: cfg, cache: newResultCache(cfg.CacheEntries)}
	mux := http.NewServeMux()
	httpx.Handle(mux, s.opts.Admission, s, routeTable)
	httpx.Routes(mux, httpx.Check{Name: "index", Probe: s.idx.Ping})
	return httpx.Wrap("search", s.log, cfg.Auth.Middleware(mux))
}

// routeTable is the REST API besides health and metrics.
var routeTable = map[string]httpx.Route[*Server]{
	"GET /search":               {Class: httpx.Search, Handler: (*Server).handleSearch},
	"GET /suggest":              {Class: httpx.Search, Handler: (*Server).handleSuggest},
	"GET /aggregations/{field}": {Class: httpx.Search, Handler: (*Server).handleAggregations},
}

// Routes lists the REST API's routes (http.ServeMux patterns, besides
// health and metrics), for the public client's test that each has a method.
func Routes() []string { return httpx.Patterns(routeTable) }

// wire is the hit as the API returns it (never the indexed content).
func (h Hit) wire() api.SearchHit {
	hl := h.Highlights
	if hl == nil {
		hl = map[string][]string{}
	}
	d := h.Document
	return api.SearchHit{
		ID: d.ID, Title: d.Title, ContentType: d.ContentType, ContentSize: d.ContentSize, S3Key: d.S3Key,
		Status: api.Status(d.Status), CreatedBy: d.CreatedBy, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		Version: d.Version, SigningStatus: api.RequestState(d.SigningStatus), Score: h.Score, Highlights: hl,
	}
}

func (s *Server) handleSearch() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := newParams(r)
		q := Query{
			Text:      p.text("q", 1),
			Status:    p.filter("status"),
			CreatedBy: p.filter("created_by"),
			// Validated, unlike status: a misspelt state would silently
			// match nothing, and the states are few and fixed.
			SigningStatus: p.signingStatus(),
			From:          p.Int("from", 0, 0, MaxWindow),
			Size:          p.Int("size", DefaultSize, 1, MaxSize),
			Access:        s.access(r.Context()),
		}
		minLSN := p.MinLSN(p.r)
		waitIDs := p.extractionWait(s.opts.Extractions != nil)
		if p.Err() == nil && q.From+q.Size > MaxWindow {
			p.Fail("from", "from + size must be at most "+strconv.Itoa(MaxWindow))
		}
		if err := p.Err(); err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		extracted, staleX, err := s.waitExtractions(w, r, waitIDs)
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		stale, err := s.waitApplied(w, r, max(minLSN, extracted))
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		stale = stale || staleX
		start := time.Now()
		var res Result
		if s.cache != nil && !stale {
			res, err = s.cache.search(r.Context(), s.idx, q)
		} else {
			if s.cache != nil {
				cacheLookups.WithLabelValues("bypass").Inc()
			}
			res, err = s.idx.Search(r.Context(), q)
		}
		if err != nil {
			httpx.RespondErr(w, r, s.log, unavailable(err))
			return
		}
		total, relation := capTotal(res)
		out := api.SearchResponse{Total: total, TotalRelation: relation, Documents: make([]api.SearchHit, 0, len(res.Hits)),
			TookMs: time.Since(start).Milliseconds(), From: q.From, Size: q.Size, Stale: stale}
		for _, h := range res.Hits {
			out.Documents = append(out.Documents, h.wire())
		}
		httpx.Respond(w, http.StatusOK, out)
	})
}

func (s *Server) handleSuggest() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := newParams(r)
		prefix := p.text("q", MinSuggestLen)
		size := p.Int("size", DefaultSuggestSize, 1, MaxSuggestSize)
		minLSN := p.MinLSN(p.r)
		if err := p.Err(); err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		stale, err := s.waitApplied(w, r, minLSN)
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		out, err := s.idx.Suggest(r.Context(), prefix, size, s.access(r.Context()))
		if err != nil {
			httpx.RespondErr(w, r, s.log, unavailable(err))
			return
		}
		httpx.Respond(w, http.StatusOK, api.SuggestResponse{Suggestions: out, Stale: stale})
	})
}

func (s *Server) handleAggregations() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		field := r.PathValue("field")
		if !slices.Contains(AggregationFields, field) {
			httpx.RespondErr(w, r, s.log, apperr.E(apperr.Invalid, "cannot aggregate by %q: choose one of %s", field, strings.Join(AggregationFields, ", ")))
			return
		}
		p := newParams(r)
		text := strings.TrimSpace(p.Get("q"))
		switch {
		case !validText(text):
			p.Fail("q", textProblem)
		case utf8.RuneCountInString(text) > MaxQueryLen:
			p.Fail("q", "must be at most "+strconv.Itoa(MaxQueryLen)+" characters")
		}
		size := p.Int("size", DefaultTermsSize, 1, MaxSize)
		minLSN := p.MinLSN(p.r)
		if err := p.Err(); err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		stale, err := s.waitApplied(w, r, minLSN)
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		values, err := s.idx.Terms(r.Context(), field, text, size, s.access(r.Context()))
		if err != nil {
			httpx.RespondErr(w, r, s.log, unavailable(err))
			return
		}
		httpx.Respond(w, http.StatusOK, api.AggregationResponse{Field: field, Values: values, Stale: stale})
	})
}

// access is what the caller may see: everything in open mode and for an
// admin; otherwise the documents whose readers hold one of the caller's
// reader keys — none for a caller without any (anonymous never gets this
// far in required mode, but if it did it would see nothing).
func (s *Server) access(ctx context.Context) Access {
	if s.opts.Mode != auth.ModeRequired {
		return Everything
	}
	p := auth.FromContext(ctx)
	if !p.HasScope(auth.ScopeRead) {
		// An API key capped to write or sign reads nothing, here as on
		// every other read path.
		return ReadersOf(nil)
	}
	if p.Admin {
		return Everything
	}
	return ReadersOf(p.ReaderKeys())
}

// waitApplied waits until the indexer has applied minLSN, at most
// opts.MaxWait, and reports whether it gave up (the answer may then miss
// the caller's own write). minLSN 0 does not wait. The wait costs no CPU
// here, so the request's admission slot is given back meanwhile; the error
// is a busy 503 when no slot is free again afterwards.
func (s *Server) waitApplied(w http.ResponseWriter, r *http.Request, minLSN uint64) (stale bool, err error) {
	if minLSN == 0 {
		return false, nil
	}
	err = httpx.Outside(r.Context(), w, func() { stale = s.waitLSN(r.Context(), minLSN) })
	return stale, err
}

// extractionPoll is how often a search waiting for extraction re-reads
// the documents' extraction rows (one indexed query each; an extraction
// takes hundreds of milliseconds at least).
const extractionPoll = 100 * time.Millisecond

// waitExtractions waits, at most opts.ExtractionWait and without holding
// the admission slot, until the extraction of each of ids has ended, and
// returns the WAL position to wait for so the index holds those results.
// stale is true when it gave up. A document the caller may not view is
// not_found, as a missing one is.
func (s *Server) waitExtractions(w http.ResponseWriter, r *http.Request, ids []string) (lsn uint64, stale bool, err error) {
	if len(ids) == 0 {
		return 0, false, nil
	}
	var failed error
	err = httpx.Outside(r.Context(), w, func() {
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.ExtractionWait)
		defer cancel()
		t := time.NewTicker(extractionPoll)
		defer t.Stop()
		for {
			pending := ids[:0:0]
			for _, id := range ids {
				ok, at, e := s.opts.Extractions.Settled(ctx, id)
				switch {
				case e != nil && ctx.Err() != nil:
					stale = true
					return
				case e != nil:
					failed = e
					return
				case ok:
					lsn = max(lsn, at)
				default:
					pending = append(pending, id)
				}
			}
			if ids = pending; len(ids) == 0 {
				return
			}
			select {
			case <-ctx.Done():
				stale = true
				return
			case <-t.C:
			}
		}
	})
	if err == nil {
		err = failed
	}
	return lsn, stale, err
}

func (s *Server) waitLSN(ctx context.Context, minLSN uint64) (stale bool) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.MaxWait)
	defer cancel()
	t := time.NewTicker(s.opts.Poll)
	defer t.Stop()
	for {
		applied, err := s.idx.AppliedLSN(ctx)
		if err == nil && applied >= minLSN {
			return false
		}
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "read applied lsn", "err", err)
		}
		select {
		case <-ctx.Done():
			return true
		case <-t.C:
		}
	}
}

// unavailable marks a backend failure as retryable for the client (503)
// rather than a bug (500); the cause is logged by RespondErr.
func unavailable(err error) error {
	if ae, ok := err.(*apperr.Error); ok {
		return ae
	}
	return apperr.Wrap(apperr.Unavailable, err, "search index unavailable")
}

// params are the query parameters of a search request: httpx.Query's,
// plus free text, filters and min_lsn.
type params struct {
	*httpx.Query
	r *http.Request
}

func newParams(r *http.Request) params { return params{Query: httpx.NewQuery(r), r: r} }

// text reads a required free-text parameter of at least minLen characters.
func (p *params) text(name string, minLen int) string {
	v := strings.TrimSpace(p.Get(name))
	n := utf8.RuneCountInString(v)
	switch {
	case !validText(v):
		p.Fail(name, textProblem)
	case n == 0:
		p.Fail(name, "is required")
	case n < minLen:
		p.Fail(name, "must be at least "+strconv.Itoa(minLen)+" characters")
	case n > MaxQueryLen:
		p.Fail(name, "must be at most "+strconv.Itoa(MaxQueryLen)+" characters")
	}
	return v
}

// filter reads an optional exact-match filter.
func (p *params) filter(name string) string {
	v := strings.TrimSpace(p.Get(name))
	switch {
	case !validText(v):
		p.Fail(name, textProblem)
	case len(v) > 255:
		p.Fail(name, "must be at most 255 characters")
	}
	return v
}

// signingStatus reads the optional signing_status filter: one of the
// request states.
func (p *params) signingStatus() string {
	v := strings.TrimSpace(p.Get("signing_status"))
	if v == "" {
		return ""
	}
	names := make([]string, len(api.RequestStates))
	for i, s := range api.RequestStates {
		if string(s) == v {
			return v
		}
		names[i] = string(s)
	}
	p.Fail("signing_status", "must be one of "+strings.Join(names, ", "))
	return ""
}

// textProblem is the message for a parameter that is not text: a query
// with invalid UTF-8 or NUL is a client's mistake and must not reach the
// index, where it would surface as a backend failure.
const textProblem = "must be valid UTF-8 text without NUL characters"

func validText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// MaxWaitDocuments bounds the document_id parameters of one search.
const MaxWaitDocuments = 20

// extractionWait reads wait_for and document_id: the documents whose
// extraction the search waits for (none without wait_for). available is
// false when this service cannot wait for extraction.
func (p *params) extractionWait(available bool) []string {
	raw := p.r.URL.Query()["document_id"]
	switch strings.TrimSpace(p.Get("wait_for")) {
	case "":
		if len(raw) > 0 {
			p.Fail("document_id", "is only used with wait_for=extraction")
		}
		return nil
	case api.WaitForExtraction:
	default:
		p.Fail("wait_for", "must be "+api.WaitForExtraction)
		return nil
	}
	switch {
	case !available:
		p.Fail("wait_for", "this search service cannot wait for extraction (no database configured)")
		return nil
	case len(raw) == 0:
		p.Fail("document_id", "is required with wait_for=extraction (repeat it for several documents)")
		return nil
	case len(raw) > MaxWaitDocuments:
		p.Fail("document_id", "at most "+strconv.Itoa(MaxWaitDocuments)+" documents")
		return nil
	}
	ids := make([]string, 0, len(raw))
	for _, v := range raw {
		id, ok := validate.UUID(strings.TrimSpace(v))
		if !ok {
			p.Fail("document_id", "must be a document id (a UUID)")
			return nil
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}
