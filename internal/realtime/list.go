package realtime

import (
	"net/http"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/httpx"
)

// The list feed: WS /ws (no document id) streams the change messages of
// every document the caller may view — new documents, status changes,
// title/content edits and deletes (cdc.documents; a signature's own
// signature.added stays on the document's stream, its status change comes
// here) — for a live document list. Messages have the per-document
// stream's shape (api.Message: type, data with document_id, timestamp,
// lsn) and the same cursor, so ?since=<lsn> resumes after a dropped
// connection with neither gap nor duplicate (replay.go, the same
// hand-over), and a client that cannot keep up is closed with 1013 like
// any other. The handshake is authenticated as /ws/{id} is (?token=, the
// bearer subprotocol, an Authorization header, API keys; anonymous in
// open mode).
//
// Access in required mode is decided per event, not per subscription:
// every cdc.documents event carries the row's readers after the change
// (before it, for a delete), and a restricted subscriber (not an admin)
// gets an event only when one of its reader keys is among them — the same
// rule as document.Decide's view, which makes the owner (always a reader)
// and every grantee of a share see it. So a share takes effect with the
// document's next event, a revocation likewise: no database lookup per
// event, nothing to revoke by closing the connection, and replayed
// history is filtered by the readers of its time (a change made while the
// caller was not a reader stays untold). A readers-only change (the
// share itself) has no message of its own, as on the per-document stream
// (message.go's ignoredColumns): a list that must show a document the
// moment it is shared reloads the list (GET /documents) on its own grant.
// Events without readers (rows from before access control) reach only
// unrestricted subscribers. An API key needs the read scope (403
// otherwise); a service principal is never anyone's reader and gets
// nothing.

// handleListWebSocket upgrades WS /ws after checking since (422) and, in
// required mode, the read scope (403).
func (s *Server) handleListWebSocket() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		since, err := s.since(r)
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		v, err := s.authorizeList(auth.FromContext(r.Context()))
		if err != nil {
			httpx.RespondErr(w, r, s.log, err)
			return
		}
		s.serve(w, r, "", since, v)
	})
}

// authorizeList is whom p watches the list as: everyone unrestricted in
// open mode and admins; anyone else restricted to its reader keys.
func (s *Server) authorizeList(p auth.Principal) (viewer, error) {
	if s.auth.Mode() != auth.ModeRequired {
		return viewer{}, nil
	}
	if !p.HasScope(auth.ScopeRead) {
		return viewer{}, apperr.E(apperr.Forbidden, "this API key lacks the %s scope", auth.ScopeRead)
	}
	switch {
	case p.Kind == auth.KindService:
		return viewer{restricted: true}, nil // no reader keys: nothing
	case p.Admin:
		return viewer{}, nil
	}
	return viewer{restricted: true, keys: p.ReaderKeys()}, nil
}

// wants reports whether the client is sent ev at all: its document's
// events for a document subscription; for the list feed, a documents
// event its viewer may see by the readers ev carries.
func (c *client) wants(ev Event) bool {
	if c.doc != "" {
		return ev.DocumentID == c.doc
	}
	if ev.Topic != bus.TopicDocuments {
		return false
	}
	if !c.viewer.restricted {
		return true
	}
	return ev.HasReaders && c.viewer.mayView(ev.Readers)
}
