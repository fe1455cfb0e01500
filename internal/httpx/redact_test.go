package httpx

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// An API key in a request's path (pasted where its id belongs) never
// reaches a log: not the access log, not a failed request's line, not a
// panic's.
func TestLoggedPathsNeverHoldAnAPIKey(t *testing.T) {
	const secret = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst"
	key := "dsk_5f0c3e9a1b2d4c6e_" + secret
	var logs testenv.SyncBuffer
	log := logging.New(&logs, "debug")
	mux := http.NewServeMux()
	mux.HandleFunc("DELETE /apikeys/{id}", func(w http.ResponseWriter, r *http.Request) {
		RespondErr(w, r, log, errors.New("the database is down"))
	})
	mux.HandleFunc("GET /boom/{id}", func(http.ResponseWriter, *http.Request) { panic("bug") })
	h := Wrap("test", log, mux)
	for _, req := range []*http.Request{
		httptest.NewRequest("DELETE", "/apikeys/"+key, nil),
		httptest.NewRequest("GET", "/boom/x"+key, nil),
		httptest.NewRequest("GET", "/nothing/"+key+"/here", nil),
	} {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	out := logs.String()
	if strings.Contains(out, secret) {
		t.Fatalf("a log line holds the key:\n%s", out)
	}
	if !strings.Contains(out, "/apikeys/dsk_REDACTED") || !strings.Contains(out, "/boom/xdsk_REDACTED") || !strings.Contains(out, "/nothing/dsk_REDACTED/here") {
		t.Fatalf("the paths are not logged, redacted:\n%s", out)
	}
	if got := LogPath("/documents/0194c3a0"); got != "/documents/0194c3a0" {
		t.Fatalf("LogPath changed a path without a key: %q", got)
	}
}
