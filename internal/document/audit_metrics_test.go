package document

import (
	"context"
	"net/http"
	"testing"

	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/testenv"
)

// The audit metrics on the service's /metrics: entries appended by type,
// verifications by result, and the time signing heads took.
func TestAuditMetricsCountEntriesVerificationsAndSigning(t *testing.T) {
	RegisterMetrics()
	e := newEnv(t)
	before := testenv.Scrape(t, e.srv.URL+"/metrics")
	var doc Document
	if resp := e.do(t, "POST", "/documents", map[string]any{"title": "metered", "content": "x", "created_by": "a@example.com"}, &doc); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	if resp := e.do(t, "PATCH", "/documents/"+doc.ID, map[string]any{"title": "metered 2"}, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("patch: %d", resp.StatusCode)
	}
	var res audit.Result
	e.do(t, "GET", "/documents/"+doc.ID+"/audit/verify", nil, &res)
	if !res.Valid {
		t.Fatalf("verify: %+v", res)
	}
	if _, err := e.pool.Exec(context.Background(), `UPDATE audit.entries SET actor = 'user:mallory' WHERE document_id = $1 AND seq = 1`, doc.ID); err != nil {
		t.Fatal(err)
	}
	e.do(t, "GET", "/documents/"+doc.ID+"/audit/verify", nil, &res)
	if res.Valid {
		t.Fatalf("verify after tampering: %+v", res)
	}
	after := testenv.Scrape(t, e.srv.URL+"/metrics")
	delta := func(name string, labels map[string]string) float64 {
		return testenv.Metric(t, after, name, labels) - testenv.Metric(t, before, name, labels)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"docstream_audit_entries_appended_total", map[string]string{"type": audit.TypeCreated}, 1},
		{"docstream_audit_entries_appended_total", map[string]string{"type": audit.TypeUpdated}, 1},
		{"docstream_audit_verifications_total", map[string]string{"result": "valid"}, 1},
		{"docstream_audit_verifications_total", map[string]string{"result": "invalid"}, 1},
		{"docstream_audit_checkpoint_sign_seconds_count", nil, 2},
	} {
		// Other tests of the package may run at the same time and add to
		// the counters: at least the test's own.
		if got := delta(c.name, c.labels); got < c.want {
			t.Errorf("%s%v grew by %v, want at least %v", c.name, c.labels, got, c.want)
		}
	}
	if testenv.Metric(t, after, "docstream_audit_checkpoint_sign_seconds_sum", nil) <= 0 {
		t.Errorf("no signing time recorded:\n%s", after)
	}
}
