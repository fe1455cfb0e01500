package document

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/docstream/docstream/internal/audit"
)

// The audit metrics on the service's /metrics: entries appended by type,
// verifications by result, and the time signing heads took.
func TestAuditMetricsCountEntriesVerificationsAndSigning(t *testing.T) {
	RegisterMetrics()
	e := newEnv(t)
	before := scrape(t, e)
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
	after := scrape(t, e)
	delta := func(name string, labels map[string]string) float64 {
		return metric(after, name, labels) - metric(before, name, labels)
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
	if metric(after, "docstream_audit_checkpoint_sign_seconds_sum", nil) <= 0 {
		t.Errorf("no signing time recorded:\n%s", after)
	}
}

func scrape(t *testing.T, e *env) string {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$`)

// metric is the value of the sample of name whose labels include labels
// (0 when there is none), read from a Prometheus text exposition.
func metric(text, name string, labels map[string]string) float64 {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		m := sampleRE.FindStringSubmatch(sc.Text())
		if m == nil || m[1] != name {
			continue
		}
		ok := true
		for k, v := range labels {
			if !strings.Contains(m[2], k+`="`+v+`"`) {
				ok = false
			}
		}
		if ok {
			v, _ := strconv.ParseFloat(m[3], 64)
			return v
		}
	}
	return 0
}
