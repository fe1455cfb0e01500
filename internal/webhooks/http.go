package webhooks

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/change"
	"github.com/docstream/docstream/internal/httpx"
	"github.com/docstream/docstream/internal/validate"
)

const (
	maxBody        = 16 << 10
	maxURL         = 2048
	maxOverlap     = 30 * 24 * time.Hour
	defaultOverlap = 24 * time.Hour
)

// Server is the webhooks target's HTTP edge.
type Server struct {
	s   *Sender
	mux *http.ServeMux
}

// routeTable is the /webhooks API besides health and metrics.
var routeTable = map[string]httpx.Route[*Server]{
	"POST /webhooks":                                      {Class: httpx.Write, Handler: (*Server).handleCreate},
	"GET /webhooks":                                       {Class: httpx.Read, Handler: (*Server).handleList},
	"GET /webhooks/{id}":                                  {Class: httpx.Read, Handler: (*Server).handleGet},
	"PATCH /webhooks/{id}":                                {Class: httpx.Write, Handler: (*Server).handleUpdate},
	"DELETE /webhooks/{id}":                               {Class: httpx.Write, Handler: (*Server).handleDelete},
	"POST /webhooks/{id}/rotate":                          {Class: httpx.Write, Handler: (*Server).handleRotate},
	"GET /webhooks/{id}/deliveries":                       {Class: httpx.Read, Handler: (*Server).handleDeliveries},
	"POST /webhooks/{id}/deliveries/{delivery}/redeliver": {Class: httpx.Write, Handler: (*Server).handleRedeliver},
	"POST /webhooks/{id}/replay":                          {Class: httpx.Write, Handler: (*Server).handleReplay},
	"POST /webhooks/{id}/test":                            {Class: httpx.Write, Handler: (*Server).handleTest},
}

// Routes lists the routes (for the public client's route test).
func Routes() []string { return httpx.Patterns(routeTable) }

// Handler serves the routes, /health/live, /health/ready (503 while the
// fan-out's bus consumer is stalled or not subscribed) and /metrics.
func (s *Sender) Handler(adm *httpx.Admission) http.Handler {
	srv := &Server{s: s, mux: http.NewServeMux()}
	httpx.Routes(srv.mux,
		httpx.Check{Name: "db", Probe: s.store.Ping},
		httpx.Check{Name: "bus", Probe: s.bus.Ping},
		httpx.Check{Name: "delivery", Probe: s.Health},
		// A fan-out whose subscription stalled queues no new deliveries:
		// what the target exists to do, so unready (the bus re-subscribes
		// it; the reason is the check's detail).
		httpx.Check{Name: "consumers", Critical: true, Probe: func(context.Context) error {
			return bus.CheckConsumers(s.bus, ConsumerName)
		}},
	)
	httpx.Handle(srv.mux, adm, srv, routeTable)
	return httpx.Wrap("webhooks", s.log, s.cfg.Auth.Middleware(srv.mux))
}

func (srv *Server) respondErr(w http.ResponseWriter, r *http.Request, err error) {
	httpx.RespondErr(w, r, srv.s.log, err)
}

func (srv *Server) required() bool { return srv.s.cfg.Auth.Mode() == auth.ModeRequired }

// manager refuses callers that may not manage webhooks at all: in required
// mode a service principal, and an API key without the write scope.
func (srv *Server) manager(ctx context.Context) (auth.Principal, error) {
	p := auth.FromContext(ctx)
	if !srv.required() {
		return p, nil
	}
	if p.Kind == auth.KindService {
		return p, apperr.E(apperr.Forbidden, "services do not manage webhooks")
	}
	if !p.HasScope(auth.ScopeWrite) {
		return p, apperr.E(apperr.Forbidden, "this API key lacks the write scope")
	}
	return p, nil
}

