package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/docstream/docstream/api"
)

// Views are counted in memory and flushed to Redis in batches; a graceful
// stop flushes what is left after the server has drained. With a flush
// interval no run reaches, the stop's flush is the only one: every view
// served before SIGTERM is in the stats after the restart. (On kill -9
// the views of the last interval are lost: --document-views-flush.)
func TestViewsServedBeforeSIGTERMAreCountedAfterTheRestart(t *testing.T) {
	d := startDev(t, "--document-views-flush", "1h")
	var doc api.Document
	call(t, http.MethodPost, d.document+"/documents", strings.NewReader(`{"title": "Viewed", "content": "x", "created_by": "viewer@company.com"}`), http.StatusCreated, &doc)
	for range 7 {
		call(t, http.MethodGet, d.document+"/documents/"+doc.ID, nil, http.StatusOK, nil)
	}
	d.stop(t)
	d = d.restart(t)
	var st api.DocumentStats
	call(t, http.MethodGet, d.document+"/documents/"+doc.ID+"/stats", nil, http.StatusOK, &st)
	if st.TotalViews != 7 || st.UniqueViews != 1 {
		t.Fatalf("stats after the restart %+v; want the 7 views (1 viewer) served before SIGTERM", st)
	}
}