// endpoint is the route's endpoint, if the caller may manage it: an admin
// any, others their own (another's is not found, so ids tell nothing).
func (srv *Server) endpoint(r *http.Request) (*endpoint, error) {
	p, err := srv.manager(r.Context())
	if err != nil {
		return nil, err
	}
	id, err := validate.ID("webhook", r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	e, err := srv.s.store.Get(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if srv.required() && !p.Admin && e.Owner != p.Key() {
		return nil, apperr.E(apperr.NotFound, "webhook %s not found", id)
	}
	return e, nil
}

// checkFields validates what a create or an update sets.
func (srv *Server) checkFields(ctx context.Context, e *endpoint) error {
	var fe []apperr.FieldError
	if len(e.URL) > maxURL {
		fe = append(fe, apperr.FieldError{Field: "url", Message: "must be at most 2048 characters"})
	} else if err := srv.s.guard.CheckURL(ctx, e.URL); err != nil {
		fe = append(fe, apperr.FieldError{Field: "url", Message: err.Error()})
	}
	known := change.WebhookEvents()
	if len(e.Events) == 0 {
		fe = append(fe, apperr.FieldError{Field: "events", Message: "name at least one of " + joinComma(known)})
	}
	var events []string
	for _, ev := range e.Events {
		if !slices.Contains(known, ev) {
			fe = append(fe, apperr.FieldError{Field: "events", Message: strconv.Quote(ev) + " is not an event type; want " + joinComma(known)})
			break
		}
		if !slices.Contains(events, ev) {
			events = append(events, ev)
		}
	}
	e.Events = events
	if len(e.Description) > 500 {
		fe = append(fe, apperr.FieldError{Field: "description", Message: "must be at most 500 characters"})
	}
	if e.DocumentID != "" {
		if id, ok := validate.UUID(e.DocumentID); ok {
			e.DocumentID = id
		} else {
			fe = append(fe, apperr.FieldError{Field: "document_id", Message: "must be a document id (UUID)"})
		}
	}
	if len(e.CreatedBy) > 255 {
		fe = append(fe, apperr.FieldError{Field: "created_by", Message: "must be at most 255 characters"})
	}
	if len(fe) > 0 {
		return apperr.Fields(fe...)
	}
	return nil
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}

func (srv *Server) handleCreate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := srv.manager(r.Context())
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		req, err := httpx.Decode[api.CreateWebhookRequest](w, r, maxBody)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		id, err := uuid.NewV7()
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		e := &endpoint{Webhook: api.Webhook{ID: id.String(), URL: req.URL, Events: req.Events, Description: req.Description,
			DocumentID: req.DocumentID, CreatedBy: req.CreatedBy, Enabled: req.Enabled == nil || *req.Enabled, Owner: p.Key()}}
		if err := srv.checkFields(r.Context(), e); err != nil {
			srv.respondErr(w, r, err)
			return
		}
		// In open mode everyone may see everything; in required mode only
		// an admin's endpoint receives events of every document.
		e.Unrestricted = !srv.required() || p.Admin
		e.OwnerKeys = p.ReaderKeys()
		if e.OwnerKeys == nil {
			e.OwnerKeys = []string{}
		}
		secret := NewSecret()
		e.SecretEnc = srv.s.cipher.Seal(e.ID, secret)
		out, err := srv.s.store.Create(r.Context(), e)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		srv.s.log.Info("webhook created", "webhook", out.ID, "owner", out.Owner, "events", out.Events)
		httpx.Respond(w, http.StatusCreated, api.CreatedWebhook{Webhook: out.Webhook, Secret: secret})
	})
}

func (srv *Server) handleList() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := srv.manager(r.Context())
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		eps, err := srv.s.store.List(r.Context(), p.Key(), !srv.required() || p.Admin)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		out := api.Webhooks{Webhooks: []api.Webhook{}}
		for _, e := range eps {
			out.Webhooks = append(out.Webhooks, e.Webhook)
		}
		httpx.Respond(w, http.StatusOK, out)
	})
}

func (srv *Server) handleGet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := srv.endpoint(r)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		httpx.Respond(w, http.StatusOK, e.Webhook)
	})
}

func (srv *Server) handleUpdate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := srv.endpoint(r)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		req, err := httpx.Decode[api.UpdateWebhookRequest](w, r, maxBody)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&e.URL, req.URL)
		set(&e.Description, req.Description)
		set(&e.DocumentID, req.DocumentID)
		set(&e.CreatedBy, req.CreatedBy)
		if req.Events != nil {
			e.Events = *req.Events
		}
		if req.Enabled != nil {
			switch {
			case *req.Enabled:
				e.DisabledReason = ""
			case e.Enabled:
				e.DisabledReason = "disabled by " + principalName(auth.FromContext(r.Context()))
			}
			e.Enabled = *req.Enabled
		}
		if err := srv.checkFields(r.Context(), e); err != nil {
			srv.respondErr(w, r, err)
			return
		}
		out, err := srv.s.store.Update(r.Context(), e)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		if out.Enabled {
			srv.s.Wake()
		}
		httpx.Respond(w, http.StatusOK, out.Webhook)
	})
}

func principalName(p auth.Principal) string {
	if k := p.Key(); k != "" {
		return k
	}
	return "an anonymous caller"
}

func (srv *Server) handleDelete() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := srv.endpoint(r)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		if err := srv.s.store.Delete(r.Context(), e.ID); err != nil {
			srv.respondErr(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleRotate makes a new secret (shown once); the old one keeps signing
// beside it for the overlap, so receivers can switch without a gap.
func (srv *Server) handleRotate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := srv.endpoint(r)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		var req api.RotateWebhookRequest
		if r.ContentLength != 0 {
			if req, err = httpx.Decode[api.RotateWebhookRequest](w, r, maxBody); err != nil {
				srv.respondErr(w, r, err)
				return
			}
		}
		overlap := defaultOverlap
		if req.Overlap != "" {
			d, err := time.ParseDuration(req.Overlap)
			if err != nil || d < 0 || d > maxOverlap {
				srv.respondErr(w, r, apperr.Fields(apperr.FieldError{Field: "overlap", Message: "must be a duration from 0s to 720h"}))
				return
			}
			overlap = d
		}
		secret := NewSecret()
		out, err := srv.s.store.Rotate(r.Context(), e.ID, srv.s.cipher.Seal(e.ID, secret), e.SecretEnc, time.Now().Add(overlap))
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		srv.s.log.Info("webhook secret rotated", "webhook", e.ID, "overlap", overlap)
		httpx.Respond(w, http.StatusOK, api.CreatedWebhook{Webhook: out.Webhook, Secret: secret})
	})
}

func (srv *Server) handleDeliveries() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := srv.endpoint(r)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		q := r.URL.Query()
		status := q.Get("status")
		if status != "" && !slices.Contains([]string{api.DeliveryPending, api.DeliveryDelivered, api.DeliveryFailed, api.DeliverySkipped}, status) {
			srv.respondErr(w, r, apperr.Fields(apperr.FieldError{Field: "status", Message: "must be pending, delivered, failed or skipped"}))
			return
		}
		limit := 50
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 500 {
				srv.respondErr(w, r, apperr.Fields(apperr.FieldError{Field: "limit", Message: "must be 1-500"}))
				return
			}
			limit = n
		}
		ds, err := srv.s.store.Deliveries(r.Context(), e.ID, status, limit)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		httpx.Respond(w, http.StatusOK, api.Deliveries{Deliveries: ds})
	})
}

func formatID(id int64) string { return strconv.FormatInt(id, 10) }

func (srv *Server) handleRedeliver() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := srv.endpoint(r)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		did, err := strconv.ParseInt(r.PathValue("delivery"), 10, 64)
		if err != nil || did < 1 {
			srv.respondErr(w, r, apperr.E(apperr.Invalid, "delivery id %q is not a delivery id", r.PathValue("delivery")))
			return
		}
		if err := srv.s.store.Redeliver(r.Context(), e.ID, did); err != nil {
			srv.respondErr(w, r, err)
			return
		}
		srv.s.Wake()
		httpx.Respond(w, http.StatusAccepted, api.Queued{Queued: 1})
	})
}

func (srv *Server) handleReplay() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := srv.endpoint(r)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		req, err := httpx.Decode[api.ReplayRequest](w, r, maxBody)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		lsnRange := req.FromLSN != 0 || req.ToLSN != 0
		timeRange := req.Since != nil || req.Until != nil
		switch {
		case !lsnRange && !timeRange:
			srv.respondErr(w, r, apperr.Fields(apperr.FieldError{Field: "from_lsn", Message: "give a commit LSN range (from_lsn, to_lsn) or a time range (since, until)"}))
			return
		case lsnRange && timeRange:
			srv.respondErr(w, r, apperr.Fields(apperr.FieldError{Field: "since", Message: "give either an LSN range or a time range, not both"}))
			return
		case req.ToLSN != 0 && req.FromLSN > req.ToLSN:
			srv.respondErr(w, r, apperr.Fields(apperr.FieldError{Field: "to_lsn", Message: "must not be below from_lsn"}))
			return
		case req.Since != nil && req.Until != nil && req.Until.Before(*req.Since):
			srv.respondErr(w, r, apperr.Fields(apperr.FieldError{Field: "until", Message: "must not be before since"}))
			return
		}
		n, err := srv.s.store.Replay(r.Context(), e, req)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		srv.s.Wake()
		httpx.Respond(w, http.StatusAccepted, api.Queued{Queued: n})
	})
}

// handleTest queues a webhook.test event, signed and retried like any.
func (srv *Server) handleTest() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := srv.endpoint(r)
		if err != nil {
			srv.respondErr(w, r, err)
			return
		}
		now := time.Now().UTC()
		body, _ := json.Marshal(api.WebhookPayload{Type: api.WebhookTest, Timestamp: now,
			Data: api.WebhookData{Test: &api.WebhookTestData{Message: "a test event from docstream"}}})
		if err := srv.s.store.QueueTest(r.Context(), e.ID, "msg_test_"+uuid.NewString(), body); err != nil {
			srv.respondErr(w, r, err)
			return
		}
		srv.s.Wake()
		httpx.Respond(w, http.StatusAccepted, api.Queued{Queued: 1})
	})
}
